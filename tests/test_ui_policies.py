"""The check-policy and alert-chain editors in a real browser: saved as the API saves them."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.factories import chain_body, created, policy_body, resident_body
from tests.fixtures.browser import screenshot, sign_in

JAPANESE_DATE_TIME = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日\([月火水木金土日]\) \d{2}:\d{2}$")


def fits_tablet(page) -> None:
    """At a tablet's width (768 px) the page reflows: nothing is cut off or scrolls sideways."""
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    page.set_viewport_size({"width": 1280, "height": 800})


def _admin(page, live_server, tenant, make_user):
    sign_in(page, live_server, make_user("kanri@city.musashino.jp", "admin", tenant.id))
    return f"{live_server}/t/{tenant.slug}"


def _fill_step(page, index, after, target, priority="", channel=""):
    row = page.locator("fieldset.step").nth(index)
    row.get_by_label("期限後(分)").fill(after)
    row.get_by_label("通知先").select_option(label=target)
    row.get_by_label("連絡先の優先順位").fill(priority)
    if channel:
        row.get_by_label("手段").select_option(label=channel)


def test_admin_creates_a_policy_and_chain(live_server, page, tenant, make_user):
    """Can an admin create an alert chain and a check policy in the editors, and see the next
    checks previewed in the tenant's zone (Tokyo) before saving?"""
    base = _admin(page, live_server, tenant, make_user)

    page.goto(f"{base}/chains")
    page.get_by_role("link", name="通知順序を追加").click()
    page.get_by_label("名前").fill("標準")
    _fill_step(page, 0, "0", "本人", channel="電話")
    _fill_step(page, 1, "30", "緊急連絡先", priority="1", channel="SMS")
    _fill_step(page, 2, "60", "緊急連絡先")
    _fill_step(page, 3, "75", "担当職員")
    page.locator("fieldset.step").nth(3).get_by_label("この段階を削除").check()
    page.get_by_role("button", name="行を追加").click()
    # One more row; the row ticked for removal is gone and the typed rows are kept.
    expect(page.locator("fieldset.step")).to_have_count(4)
    expect(page.locator("fieldset.step").nth(1).get_by_label("期限後(分)")).to_have_value("30")
    _fill_step(page, 3, "90", "担当職員")
    screenshot(page, "chain-editor")
    fits_tablet(page)
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("通知順序「標準」を保存しました")
    expect(page.locator("table.data")).to_contain_text("30分後 緊急連絡先(優先順位1) SMS")

    [chain] = tenant.api.get("/api/v1/alert-chains").get_json()["items"]
    assert [(s["after_minutes"], s["target"], s["priority"], s["channel"]) for s in chain["steps"]] == [
        (0, "resident", None, "voice"), (30, "contacts", 1, "sms"), (60, "contacts", None, None),
        (90, "staff", None, None)]

    page.goto(f"{base}/policies")
    page.get_by_role("link", name="見守り設定を追加").click()
    page.get_by_label("名前").fill("毎日9時")
    page.get_by_label("毎日・N日ごと").check()
    page.get_by_label("何日ごと").fill("1")
    page.get_by_label("時刻").fill("09:00")
    page.get_by_label("開始日(空欄なら今日)").fill("2030-04-01")
    page.get_by_label("再送までの時間(分)").fill("30")
    page.get_by_label("応答期限(分)").fill("60")
    page.get_by_label("通知順序").select_option(label="標準")
    page.get_by_role("button", name="プレビュー").click()
    preview = page.locator(".preview li")
    expect(preview).to_have_count(5)
    # 09:00 in Tokyo is 00:00 UTC: a preview in the wrong zone would not say 09:00.
    expect(preview.first).to_have_text("2030年4月1日(月) 09:00")
    expect(preview.nth(1)).to_have_text("2030年4月2日(火) 09:00")
    for text in preview.all_inner_texts():
        assert JAPANESE_DATE_TIME.match(text), text
    # The preview saved nothing, and the form kept what was typed.
    assert tenant.api.get("/api/v1/check-policies").get_json()["items"] == []
    expect(page.get_by_label("通知順序")).to_have_value(str(chain["id"]))
    screenshot(page, "policy-editor-preview")
    fits_tablet(page)

    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("見守り設定「毎日9時」を保存しました")
    row = page.locator("table.data tbody tr")
    expect(row).to_contain_text("毎日 09:00")
    expect(row).to_contain_text("2030年4月1日(月) 09:00")
    [policy] = tenant.api.get("/api/v1/check-policies").get_json()["items"]
    assert policy["rrule"] == "FREQ=DAILY;INTERVAL=1;BYHOUR=9;BYMINUTE=0;BYSECOND=0"
    assert policy["alert_chain_id"] == chain["id"]
    assert (policy["reminder_after_minutes"], policy["response_window_minutes"]) == (30, 60)
    assert policy["next_occurrences"][0] == "2030-04-01T09:00:00+09:00"


