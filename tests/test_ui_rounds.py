"""Immediate rounds and the resident simulator in a real browser: a live tally, real answer rules."""

from __future__ import annotations

import re
from datetime import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import Check, Round, Tenant
from tenants.tenancy import bind_tenant
from tests.factories import created, resident_body
from tests.fixtures.browser import screenshot, sign_in
from tests.test_ui_policies import fits_tablet

MESSAGE = "地震がありました。ご無事ですか?"


def _resident(tenant, name, kana, phone, **fields):
    return created(tenant.api.post("/api/v1/residents", resident_body(
        name=name, name_kana=kana, phone=phone, contacts=[], **fields)))


def test_round_tally_updates_live_when_a_resident_answers(live_server, page, tenant, make_user,
                                                           engine, clean_app):
    """After a round is started from the dashboard and a resident answers "1" by SMS in the
    simulator, does the round page's tally change by itself, without a reload?"""
    hanako = _resident(tenant, "山田 花子", "ヤマダ ハナコ", "090-1234-5678")
    _resident(tenant, "佐藤 ハル", "サトウ ハル", "090-1234-5601")
    sign_in(page, live_server, make_user("kanri@city.musashino.jp", "admin", tenant.id))
    page.goto(f"{live_server}/t/{tenant.slug}/rounds")
    page.get_by_label("送る相手").select_option(label="全員(2人)")
    page.get_by_label("メッセージ").fill(MESSAGE)
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="安否確認を送る").click()
    expect(page).to_have_url(re.compile(r"/rounds/\d+$"))
    assert "全員" in asked[0]  # the confirmation says it messages everyone chosen
    tally = page.locator("[data-refresh-url]")
    expect(tally.locator("[data-field=targeted]")).to_have_text("2")
    expect(tally.locator("[data-field=answered]")).to_have_text("0")
    expect(tally.locator("[data-field=pending]")).to_have_text("2")
    expect(tally.locator("[data-field=unanswered_names]")).to_contain_text("山田 花子")
    page.evaluate("window.notReloaded = true")

    engine.work()  # the worker sends the round (to the sandbox)
    simulator = page.context.new_page()
    simulator.goto(f"{live_server}/t/{tenant.slug}/simulator")
    simulator.get_by_role("link", name="山田 花子").click()
    message = simulator.locator(".messages .message").first
    expect(message).to_contain_text(MESSAGE)
    expect(message).to_contain_text("SMS")
    expect(message).to_contain_text("一斉安否確認")
    screenshot(simulator, "simulator")
    fits_tablet(simulator)
    message.get_by_role("button", name="「1」と返信する").click()
    expect(simulator.get_by_role("status")).to_contain_text("応答しました")
    expect(simulator.get_by_role("status")).to_contain_text("ご回答ありがとうございました")
    expect(simulator.locator(".messages .message").first).to_contain_text("応答済み")

    expect(tally.locator("[data-field=answered]")).to_have_text("1", timeout=15_000)
    expect(tally.locator("[data-field=pending]")).to_have_text("1")
    expect(tally.locator("[data-field=rate]")).to_have_text("50%")
    expect(tally.locator("[data-field=unanswered_names]")).to_have_text("佐藤 ハル")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "round-live-tally")
    fits_tablet(page)

    with clean_app.app_context(), bind_tenant(tenant.id):
        check = db.session.scalar(select(Check).where(Check.resident_id == hanako["id"]))
        assert (check.status, check.answered_via) == ("answered", "sms")


@pytest.mark.parametrize(("channel", "fields", "shown", "button"), [
    ("voice", {"channels": ["voice"]}, "電話の音声", "1 を押す"),
    ("line", {"channels": ["line", "sms"], "line_user_id": "U" + "a" * 32}, "LINE", "元気です"),
])
def test_simulator_answers_as_the_webhooks_would(live_server, page, tenant, make_user, engine,
                                                 clean_app, channel, fields, shown, button):
    """Does pressing 1 on a simulated call, or tapping 「元気です」 on LINE, answer the resident's
    check as keypad 1 on Twilio or LINE's postback would?"""
    kiyo = _resident(tenant, "小林 ヨシエ", "コバヤシ ヨシエ", "0422-51-2308", **fields)
    with clean_app.app_context():
        # No quiet hours, so the call goes out whatever time the test runs.
        db.session.get(Tenant, tenant.id).quiet_hours_start = time(0)
        db.session.get(Tenant, tenant.id).quiet_hours_end = time(0)
        db.session.commit()
    sign_in(page, live_server, make_user("kanri@city.musashino.jp", "admin", tenant.id))
    created(tenant.api.post("/api/v1/rounds", {"message": MESSAGE}))
    page.goto(f"{live_server}/t/{tenant.slug}/simulator?resident={kiyo['id']}")
    message = page.locator(".messages .message").first
    expect(message).to_contain_text("送信待ち")  # queued, not yet sent: nothing to answer
    expect(message.get_by_role("button")).to_have_count(0)
    engine.work()
    page.reload()
    expect(message).to_contain_text(shown)
    expect(message).to_contain_text(MESSAGE)
    message.get_by_role("button", name=button).click()
    expect(page.get_by_role("status")).to_contain_text("応答しました")
    expect(message.get_by_role("button")).to_have_count(0)  # answered: nothing left to answer
    checks = tenant.api.get(f"/api/v1/checks?resident_id={kiyo['id']}").get_json()["items"]
    assert [(c["status"], c["answered_via"]) for c in checks] == [("answered", channel)]


