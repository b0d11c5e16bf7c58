"""The operator console in a real browser: tenants and their credentials, usage, platform health."""

from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect
from rq import Worker
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import AuditEvent, Delivery, Tenant
from tenants.tenancy import bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from worker.queues import queue, redis_connection

LINE_SECRET = "line-channel-secret-7f3a9c"
LINE_TOKEN = "line-access-token-Zq81xVb"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token-b9d2e4"
FROM = "+815012345678"


@pytest.fixture
def ops(make_user):
    """An operator who has enrolled a second factor."""
    return make_user("ops@mimamori.example", "operator", None, totp=True)


@pytest.fixture
def providers(clean_app, line_fake, twilio_fake):
    """The app pointed at the LINE and Twilio fakes, which know our test channel and account."""
    line_fake.add_channel(LINE_TOKEN)
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    saved = {k: clean_app.config[k] for k in ("LINE_API_BASE_URL", "TWILIO_API_BASE_URL")}
    clean_app.config.update(LINE_API_BASE_URL=line_fake.url, TWILIO_API_BASE_URL=twilio_fake.url)
    yield line_fake, twilio_fake
    clean_app.config.update(saved)


def _tenant(app, slug):
    with app.app_context():
        return db.session.scalar(select(Tenant).where(Tenant.slug == slug))


def _audit(app, action):
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_an_operator_creates_a_tenant_with_2fa(clean_app, live_server, page, ops):
    """Can an operator with 2FA create a tenant with its LINE channel, and never see the secret again?"""
    sign_in(page, live_server, ops)
    expect(page.get_by_role("heading", name="自治体・社協")).to_be_visible()
    page.get_by_role("link", name="新しい自治体・社協").click()
    page.get_by_label("識別子").fill("kokubunji")
    page.get_by_label("名称").fill("国分寺市")
    page.get_by_label("種別").select_option(label="自治体")
    page.get_by_label("チャネルシークレット").fill(LINE_SECRET)
    page.get_by_label("チャネルアクセストークン").fill(LINE_TOKEN)
    screenshot(page, "console-tenant-new")
    page.get_by_role("button", name="作成").click()

    expect(page.get_by_role("status")).to_contain_text("国分寺市 を作成しました")
    row = page.locator("#tenant-list tr[data-slug=kokubunji]")
    expect(row.locator(".line-state")).to_have_text("✓ 設定済み")
    expect(row.locator(".twilio-state")).to_have_text("– 未設定")
    for secret in (LINE_SECRET, LINE_TOKEN):
        assert secret not in page.content()
    screenshot(page, "console-tenants")

    row.get_by_role("link", name="国分寺市").click()
    expect(page.get_by_role("heading", name="国分寺市 の設定")).to_be_visible()
    expect(page.get_by_label("チャネルシークレット")).to_have_value("")
    expect(page.get_by_label("チャネルアクセストークン")).to_have_value("")
    expect(page.get_by_label("チャネルシークレット")).to_have_attribute("type", "password")
    html = page.content()
    assert LINE_SECRET not in html and LINE_TOKEN not in html
    screenshot(page, "console-tenant-edit")

    tenant = _tenant(clean_app, "kokubunji")
    assert (tenant.line_channel_secret, tenant.line_channel_access_token) == (LINE_SECRET, LINE_TOKEN)
    [event] = _audit(clean_app, "tenant.create")
    assert event.tenant_id == tenant.id and event.actor_user_id is not None


def test_saving_with_blank_secrets_keeps_them(clean_app, live_server, page, ops, make_tenant):
    """When an operator edits a tenant's name and leaves the secret fields blank, are the secrets kept?"""
    make_tenant("tachikawa", "立川市", line={"channel_secret": LINE_SECRET,
                                             "channel_access_token": LINE_TOKEN})
    sign_in(page, live_server, ops)
    page.get_by_role("link", name="立川市").click()
    page.get_by_label("名称").fill("立川市役所")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("立川市役所 の設定を保存しました")
    tenant = _tenant(clean_app, "tachikawa")
    assert (tenant.name, tenant.line_channel_access_token) == ("立川市役所", LINE_TOKEN)
    assert _audit(clean_app, "tenant.credentials_rotate") == []


