"""The residents' pages in a real browser: search, filters, pages, the resident's calendar and
pauses, and forms that accept and refuse exactly what the API does."""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import AuditEvent
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from tests.ui_support import DAY1, assign, daily_policy, miss_a_check, resident


def rows(page):
    return page.locator("table.residents tbody tr")


def test_hiragana_search_finds_katakana_kana(live_server, page, tenant, make_user):
    """Does typing a name in ひらがな (or half-width カナ) find the resident whose kana is カタカナ?"""
    resident(tenant, name="山田 花子", name_kana="ヤマダ ハナコ")
    resident(tenant, name="佐藤 幸子", name_kana="サトウ サチコ")
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.get_by_role("link", name="利用者", exact=True).click()
    expect(rows(page)).to_have_count(2)
    for query in ("やまだ はなこ", "やまだはなこ", "ﾔﾏﾀﾞ", "山田花子"):
        page.get_by_label("氏名・フリガナ・電話番号").fill(query)
        page.get_by_role("button", name="検索").click()
        expect(rows(page)).to_have_count(1)
        expect(rows(page).first).to_contain_text("山田 花子")
    page.get_by_label("氏名・フリガナ・電話番号").fill("090-1234-5678")
    page.get_by_role("button", name="検索").click()
    expect(rows(page)).to_have_count(2)  # both have the factory's phone number
    page.get_by_label("氏名・フリガナ・電話番号").fill("すずき")
    page.get_by_role("button", name="検索").click()
    expect(page.get_by_text("条件に合う利用者はいません。")).to_be_visible()


