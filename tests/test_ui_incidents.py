"""Incidents in a real browser: escalated ones on top, what each role may do, and a resident's
own call recorded by staff."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import AuditEvent, User
from tests.factories import created
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from tests.ui_support import DAY1, assign, daily_policy, miss_a_check, open_incidents, resident


def csrf(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def test_escalated_incidents_come_first(live_server, page, tenant, make_user, engine):
    """Is an incident the chain has escalated to staff listed above an older one that is not?"""
    standard = daily_policy(tenant)
    quiet_chain = created(tenant.api.post("/api/v1/alert-chains", {
        "name": "本人のみ", "steps": [{"after_minutes": 0, "target": "resident"}]}))
    early = created(tenant.api.post("/api/v1/check-policies", {
        "name": "毎日8時", "schedule": {"freq": "daily", "interval": 1, "time": "08:00"},
        "response_window_minutes": 60, "alert_chain_id": quiet_chain["id"], "starts_on": DAY1}))
    resident(tenant, name="早起 一郎", name_kana="ハヤオキ イチロウ", check_policy_id=early["id"])
    resident(tenant, name="山田 花子", check_policy_id=standard["id"])
    for at in ("08:00", "09:00", "10:00", "11:30"):  # the standard chain reaches staff at 11:30
        engine.run(tokyo(f"{DAY1} {at}"))
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    items = page.locator(".incidents-card .incident-list li")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("山田 花子")
    expect(items.nth(0)).to_contain_text("職員対応")
    expect(items.nth(1)).to_contain_text("早起 一郎")
    expect(items.nth(1)).not_to_contain_text("職員対応")
    page.get_by_role("link", name="未確認案件", exact=True).click()
    table = page.locator("table.incidents tbody tr")
    expect(table.nth(0)).to_contain_text("山田 花子")
    expect(table.nth(0)).to_contain_text("職員対応")


def test_staff_record_the_residents_own_call(live_server, page, tenant, make_user, engine):
    """When the resident phones the office, does 本人から連絡あり answer the check and close the
    incident as safe, with what they said on the timeline?"""
    person = resident(tenant, check_policy_id=daily_policy(tenant)["id"])
    miss_a_check(engine)
    [incident] = open_incidents(tenant)
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/incidents/{incident['id']}")
    page.get_by_label("聞き取った内容(任意)").fill("買い物に出ていたとのこと")
    page.get_by_role("button", name="本人から連絡あり").click()
    expect(page.locator(".flash-success")).to_contain_text("「無事」として解決しました")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("本人の応答")
    expect(timeline).to_contain_text("職員が記録")
    expect(timeline).to_contain_text("買い物に出ていたとのこと")
    expect(page.get_by_role("button", name="本人から連絡あり")).to_have_count(0)
    [check] = tenant.api.get(f"/api/v1/checks?resident_id={person['id']}").get_json()["items"]
    assert check["status"] == "answered" and check["answered_via"] == "staff"
    resolved = tenant.api.get(f"/api/v1/incidents/{incident['id']}").get_json()
    assert resolved["status"] == "resolved" and resolved["outcome"] == "safe"


def test_staff_acknowledge_then_the_filter_finds_it(live_server, page, tenant, make_user, engine):
    """Does acknowledging say who is going, stop the chain, and move the incident to 対応中?"""
    resident(tenant, check_policy_id=daily_policy(tenant)["id"])
    miss_a_check(engine)
    [incident] = open_incidents(tenant)
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/incidents/{incident['id']}")
    page.get_by_role("button", name="解決する").click()  # without choosing an outcome
    expect(page.get_by_role("alert")).to_contain_text("対応結果: 対応結果を選んでください。")
    expect(page.locator("fieldset.has-error#outcome")).to_contain_text("対応結果を選んでください。")
    page.get_by_label("対応する人").fill("高齢福祉課 佐藤")
    page.get_by_label("メモ(任意)").fill("14時に訪問します")
    page.get_by_role("button", name="対応する").click()
    expect(page.locator("ol.timeline")).to_contain_text("高齢福祉課 佐藤さんが対応します:14時に訪問します")
    expect(page.locator(".facts")).to_contain_text("高齢福祉課 佐藤")
    assert tenant.api.get(f"/api/v1/incidents/{incident['id']}").get_json()["status"] == "acknowledged"
    page.goto(f"{live_server}/t/musashino/incidents?status=open")
    expect(page.get_by_text("該当する案件はありません。")).to_be_visible()
    page.get_by_label("表示する案件").select_option(label="対応中")
    expect(page.locator("table.incidents tbody tr")).to_have_count(1)
    page.get_by_label("表示する案件").select_option(label="解決済み")
    expect(page.get_by_text("該当する案件はありません。")).to_be_visible()


def test_commissioner_responds_only_on_assigned_residents(clean_app, live_server, page, tenant,
                                                         make_user, engine):
    """May a commissioner acknowledge and note their own resident's incident but not resolve it,
    and not even see anyone else's?"""
    policy = daily_policy(tenant)
    mine = resident(tenant, name="山田 花子", check_policy_id=policy["id"])
    resident(tenant, name="佐藤 幸子", check_policy_id=policy["id"])
    miss_a_check(engine)
    incidents = {i["resident_id"]: i["id"] for i in open_incidents(tenant)}
    login = make_user("minsei@example.jp", "commissioner", tenant.id)
    assign(clean_app, login.email, mine["id"])
    sign_in(page, live_server, login)
    items = page.locator(".incidents-card .incident-list li")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("山田 花子")
    others = [i for r, i in incidents.items() if r != mine["id"]]
    assert page.goto(f"{live_server}/t/musashino/incidents/{others[0]}").status == 404
    page.goto(f"{live_server}/t/musashino/incidents/{incidents[mine['id']]}")
    expect(page.get_by_role("button", name="解決する")).to_have_count(0)
    expect(page.get_by_role("button", name="本人から連絡あり")).to_have_count(0)
    page.get_by_label("対応する人").fill("民生委員 北町")
    page.get_by_role("button", name="対応する").click()
    expect(page.locator("ol.timeline")).to_contain_text("民生委員 北町さんが対応します")
    page.get_by_label("メモ", exact=True).fill("訪問し、元気な様子を確認")
    page.get_by_role("button", name="メモを追加").click()
    expect(page.locator("ol.timeline")).to_contain_text("訪問し、元気な様子を確認")
    refused = page.request.post(
        f"{live_server}/t/musashino/incidents/{incidents[mine['id']]}/resolve",
        form={"csrf_token": csrf(page), "outcome": "safe"})
    assert refused.status == 403
    assert tenant.api.get(f"/api/v1/incidents/{incidents[mine['id']]}").get_json()["status"] == \
        "acknowledged"


