"""Who is on duty (当番): set by a tenant's admins on the staff page (a flag or a weekly rota),
reached by the alert chain's staff step, and warned about on the chain editor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import Tenant, User
from tenants.services import staff as staff_service
from tenants.tenancy import bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fixtures.browser import PASSWORD, sign_in
from tests.fixtures.engine import tokyo
from tests.webhooks_support import NO_QUIET_HOURS

MONDAY, TUESDAY = "2030-04-01", "2030-04-02"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token"
TANAKA_PHONE, SUZUKI_PHONE = "+818011112222", "+818033334444"


@pytest.fixture
def city(clean_app, make_tenant, twilio_fake):
    """A city on Twilio (the fake) with the standard chain, whose last step is its staff."""
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    saved = clean_app.config["TWILIO_API_BASE_URL"]
    clean_app.config["TWILIO_API_BASE_URL"] = twilio_fake.url
    tenant = make_tenant("hachioji", "八王子市", twilio={
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": "+815012345678"},
        **NO_QUIET_HOURS)
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(
        chain["id"], starts_on=MONDAY)))
    created(tenant.api.post("/api/v1/residents", resident_body(
        name="山田 花子", check_policy_id=policy["id"], contacts=[])))
    yield tenant
    clean_app.config["TWILIO_API_BASE_URL"] = saved


@pytest.fixture
def people(city, make_user):
    return {"admin": make_user("admin@city.hachioji.jp", "admin", city.id),
            "tanaka": make_user("tanaka@city.hachioji.jp", "staff", city.id),
            "suzuki": make_user("suzuki@city.hachioji.jp", "staff", city.id)}


def _user_id(app, email):
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def _admin(app, login):
    """The tenant admin's browser (the test client), signed in."""
    client = app.test_client()
    client.post("/login", data={"csrf_token": _token(client, "/login"), "email": login.email,
                                "password": PASSWORD})
    return client


def _token(client, path):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def _put_on_duty(app, admin, email, phone, on_duty=True):
    user_id = _user_id(app, email)
    page = f"/t/hachioji/staff/{user_id}"
    form = {"csrf_token": _token(admin, page), "phone": phone, "line_user_id": ""}
    if on_duty:
        form["on_duty"] = "1"
    return admin.post(f"{page}/duty", data=form)


def _add_to_rota(app, admin, email, weekday, starts_at, ends_at):
    return admin.post("/t/hachioji/staff/rota", data={
        "csrf_token": _token(admin, "/t/hachioji/staff/"), "user_id": _user_id(app, email),
        "weekday": weekday, "starts_at": starts_at, "ends_at": ends_at})


def _miss_the_check_until_staff(engine, day):
    """09:00 check, no answer; the window closes at 10:00; the staff step fires at 11:30."""
    for clock in ("09:00", "10:00", "11:30"):
        engine.run(tokyo(f"{day} {clock}"))


def _timeline(city):
    [incident] = city.api.get("/api/v1/incidents?status=open").get_json()["items"][-1:]
    return [event["detail"] for event in incident["timeline"]]


def test_the_staff_step_reaches_who_the_admin_put_on_duty(clean_app, engine, city, people,
                                                          twilio_fake):
    """When an admin puts a staff member on duty on the staff page, does the chain's staff step
    text them, instead of skipping with 連絡できる相手がいません?"""
    admin = _admin(clean_app, people["admin"])
    assert _put_on_duty(clean_app, admin, "tanaka@city.hachioji.jp", "080-1111-2222").status_code == 302
    _miss_the_check_until_staff(engine, MONDAY)
    [message] = twilio_fake.messages_to(TANAKA_PHONE)
    assert "山田 花子" in message.body
    assert twilio_fake.messages_to(SUZUKI_PHONE) == []
    assert "通知順序 4: 連絡できる相手がいません" not in _timeline(city)  # the staff step