def test_weekly_policy_without_a_weekday_shows_the_field_error(live_server, page, tenant, make_user):
    """Is a weekly policy with no weekday refused, with the error next to the weekdays?"""
    base = _admin(page, live_server, tenant, make_user)
    page.goto(f"{base}/policies/new")
    page.get_by_label("名前").fill("週2回")
    page.get_by_label("曜日を選ぶ").check()
    page.get_by_label("時刻").fill("07:00")
    page.get_by_role("button", name="保存").click()
    weekdays = page.locator("fieldset.weekdays")
    expect(weekdays).to_contain_text("曜日を1つ以上選んでください")
    expect(page.get_by_role("checkbox", name="月")).to_have_attribute("type", "checkbox")
    expect(page.get_by_label("名前")).to_have_value("週2回")
    assert tenant.api.get("/api/v1/check-policies").get_json()["items"] == []

    # With weekdays chosen the same form saves, as the API would.
    page.get_by_role("checkbox", name="月").check()
    page.get_by_role("checkbox", name="木").check()
    page.get_by_role("button", name="保存").click()
    expect(page.locator("table.data")).to_contain_text("毎週 月・木 07:00")
    [policy] = tenant.api.get("/api/v1/check-policies").get_json()["items"]
    assert policy["schedule"] == {"freq": "weekly", "interval": 1, "weekdays": ["MO", "TH"],
                                  "time": "07:00"}


def test_editor_errors_are_the_apis(live_server, page, tenant, make_user):
    """Does the editor refuse what the API refuses (a reminder after the window, a step out of
    order), naming the field?"""
    base = _admin(page, live_server, tenant, make_user)
    page.goto(f"{base}/policies/new")
    page.get_by_label("名前").fill("遅すぎる再送")
    page.get_by_label("再送までの時間(分)").fill("90")
    page.get_by_label("応答期限(分)").fill("60")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".field:has(#f-reminder_after_minutes) .error")).to_have_text(
        re.compile("再送は応答期限より前にしてください"))
    api = tenant.api.post("/api/v1/check-policies", policy_body(
        reminder_after_minutes=90, response_window_minutes=60))
    assert api.status_code == 422 and "reminder_after_minutes" in api.get_json()["errors"]

    # An RRULE is checked as the API checks it, and previewed in the tenant's zone.
    page.get_by_label("RRULE(上級者向け)").check()
    page.get_by_label("RRULE", exact=True).fill("FREQ=DAILY;INTERVAL=2")
    page.get_by_role("button", name="プレビュー").click()
    expect(page.locator(".field:has(#f-rrule) .error")).to_contain_text("BYHOUR")
    page.get_by_label("RRULE", exact=True).fill("FREQ=DAILY;INTERVAL=2;BYHOUR=21;BYMINUTE=0")
    page.get_by_label("開始日(空欄なら今日)").fill("2030-04-01")
    page.get_by_role("button", name="プレビュー").click()
    expect(page.locator(".preview li").nth(1)).to_have_text("2030年4月3日(水) 21:00")

    page.goto(f"{base}/chains/new")
    page.get_by_label("名前").fill("順序違い")
    _fill_step(page, 0, "60", "本人")
    _fill_step(page, 1, "30", "担当職員", priority="2")
    page.get_by_role("button", name="保存").click()
    second = page.locator("fieldset.step").nth(1)
    expect(second).to_contain_text("優先順位は緊急連絡先への通知にだけ指定できます")
    second.get_by_label("連絡先の優先順位").fill("")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("fieldset.step").nth(1)).to_contain_text("前の段階より早くはできません")
    assert tenant.api.get("/api/v1/alert-chains").get_json()["items"] == []


def test_policy_followed_by_residents_is_not_deleted(live_server, page, tenant, make_user):
    """Is deleting a policy refused, with the reason, while residents follow it?"""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    created(tenant.api.post("/api/v1/residents", resident_body(check_policy_id=policy["id"])))
    base = _admin(page, live_server, tenant, make_user)
    page.goto(f"{base}/policies/{policy['id']}")
    expect(page.locator(".danger-zone")).to_contain_text("1 人の利用者")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="この見守り設定を削除").click()
    expect(page.get_by_role("alert")).to_contain_text("利用者がいるため削除できません")
    assert tenant.api.get(f"/api/v1/check-policies/{policy['id']}").status_code == 200


def test_pages_open_in_english(live_server, page, tenant, make_user):
    """Do these pages all open, without errors, for an admin who chose English?"""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    person = created(tenant.api.post("/api/v1/residents", resident_body(
        check_policy_id=policy["id"])))
    round_id = created(tenant.api.post("/api/v1/rounds", {"message": "訓練です"}))["id"]
    base = _admin(page, live_server, tenant, make_user)
    page.select_option("#locale", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for path in ("/policies", "/policies/new", f"/policies/{policy['id']}", "/chains",
                 "/chains/new", f"/chains/{chain['id']}", "/rounds", f"/rounds/{round_id}",
                 f"/rounds/{round_id}/tally.json", "/stats", "/stats?month=2030-04", "/audit",
                 "/simulator", f"/simulator?resident={person['id']}"):
        assert page.goto(base + path).status == 200, path
    page.goto(f"{base}/policies/new")
    page.get_by_role("button", name=re.compile("プレビュー|Preview")).click()
    expect(page.locator(".preview li").first).to_have_text(re.compile(r"^\w{3}, \w{3} \d+, \d{4} 09:00$"))
    assert errors == []