def test_thousands_are_paged(live_server, page, tenant, make_user):
    """With a register of many residents, does the list come in pages in kana order?"""
    kana = "アイウエオカキクケコサシスセソ"  # in the order they sort
    lines = ["氏名,フリガナ,電話番号"] + [
        f"利用者 {n:03d},リヨウシャ {kana[n // 10]}{kana[n % 10]},090-1234-{n:04d}" for n in range(1, 121)]
    response = tenant.api.post("/api/v1/residents/import", data="\n".join(lines).encode(),
                               headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.get_json()
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents")
    expect(page.locator(".result-count")).to_have_text("120人")
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_contain_text("利用者 001")
    expect(page.locator(".pager").first).to_contain_text("120件中 1〜50件")
    screenshot(page, "residents-list")
    page.get_by_role("link", name="次へ").click()
    expect(rows(page).first).to_contain_text("利用者 051")
    page.get_by_role("link", name="次へ").click()
    expect(rows(page)).to_have_count(20)
    expect(page.get_by_role("link", name="次へ")).to_have_count(0)


def test_filters_by_todays_status_channel_group_and_pause(live_server, page, tenant, make_user):
    """Can staff list who has not answered today, who is on SMS, in a group, or paused?"""
    group = tenant.api.post("/api/v1/groups", {"name": "緑町サロン"}).get_json()
    hanako = resident(tenant, name="山田 花子", name_kana="ヤマダ ハナコ", group_ids=[group["id"]])
    taro = resident(tenant, name="田中 太郎", name_kana="タナカ タロウ", channels=["voice"])
    resident(tenant, name="佐藤 幸子", name_kana="サトウ サチコ")
    tenant.api.post(f"/api/v1/residents/{taro['id']}/pause",
                    {"until": (date.today() + timedelta(days=10)).isoformat()})
    assert tenant.api.post("/api/v1/rounds", {"message": "ご無事ですか?"}).status_code == 201
    hanako_check = tenant.api.get(f"/api/v1/checks?resident_id={hanako['id']}").get_json()["items"][0]
    assert tenant.api.post(f"/api/v1/checks/{hanako_check['id']}/answer", {}).status_code == 200

    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    expect(page.locator("section[aria-labelledby=unanswered-h] tbody tr")).to_have_count(1)
    expect(page.locator("section[aria-labelledby=unanswered-h]")).to_contain_text("佐藤 幸子")
    page.goto(f"{live_server}/t/musashino/residents")

    def names_for(label, option):
        page.goto(f"{live_server}/t/musashino/residents")
        page.get_by_label(label, exact=True).select_option(label=option)
        with page.expect_navigation():
            page.get_by_role("button", name="検索").click()
        return sorted(rows(page).locator("a.name").all_inner_texts())

    assert names_for("きょうの状況", "まだ応答がない方") == ["佐藤 幸子"]
    assert names_for("きょうの状況", "応答あり") == ["山田 花子"]
    assert names_for("きょうの状況", "きょうは確認なし") == ["田中 太郎"]  # paused: left out
    assert names_for("連絡方法", "SMS") == ["佐藤 幸子", "山田 花子"]
    assert names_for("連絡方法", "LINE(未連携)") == ["佐藤 幸子", "山田 花子"]
    assert names_for("グループ", "緑町サロン") == ["山田 花子"]
    assert names_for("休止", "休止中") == ["田中 太郎"]
    expect(rows(page).first).to_contain_text("休止中")


def test_form_normalises_like_the_api(live_server, page, tenant, make_user):
    """Does the registration form accept era dates, hiragana and full-width phones as the API does?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents/new")
    page.locator("#name").fill("鈴木 一郎")
    page.locator("#name_kana").fill("すずき いちろう")
    page.locator("#birth_date").fill("昭和12年11月3日")
    page.locator("#phone").fill("０９０１２３４５６７８")
    page.locator("#contacts-0-name").fill("鈴木 花子")
    page.locator("#contacts-0-phone").fill("080-2222-3333")
    page.locator("#contacts-0-relation_note").fill("長女")
    page.get_by_role("button", name="登録する").click()
    expect(page.locator(".flash-success")).to_contain_text("鈴木 一郎さんを登録しました")
    expect(page.get_by_role("heading", level=1)).to_contain_text("スズキ イチロウ")
    expect(page.locator(".facts")).to_contain_text("1937年11月3日(水)")
    [made] = tenant.api.get("/api/v1/residents").get_json()["items"]
    api = tenant.api.post("/api/v1/residents", {
        "name": "鈴木 一郎", "name_kana": "すずき いちろう", "birth_date": "昭和12年11月3日",
        "phone": "０９０１２３４５６７８", "contacts": [
            {"name": "鈴木 花子", "phone": "080-2222-3333", "relation_note": "長女"}]}).get_json()
    for key in ("name_kana", "birth_date", "phone", "channels"):
        assert made[key] == api[key], key
    assert [c["phone"] for c in made["contacts"]] == ["+818022223333"]
    assert made["contacts"][0]["channels"] == api["contacts"][0]["channels"] == ["sms", "voice"]


def test_form_shows_the_apis_errors_beside_the_fields(live_server, page, tenant, make_user):
    """Are a bad phone and non-kana フリガナ refused as the API refuses them, beside the fields?"""
    refused = tenant.api.post("/api/v1/residents", {"name": "鈴木 一郎", "name_kana": "suzuki",
                                                    "phone": "12345"})
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"name_kana", "phone"}
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents/new")
    page.locator("#name").fill("鈴木 一郎")
    page.locator("#name_kana").fill("suzuki")
    page.locator("#phone").fill("12345")
    page.get_by_role("button", name="登録する").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("入力内容を確認してください")
    expect(summary.get_by_role("link")).to_have_count(2)
    phone = page.locator(".field.has-error", has=page.locator("#phone"))
    expect(phone).to_contain_text("電話番号として正しくありません(12345)")
    expect(page.locator("#phone")).to_have_attribute("aria-describedby", "phone-help")
    expect(page.locator(".field.has-error", has=page.locator("#name_kana"))).to_contain_text("フリガナ")
    expect(page.locator("#name")).to_have_value("鈴木 一郎")  # what was typed stays
    page.locator("#phone").fill("")
    page.locator("#name_kana").fill("")
    page.locator("#channel_1").select_option(label="SMS")
    page.get_by_role("button", name="登録する").click()
    expect(page.locator(".field.has-error", has=page.locator("#phone"))).to_contain_text(
        "SMSと電話には電話番号が必要です")
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_edit_changes_a_contact_and_adds_another(live_server, page, tenant, make_user):
    """Does editing keep the contact's identity while changing it, and add a second one?"""
    person = resident(tenant)
    first_contact = person["contacts"][0]["id"]
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents/{person['id']}")
    page.get_by_role("link", name="登録内容を変更").click()
    expect(page.locator("#contacts-0-phone")).to_have_value("080-1234-5678")
    page.locator("#contacts-0-phone").fill("080-9999-0000")
    page.locator("#contacts-1-name").fill("北町 民子")
    page.locator("#contacts-1-phone").fill("0422-60-1800")
    page.locator("#contacts-1-relation").select_option(label="民生委員")
    page.locator("#contacts-1-channels").select_option(label="電話(音声)")
    page.get_by_role("button", name="保存する").click()
    expect(page.locator(".flash-success")).to_contain_text("保存しました")
    contacts = tenant.api.get(f"/api/v1/residents/{person['id']}").get_json()["contacts"]
    assert (contacts[0]["id"], contacts[0]["phone"]) == (first_contact, "+818099990000")
    assert contacts[1]["relation"] == "welfare_commissioner" and contacts[1]["channels"] == ["voice"]
    expect(page.locator("a[href='tel:+81422601800']")).to_be_visible()


def test_pause_then_resume(live_server, page, tenant, make_user):
    """Can staff pause checks until a given day (the day they resume) and resume them early?"""
    person = resident(tenant)
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents/{person['id']}")
    today = date.today()
    page.get_by_label("再開する日").fill(today.isoformat())
    page.get_by_role("button", name="休止する").click()
    expect(page.locator(".field.has-error", has=page.get_by_label("再開する日"))).to_contain_text(
        "再開日は休止の開始日より後にしてください")
    resume_on = today + timedelta(days=7)
    page.get_by_label("再開する日").fill(resume_on.isoformat())
    page.get_by_label("理由(任意)").fill("入院")
    page.get_by_role("button", name="休止する").click()
    expect(page.locator("h1 .badge-paused")).to_contain_text("休止中")
    expect(page.locator(".pauses")).to_contain_text("入院")
    assert tenant.api.get(f"/api/v1/residents/{person['id']}").get_json()["paused_until"] == \
        resume_on.isoformat()
    page.get_by_role("button", name="きょうから再開する").click()
    expect(page.locator("h1 .badge-paused")).to_have_count(0)
    assert tenant.api.get(f"/api/v1/residents/{person['id']}").get_json()["paused_until"] is None


def test_calendar_shows_each_days_answer_in_symbol_and_word(clean_app, live_server, page, tenant,
                                                            make_user, engine):
    """Does the 30-day calendar say, in a symbol and a word, which days were answered or missed,
    and is viewing the page recorded in the audit log?"""
    policy = daily_policy(tenant)
    person = resident(tenant, check_policy_id=policy["id"])
    engine.run(tokyo(f"{DAY1} 09:00"))
    [check] = tenant.api.get(f"/api/v1/checks?resident_id={person['id']}").get_json()["items"]
    tenant.api.post(f"/api/v1/checks/{check['id']}/answer", {})
    miss_a_check(engine, "2030-04-02")
    tenant.api.post(f"/api/v1/residents/{person['id']}/pause",
                    {"from": "2030-04-03", "until": "2030-04-04", "reason": "旅行"})
    engine.run(tokyo("2030-04-03 09:00"))
    engine.run(tokyo("2030-04-04 09:00"))
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/musashino/residents/{person['id']}?until=2030-04-05")
    cells = {re.sub(r"\s+", " ", text.strip()).split(" ")[0]: re.sub(r"\s+", " ", text.strip())
             for text in page.locator("td.day:not(.day-empty)").all_inner_texts()}
    assert len(cells) == 30
    assert cells["4/1"].startswith("4/1 ○ 応答あり")
    assert cells["4/2"].startswith("4/2 × 応答なし")
    assert cells["4/3"] == "4/3 － 休止"
    assert cells["4/4"].startswith("4/4 … 応答待ち")
    assert cells["4/5"] == "4/5 ・ 確認なし"
    assert cells["3/31"] == "3/31 ・ 確認なし"
    expect(page.locator("#calendar-h")).to_contain_text("2030年3月7日(木) 〜 2030年4月5日(金)")
    screenshot(page, "resident-page-calendar")
    with clean_app.app_context():
        viewed = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "resident.view")).all()
    assert [(e.target_type, e.target_id) for e in viewed] == [("Resident", person["id"])]
    assert viewed[0].actor_user_id is not None