def test_the_rota_decides_who_is_reached_by_the_time(clean_app, engine, city, people,
                                                     twilio_fake):
    """With a weekly rota, is the staff member on the rota at that moment reached, and not the
    one ticked 当番 (the rota takes precedence)?"""
    admin = _admin(clean_app, people["admin"])
    assert _put_on_duty(clean_app, admin, "tanaka@city.hachioji.jp", "080-1111-2222").status_code == 302
    assert _put_on_duty(clean_app, admin, "suzuki@city.hachioji.jp", "080-3333-4444",
                        on_duty=False).status_code == 302
    assert _add_to_rota(clean_app, admin, "tanaka@city.hachioji.jp", 0, "08:30", "17:15").status_code == 302
    assert _add_to_rota(clean_app, admin, "suzuki@city.hachioji.jp", 1, "08:30", "17:15").status_code == 302

    _miss_the_check_until_staff(engine, MONDAY)
    assert len(twilio_fake.messages_to(TANAKA_PHONE)) == 1
    assert twilio_fake.messages_to(SUZUKI_PHONE) == []

    _miss_the_check_until_staff(engine, TUESDAY)
    assert len(twilio_fake.messages_to(TANAKA_PHONE)) == 1
    assert len(twilio_fake.messages_to(SUZUKI_PHONE)) == 1


def test_a_night_rota_line_runs_into_the_next_morning(clean_app, city, people):
    """Is a rota line ending before it starts (17:15 to 08:30) on duty through the night into
    the next day, in the tenant's time zone, and nobody outside the rota's hours?"""
    admin = _admin(clean_app, people["admin"])
    assert _add_to_rota(clean_app, admin, "suzuki@city.hachioji.jp", 0, "17:15", "08:30").status_code == 302
    assert _add_to_rota(clean_app, admin, "tanaka@city.hachioji.jp", 1, "08:30", "17:15").status_code == 302

    def on_duty(at):
        with clean_app.app_context(), bind_tenant(city.id):
            tenant = db.session.get(Tenant, city.id)
            return [u.email.split("@")[0] for u in staff_service.on_duty_staff(tenant, tokyo(at))]

    assert on_duty(f"{MONDAY} 17:00") == []
    assert on_duty(f"{MONDAY} 23:00") == ["suzuki"]
    assert on_duty(f"{TUESDAY} 08:29") == ["suzuki"]
    assert on_duty(f"{TUESDAY} 08:30") == ["tanaka"]
    assert on_duty(f"{TUESDAY} 17:15") == []


def test_bad_duty_input_is_refused_and_changes_nothing(clean_app, city, people):
    """Is a phone that is not a number, or a rota time like 25:00, refused in Japanese with
    nothing saved?"""
    admin = _admin(clean_app, people["admin"])
    refused = _put_on_duty(clean_app, admin, "tanaka@city.hachioji.jp", "not a phone")
    assert refused.status_code == 422
    assert "電話番号の形式で入力してください" in refused.get_data(as_text=True)
    refused = _add_to_rota(clean_app, admin, "tanaka@city.hachioji.jp", 9, "25:00", "17:15")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "曜日を選んでください" in page and "開始時刻を 08:30 のように入力してください" in page
    refused = _add_to_rota(clean_app, admin, "nobody@example.jp", 0, "08:30", "17:15")
    assert refused.status_code == 422
    with clean_app.app_context(), bind_tenant(city.id):
        tanaka = db.session.scalar(select(User).where(User.email == "tanaka@city.hachioji.jp"))
        assert (tanaka.phone, tanaka.on_duty) == (None, False)
        assert staff_service.rota() == []


def test_only_admins_set_who_is_on_duty(clean_app, city, people):
    """Can a staff member (not an admin) put themselves on duty or change the rota?"""
    tanaka = _admin(clean_app, people["tanaka"])
    user_id = _user_id(clean_app, "tanaka@city.hachioji.jp")
    token = _token(tanaka, "/t/hachioji/")
    assert tanaka.post(f"/t/hachioji/staff/{user_id}/duty", data={
        "csrf_token": token, "phone": "080-1111-2222", "on_duty": "1"}).status_code == 403
    assert tanaka.post("/t/hachioji/staff/rota", data={
        "csrf_token": token, "user_id": user_id, "weekday": 0, "starts_at": "08:30",
        "ends_at": "17:15"}).status_code == 403


