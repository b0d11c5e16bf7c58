"""A staff member's day in a real browser: onboard a register from Shift_JIS CSV, see a missed
check become an incident, follow its timeline and resolve it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from tests.ui_support import DAY1, daily_policy

HEADER = "管理番号,氏名,フリガナ,生年月日,電話番号,見守り設定,緊急連絡先氏名,緊急連絡先電話番号,続柄\n"
HANAKO = "A-0001,山田 花子,やまだ はなこ,昭和15年4月1日,090-1234-5678,毎日9時,山田 太郎,080-1111-2222,長男\n"
SACHIKO = "A-0003,佐藤 幸子,ｻﾄｳ ｻﾁｺ,1938/7/15,080-5555-6666,,,,\n"


def ichiro(phone: str) -> str:
    # 髙 exists only in Microsoft's Shift_JIS (CP932), as Excel writes it.
    return f"A-0002,髙橋 一郎,たかはし いちろう,S12.11.3,{phone},,,,\n"


def upload(page, text: str) -> None:
    page.set_input_files("#file", files=[{"name": "meibo.csv", "mimeType": "text/csv",
                                          "buffer": text.encode("cp932")}])
    page.get_by_role("button", name="内容を確認する").click()


def test_staff_imports_then_resolves_a_missed_check(live_server, page, tenant, make_user, engine):
    """Can staff import a Shift_JIS register (seeing the bad row first), then find, follow and
    resolve the incident of the one resident who did not answer?"""
    daily_policy(tenant)
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))

    page.get_by_role("link", name="取り込み").click()
    expect(page.get_by_role("cell", name="緊急連絡先電話番号")).to_be_visible()  # the headers
    upload(page, HEADER + HANAKO + ichiro("03-123") + SACHIKO)
    errors = page.locator("table.import-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("3行目")
    expect(errors.first).to_contain_text("電話番号 (phone)")
    expect(errors.first).to_contain_text("03-123")
    expect(page.get_by_role("alert")).to_contain_text("まだ何も登録していません")
    expect(page.get_by_role("button", name="取り込む")).to_have_count(0)
    screenshot(page, "import-preview-with-error")
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []

    upload(page, HEADER + HANAKO + ichiro("0422-51-1234") + SACHIKO)
    expect(page.locator("table.import-errors")).to_have_count(0)
    expect(page.locator(".preview .tally")).to_contain_text("3")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="取り込む").click()
    expect(page.get_by_role("heading", name="取り込みました")).to_be_visible()
    imported = {r["name"]: r for r in tenant.api.get("/api/v1/residents").get_json()["items"]}
    assert set(imported) == {"山田 花子", "髙橋 一郎", "佐藤 幸子"}
    assert imported["髙橋 一郎"]["phone"] == "+81422511234"
    assert imported["山田 花子"]["name_kana"] == "ヤマダ ハナコ"

    engine.run(tokyo(f"{DAY1} 09:00"))  # sent, not yet answered: no incident
    page.get_by_role("link", name="きょう").click()
    expect(page.locator(".incidents-card")).to_contain_text("未確認の方はいません")
    engine.run(tokyo(f"{DAY1} 10:00"))  # the window closes unanswered
    page.reload()
    incidents = page.locator(".incidents-card .incident-list li")
    expect(incidents).to_have_count(1)
    expect(incidents.first).to_contain_text("山田 花子")
    expect(incidents.first).to_contain_text("未対応")
    screenshot(page, "dashboard-with-incident")

    incidents.first.get_by_role("link", name=re.compile("山田 花子")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("山田 花子")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("案件発生")
    expect(timeline).to_contain_text("2030年4月1日(月) 10:00")
    expect(timeline).to_contain_text("通知順序 1: 本人に連絡します")
    expect(page.locator("a[href='tel:+818011112222']")).to_contain_text("080-1111-2222")
    screenshot(page, "incident-page")

    page.get_by_label("入院").check()
    page.get_by_label("対応の記録").fill("救急搬送され、市立病院に入院")
    page.get_by_role("button", name="解決する").click()
    expect(page.locator(".flash-success")).to_contain_text("「入院」として解決しました")
    expect(timeline).to_contain_text("対応結果: 入院(救急搬送され、市立病院に入院)")
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert incident["status"] == "resolved" and incident["outcome"] == "hospitalised"

    page.get_by_role("link", name="きょう").click()
    expect(page.locator(".incidents-card")).to_contain_text("未確認の方はいません")
    expect(page.locator(".incidents-card .incident-list")).to_have_count(0)