def test_viewer_only_reads(clean_app, live_server, page, tenant, make_user, engine):
    """Does a viewer see the timeline and contacts but no action, and get 403 posting one?
    Is their look at the resident's contacts in the audit log?"""
    resident(tenant, check_policy_id=daily_policy(tenant)["id"])
    miss_a_check(engine)
    [incident] = open_incidents(tenant)
    sign_in(page, live_server, make_user("etsuran@city.musashino.jp", "viewer", tenant.id))
    page.goto(f"{live_server}/t/musashino/incidents/{incident['id']}")
    expect(page.locator("ol.timeline")).to_contain_text("案件発生")
    expect(page.locator("a[href^='tel:']").first).to_be_visible()
    expect(page.locator("section.incident-actions")).to_have_count(0)
    for action in ("acknowledge", "notes", "resolve", "answer"):
        response = page.request.post(
            f"{live_server}/t/musashino/incidents/{incident['id']}/{action}",
            form={"csrf_token": csrf(page), "by": "x", "note": "x", "outcome": "safe"})
        assert response.status == 403, action
    assert open_incidents(tenant)[0]["id"] == incident["id"]
    with clean_app.app_context():
        viewed = db.session.execute(select(AuditEvent.target_type, AuditEvent.target_id, User.email)
                                    .join(User, User.id == AuditEvent.actor_user_id)
                                    .where(AuditEvent.action == "incident.view")).all()
    assert viewed == [("Incident", incident["id"], "etsuran@city.musashino.jp")]


def test_tablet_width_and_keyboard(live_server, page, tenant, make_user, engine):
    """On a tablet (768 px) do the incident and resident pages fit without sideways scrolling, and
    can a keyboard user reach the incident from the dashboard and open it?"""
    person = resident(tenant, check_policy_id=daily_policy(tenant)["id"])
    miss_a_check(engine)
    [incident] = open_incidents(tenant)
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    for path in ("/", f"/incidents/{incident['id']}", f"/residents/{person['id']}", "/residents",
                 "/import"):
        page.goto(f"{live_server}/t/musashino{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 768, (path, width)
        if path.startswith("/incidents/"):
            screenshot(page, "incident-page-tablet")
    page.goto(f"{live_server}/t/musashino/")
    link = page.locator(".incident-list a.name")
    for _ in range(40):
        page.keyboard.press("Tab")
        if link.evaluate("element => element === document.activeElement"):
            break
    else:
        raise AssertionError("the incident link is not reachable with Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server}/t/musashino/incidents/{incident['id']}")
