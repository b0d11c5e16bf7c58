"""Groups (グループ) in a real browser: creating one with a leader, its members, who sees them."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.fixtures.browser import sign_in
from tests.ui_support import assign, resident


def test_staff_create_a_group_and_gather_members(live_server, page, tenant, make_user):
    """Can staff create an area with an outside leader, add members found by ひらがな, and take
    one out again?"""
    hanako = resident(tenant, name="山田 花子", name_kana="ヤマダ ハナコ")
    taro = resident(tenant, name="山田 太郎", name_kana="ヤマダ タロウ")
    resident(tenant, name="佐藤 幸子", name_kana="サトウ サチコ")
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.get_by_role("link", name="グループ").click()
    page.get_by_role("link", name="グループを作る").click()
    page.get_by_label("グループ名").fill("中町一丁目")
    page.get_by_label("種類").select_option(label="地区")
    page.get_by_label("リーダーの氏名(メンバー以外の方)").fill("田村 和子")
    page.get_by_label("リーダーの電話番号").fill("090-3456-7801")
    page.get_by_role("button", name="作る").click()
    expect(page.locator(".flash-success")).to_contain_text("中町一丁目")
    expect(page.locator("a[href='tel:+819034567801']")).to_contain_text("090-3456-7801")

    page.get_by_label("氏名・フリガナで探す").fill("やまだ")
    page.get_by_role("button", name="検索").click()
    page.get_by_label("山田 花子").check()
    page.get_by_label("山田 太郎").check()
    page.get_by_role("button", name="選んだ方を加える").click()
    expect(page.locator(".flash-success")).to_contain_text("追加 2人")
    expect(page.locator("#members-h .count")).to_have_text("2")
    page.get_by_label("山田 太郎さんを外す").check()
    page.get_by_role("button", name="チェックした方をグループから外す").click()
    expect(page.locator("#members-h .count")).to_have_text("1")
    [group] = tenant.api.get("/api/v1/groups").get_json()["items"]
    assert group["member_ids"] == [hanako["id"]] and group["kind"] == "area"
    assert group["leader_phone"] == "+819034567801"
    assert taro["id"] not in group["member_ids"]

    page.get_by_role("link", name="グループを変更").click()
    page.get_by_label("リーダー(メンバーから選ぶ)").select_option(label="山田 花子")
    page.get_by_role("button", name="保存する").click()
    expect(page.locator("#leader-h + p")).to_contain_text("山田 花子")
    page.goto(f"{live_server}/t/musashino/residents/{hanako['id']}")
    expect(page.get_by_role("link", name="中町一丁目")).to_be_visible()


def test_a_taken_name_is_shown_beside_the_field(live_server, page, tenant, make_user):
    """Is a second group with the same name refused with the message beside the name?"""
    tenant.api.post("/api/v1/groups", {"name": "緑町サロン"})
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/groups/new")
    page.get_by_label("グループ名").fill("緑町サロン")
    page.get_by_role("button", name="作る").click()
    expect(page.locator(".field.has-error", has=page.get_by_label("グループ名"))).to_contain_text(
        "同じ名前のグループがあります")
    expect(page.get_by_role("alert")).to_contain_text("グループ名")


def test_commissioner_sees_only_their_members(clean_app, live_server, page, tenant, make_user):
    """Does a commissioner see a group's assigned members only, and no way to change it?"""
    mine = resident(tenant, name="山田 花子")
    other = resident(tenant, name="佐藤 幸子")
    group = tenant.api.post("/api/v1/groups", {"name": "緑町サロン",
                                               "member_ids": [mine["id"], other["id"]]}).get_json()
    login = make_user("minsei@example.jp", "commissioner", tenant.id)
    assign(clean_app, login.email, mine["id"])
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/musashino/groups")
    expect(page.locator("table.groups tbody tr").first).to_contain_text("1人")
    page.get_by_role("link", name="緑町サロン").click()
    expect(page.locator("#members-h .count")).to_have_text("1")
    expect(page.get_by_text("佐藤 幸子")).to_have_count(0)
    expect(page.get_by_role("link", name="グループを変更")).to_have_count(0)
    assert page.goto(f"{live_server}/t/musashino/groups/{group['id']}/edit").status == 403