def test_viewer_cannot_start_a_round(live_server, page, tenant, make_user):
    """Is a viewer refused (403) both the round form and starting a round?"""
    _resident(tenant, "山田 花子", "ヤマダ ハナコ", "090-1234-5678")
    sign_in(page, live_server, make_user("etsuran@city.musashino.jp", "viewer", tenant.id))
    assert page.goto(f"{live_server}/t/{tenant.slug}/rounds").status == 403
    page.goto(f"{live_server}/t/{tenant.slug}/")
    expect(page.get_by_role("link", name="一斉安否確認")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(f"{live_server}/t/{tenant.slug}/rounds",
                                 form={"csrf_token": token, "message": MESSAGE, "group_id": ""})
    assert response.status == 403
    assert tenant.api.get("/api/v1/rounds").get_json()["items"] == []


def test_a_round_started_twice_goes_out_once(live_server, page, tenant, make_user):
    """The round's form is sent twice (a double click past the confirmation): does each resident
    get one check, and the second send lead to the round already started?"""
    _resident(tenant, "山田 花子", "ヤマダ ハナコ", "090-1234-5678")
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/{tenant.slug}/rounds")
    form = {name: page.locator(f"form[action$='/rounds'] input[name={name}]").get_attribute("value")
            for name in ("csrf_token", "submission")}
    form.update(message=MESSAGE, group_id="", response_window_minutes="180")

    first = page.request.post(f"{live_server}/t/{tenant.slug}/rounds", form=form)
    again = page.request.post(f"{live_server}/t/{tenant.slug}/rounds", form=form)

    assert first.ok and again.ok and again.url == first.url
    assert "すでに開始しています" in again.text()
    [round_] = tenant.api.get("/api/v1/rounds").get_json()["items"]
    assert round_["targeted"] == 1


def test_commissioner_sees_only_their_residents_unanswered(live_server, page, tenant, make_user,
                                                           clean_app):
    """On a round's page, does a welfare commissioner see only their assigned residents' names?"""
    mine = _resident(tenant, "山田 花子", "ヤマダ ハナコ", "090-1234-5678")
    _resident(tenant, "佐藤 ハル", "サトウ ハル", "090-1234-5601")
    round_id = created(tenant.api.post("/api/v1/rounds", {"message": MESSAGE}))["id"]
    login = make_user("minsei@city.musashino.jp", "commissioner", tenant.id)
    with clean_app.app_context():
        from tenants.models import ResidentAssignment, User

        user = db.session.scalar(select(User).where(User.email == login.email))
        db.session.add(ResidentAssignment(tenant_id=tenant.id, user_id=user.id,
                                          resident_id=mine["id"]))
        db.session.commit()
        with bind_tenant(tenant.id):
            assert db.session.get(Round, round_id) is not None
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/{tenant.slug}/rounds/{round_id}")
    names = page.locator("[data-field=unanswered_names]")
    expect(names).to_have_text("山田 花子")
    figures = page.request.get(f"{live_server}/t/{tenant.slug}/rounds/{round_id}/tally.json").json()
    assert "佐藤" not in figures["unanswered_names"]


def test_simulator_is_not_found_for_a_tenant_with_credentials(live_server, page, make_tenant,
                                                              make_user):
    """Is the simulator a 404 for a tenant with real LINE credentials, and there for a sandbox?"""
    sandbox = make_tenant("sandbox-city", "体験市")
    real = make_tenant("kunitachi", "国立市", line={"channel_secret": "s" * 32,
                                                  "channel_access_token": "t" * 40})
    sign_in(page, live_server, make_user("kanri@city.kunitachi.jp", "admin", real.id))
    assert page.goto(f"{live_server}/t/kunitachi/simulator").status == 404
    assert page.request.post(f"{live_server}/t/kunitachi/simulator/answer",
                             form={"delivery": "1"}).status in (400, 404)
    page.context.clear_cookies()
    sign_in(page, live_server, make_user("kanri@sandbox.example.jp", "admin", sandbox.id))
    assert page.goto(f"{live_server}/t/sandbox-city/simulator").status == 200
    expect(page.get_by_role("heading", name="利用者シミュレーター")).to_be_visible()