def test_tenant_form_explains_what_is_wrong(clean_app, live_server, page, ops):
    """Does a bad slug or half a set of LINE credentials come back with a message in Japanese?"""
    sign_in(page, live_server, ops)
    page.goto(f"{live_server}/ops/tenants/new")
    page.get_by_label("識別子").fill("Not A Slug")
    page.get_by_label("名称").fill("国立市")
    page.get_by_label("チャネルシークレット").fill(LINE_SECRET)
    page.get_by_role("button", name="作成").click()
    expect(page.locator(".field.has-error")).to_have_count(2)
    expect(page.get_by_text("半角英小文字・数字・ハイフンで63文字までにしてください")).to_be_visible()
    expect(page.get_by_text("LINE はチャネルシークレットとチャネルアクセストークンの両方が必要です。")
           .first).to_be_visible()
    assert LINE_SECRET not in page.content()
    assert _tenant(clean_app, "not-a-slug") is None


def test_connection_test_against_line_and_twilio(clean_app, live_server, page, ops, make_tenant,
                                                 providers):
    """Does 接続テスト say the stored credentials work, and say why when a rotated token does not?"""
    make_tenant("hachioji", "八王子市",
                line={"channel_secret": LINE_SECRET, "channel_access_token": LINE_TOKEN},
                twilio={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": FROM})
    sign_in(page, live_server, ops)
    page.get_by_role("link", name="八王子市").click()

    page.get_by_role("button", name="LINE の接続テスト").click()
    expect(page.get_by_role("status")).to_contain_text("LINE: 接続できました — 見守りサービス @")
    page.get_by_role("button", name="Twilio の接続テスト").click()
    expect(page.get_by_role("status")).to_contain_text("Twilio: 接続できました — Mimamori test (active)")
    screenshot(page, "console-connection-test")

    page.get_by_label("チャネルアクセストークン").fill("a-revoked-token")
    page.get_by_label("Auth Token").fill("a-wrong-auth-token")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("八王子市 の設定を保存しました")

    page.get_by_role("button", name="LINE の接続テスト").click()
    expect(page.get_by_role("alert")).to_contain_text("LINE: 接続できませんでした — LINE 401")
    page.get_by_role("button", name="Twilio の接続テスト").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"Twilio: 接続できませんでした — Twilio 401 error 20003"))
    html = page.content()
    for secret in (LINE_SECRET, LINE_TOKEN, TWILIO_TOKEN, "a-revoked-token", "a-wrong-auth-token"):
        assert secret not in html

    tenant = _tenant(clean_app, "hachioji")
    assert tenant.twilio_auth_token == "a-wrong-auth-token"
    assert tenant.line_channel_secret == LINE_SECRET  # left blank, so kept
    [rotation] = _audit(clean_app, "tenant.credentials_rotate")
    assert rotation.detail == {"providers": ["line", "twilio"]}
    tests = [(e.detail["provider"], e.detail["ok"]) for e in _audit(clean_app, "tenant.connection_test")]
    assert tests == [("line", True), ("twilio", True), ("line", False), ("twilio", False)]


@pytest.fixture
def busy_tenant(clean_app, make_tenant, providers):
    """A tenant on the Twilio fake with three residents: SMS, voice, and an SMS number that fails."""
    _, twilio_fake = providers
    tenant = make_tenant("hino", "日野市", twilio={"account_sid": TWILIO_SID,
                                                   "auth_token": TWILIO_TOKEN, "from_number": FROM})
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies",
                                     policy_body(chain["id"], starts_on="2030-04-01")))
    people = [("日野 一子", "090-1111-2222", ["sms"]), ("日野 二郎", "090-3333-4444", ["voice"]),
              ("日野 三郎", "090-5555-6666", ["sms"])]
    for name, phone, channels in people:
        created(tenant.api.post("/api/v1/residents", resident_body(
            name=name, name_kana=None, phone=phone, channels=channels, contacts=[],
            check_policy_id=policy["id"])))
    twilio_fake.invalid_numbers.add("+819055556666")
    return tenant, people


def _no_personal_data(html, people):
    for name, phone, _ in people:
        digits = phone.replace("-", "")
        assert name not in html
        assert digits not in html and digits[1:] not in html and phone not in html