def test_commissioner_sees_only_assigned_residents(clean_app, live_server, page, tenant, make_user):
    """Does a commissioner's login list only their residents, and 404 on anyone else's page?"""
    mine = resident(tenant, name="山田 花子", name_kana="ヤマダ ハナコ")
    other = resident(tenant, name="佐藤 幸子", name_kana="サトウ サチコ")
    login = make_user("minsei@example.jp", "commissioner", tenant.id)
    assign(clean_app, login.email, mine["id"])
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/musashino/residents")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("山田 花子")
    expect(page.get_by_role("link", name="利用者を登録")).to_have_count(0)
    assert page.goto(f"{live_server}/t/musashino/residents/{mine['id']}").status == 200
    assert page.goto(f"{live_server}/t/musashino/residents/{other['id']}").status == 404
    assert "佐藤" not in page.content()
    assert page.goto(f"{live_server}/t/musashino/residents/{mine['id']}/edit").status == 403


def test_viewer_reads_but_cannot_change(live_server, page, tenant, make_user):
    """Does a viewer see a resident without any form to change them?"""
    person = resident(tenant)
    sign_in(page, live_server, make_user("etsuran@city.musashino.jp", "viewer", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents/{person['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("山田 花子")
    expect(page.get_by_role("link", name="登録内容を変更")).to_have_count(0)
    expect(page.get_by_role("button", name="休止する")).to_have_count(0)
    assert page.goto(f"{live_server}/t/musashino/residents/new").status == 403


def test_another_tenants_resident_is_not_found(live_server, page, make_tenant, make_user):
    """Can a user of tenant A open tenant B's resident or group by putting its id in their URL?"""
    a = make_tenant("tenant-a", "A市")
    b = make_tenant("tenant-b", "B市")
    theirs = resident(b, name="別市 太郎")
    their_group = b.api.post("/api/v1/groups", {"name": "別市サロン"}).get_json()
    sign_in(page, live_server, make_user("a@a.jp", "admin", a.id))
    assert page.goto(f"{live_server}/t/tenant-a/residents/{theirs['id']}").status == 404
    assert page.goto(f"{live_server}/t/tenant-a/residents/{theirs['id']}/edit").status == 404
    assert page.goto(f"{live_server}/t/tenant-b/residents/{theirs['id']}").status == 404
    assert page.goto(f"{live_server}/t/tenant-a/groups/{their_group['id']}").status == 404
    page.goto(f"{live_server}/t/tenant-a/residents")
    expect(page.get_by_text("条件に合う利用者はいません。")).to_be_visible()