def test_the_chain_editor_warns_of_steps_that_reach_nobody(live_server, page, city, people):
    """Does the chain editor warn, next to the staff step, that nobody is on duty, and stop
    warning once an admin puts someone with a phone on duty from the staff page?"""
    chain = city.api.get("/api/v1/alert-chains").get_json()["items"][0]
    created(city.api.post("/api/v1/alert-chains", {"name": "リーダーへ", "steps": [
        {"after_minutes": 0, "target": "group_leader"}]}))
    sign_in(page, live_server, people["admin"])
    page.goto(f"{live_server}/t/hachioji/chains/{chain['id']}")
    staff_step = page.locator("fieldset.step").nth(3)
    expect(staff_step.locator(".step-note")).to_contain_text("いま当番の職員がいない")
    expect(page.locator("fieldset.step").nth(1).locator(".step-note")).to_contain_text(
        "利用者ごとに登録された緊急連絡先")
    expect(page.locator("fieldset.step").nth(0).locator(".step-note")).to_have_count(0)

    page.get_by_role("navigation").get_by_role("link", name="職員", exact=True).click()
    expect(page.locator("#on-duty-now")).to_contain_text("いま当番の職員はいません")
    page.locator("#staff-list tr", has_text="tanaka@").get_by_role("link").click()
    page.get_by_label("電話番号").fill("080-1111-2222")
    page.get_by_label("当番", exact=True).check()
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status").filter(has_text="当番と連絡先を保存しました")).to_be_visible()

    page.goto(f"{live_server}/t/hachioji/chains/{chain['id']}")
    expect(page.locator("fieldset.step").nth(3).locator(".step-note")).to_have_count(0)
    page.goto(f"{live_server}/t/hachioji/chains")
    page.get_by_role("main").get_by_role("link", name="リーダーへ").click()
    expect(page.locator("fieldset.step").nth(0).locator(".step-note")).to_contain_text(
        "リーダーが設定されたグループがない")


def test_another_tenants_rota_and_staff_are_not_found(clean_app, city, people, make_tenant,
                                                      make_user):
    """Can another tenant's admin delete this city's rota lines, put its staff on duty or on
    its own rota, by putting their ids in the URL or the form?"""
    admin = _admin(clean_app, people["admin"])
    assert _add_to_rota(clean_app, admin, "tanaka@city.hachioji.jp", 0, "08:30", "17:15").status_code == 302
    with clean_app.app_context(), bind_tenant(city.id):
        [slot] = staff_service.rota()
        slot_id = slot.id
    tanaka_id = _user_id(clean_app, "tanaka@city.hachioji.jp")
    other = make_tenant("tachikawa", "立川市")
    stranger = _admin(clean_app, make_user("admin@city.tachikawa.jp", "admin", other.id))
    token = _token(stranger, "/t/tachikawa/staff/")
    assert stranger.post(f"/t/tachikawa/staff/rota/{slot_id}/delete",
                         data={"csrf_token": token}).status_code == 404
    assert stranger.post(f"/t/tachikawa/staff/{tanaka_id}/duty", data={
        "csrf_token": token, "phone": "080-9999-9999", "on_duty": "1"}).status_code == 404
    assert stranger.post("/t/tachikawa/staff/rota", data={
        "csrf_token": token, "user_id": tanaka_id, "weekday": 0, "starts_at": "08:30",
        "ends_at": "17:15"}).status_code == 422
    with clean_app.app_context(), bind_tenant(city.id):
        assert [s.id for s in staff_service.rota()] == [slot_id]
        tanaka = db.session.get(User, tanaka_id)
        assert (tanaka.phone, tanaka.on_duty) == (None, False)
    with clean_app.app_context(), bind_tenant(other.id):
        assert staff_service.rota() == []