def test_usage_counts_messages_segments_and_calls(clean_app, live_server, page, ops, engine,
                                                 busy_tenant):
    """Does the usage page count each tenant's SMS segments, calls and failures for the month?"""
    tenant, people = busy_tenant
    engine.run(tokyo("2030-04-01 09:00"))
    with clean_app.app_context(), bind_tenant(tenant.id):
        sms = list(db.session.scalars(select(Delivery).where(Delivery.channel == "sms")))
        calls = list(db.session.scalars(select(Delivery).where(Delivery.channel == "voice")))
    accepted = [d for d in sms if d.sent_at is not None]
    assert len(accepted) == 1 and len(sms) == 2 and calls
    # Japanese SMS go as UCS-2: 70 characters fit one segment, longer ones take 67 per segment.
    segments = sum(1 if len(d.body) <= 70 else math.ceil(len(d.body) / 67) for d in accepted)

    sign_in(page, live_server, ops)
    page.get_by_role("link", name="利用量").click()
    page.get_by_label("対象月").fill("2030-04")
    page.get_by_role("button", name="表示").click()
    expect(page.get_by_role("heading", name="利用量")).to_contain_text("2030年4月")
    sms_row = page.locator("#usage tr[data-tenant=hino][data-channel=sms]")
    expect(sms_row.locator(".total")).to_have_text("2")
    expect(sms_row.locator(".accepted")).to_have_text("1")
    expect(sms_row.locator(".failed")).to_contain_text("1")
    expect(sms_row.locator(".billed")).to_have_text(f"{segments} セグメント")
    voice_row = page.locator("#usage tr[data-tenant=hino][data-channel=voice]")
    expect(voice_row.locator(".billed")).to_have_text(
        f"発信 {sum(d.sent_at is not None for d in calls)} 件")
    expect(page.locator("#total-sms")).to_have_text(str(segments))
    _no_personal_data(page.content(), people)
    screenshot(page, "console-usage")

    page.get_by_label("対象月").fill("2030-05")
    page.get_by_role("button", name="表示").click()
    expect(sms_row.locator(".total")).to_have_text("0")


def test_health_shows_queue_workers_and_failures(clean_app, live_server, page, ops, engine,
                                                 busy_tenant):
    """Does the health page show waiting jobs, live workers and failed deliveries without personal data?"""
    _, people = busy_tenant
    engine.tick(tokyo("2030-04-01 09:00"))  # jobs wait on the queue until a worker runs
    sign_in(page, live_server, ops)
    page.get_by_role("link", name="稼働状況").click()
    depth = int(page.locator("#queue-depth").inner_text())
    assert depth == engine.queued_jobs() > 0
    expect(page.locator("#queue-oldest")).to_have_text(re.compile(r"^\d+(秒|分)$"))
    expect(page.get_by_text("動いているワーカーがありません")).to_be_visible()

    engine.work()
    with clean_app.app_context():
        worker = Worker([queue()], connection=redis_connection(), name="mimamori-test-worker")
        worker.register_birth()
    try:
        page.reload()
        expect(page.locator("#queue-depth")).to_have_text("0")
        worker_row = page.locator("#workers tr", has_text="mimamori-test-worker")
        expect(worker_row).to_contain_text("✓ 稼働中")
        failure = page.locator("#failures tbody tr")
        expect(failure).to_have_count(1)
        expect(failure).to_contain_text("日野市")
        expect(failure).to_contain_text("SMS")
        expect(failure).to_contain_text("安否確認")
        expect(failure).to_contain_text("Twilio 400 error 21211")
        expect(page.locator("#failure-count")).to_have_text("1")
        _no_personal_data(page.content(), people)
        screenshot(page, "console-health")
        figures = page.request.get(f"{live_server}/ops/health.json").json()
        assert figures["depth"] == "0" and figures["workers"] == "1"
    finally:
        with clean_app.app_context():
            worker.register_death()


def test_tenant_staff_cannot_open_the_console(live_server, page, tenant, make_user):
    """Can a tenant's admin reach the operator console by typing its address?"""
    sign_in(page, live_server, make_user("admin@city.musashino.jp", "admin", tenant.id))
    for path in ("/ops/", "/ops/usage", "/ops/health", f"/ops/tenants/{tenant.id}"):
        assert page.goto(f"{live_server}{path}").status == 404
