"""The CSV import page in a real browser: who may import, unreadable files, and a file that is
imported once however often its button is pressed."""

from __future__ import annotations

import codecs

from playwright.sync_api import expect

from tests.fixtures.browser import sign_in

CSV = "氏名,フリガナ,電話番号,連絡方法\n山田 花子,やまだ はなこ,090-1234-5678,電話\n"


def choose(page, name: str, content: bytes) -> None:
    page.set_input_files("#file", files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
    page.get_by_role("button", name="内容を確認する").click()


def csrf(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def test_viewer_sees_the_columns_but_cannot_import(live_server, page, tenant, make_user):
    """Does a viewer get the list of columns without an upload form, and 403 when posting a file?"""
    sign_in(page, live_server, make_user("etsuran@city.musashino.jp", "viewer", tenant.id))
    expect(page.get_by_role("link", name="取り込み")).to_have_count(0)
    page.goto(f"{live_server}/t/musashino/import")
    expect(page.get_by_role("cell", name="緊急連絡先氏名")).to_be_visible()
    expect(page.get_by_role("button", name="内容を確認する")).to_have_count(0)
    expect(page.locator("input[type=file]")).to_have_count(0)
    refused = page.request.post(f"{live_server}/t/musashino/import", multipart={
        "csrf_token": csrf(page),
        "file": {"name": "meibo.csv", "mimeType": "text/csv", "buffer": CSV.encode()}})
    assert refused.status == 403
    refused = page.request.post(f"{live_server}/t/musashino/import/commit",
                                form={"csrf_token": csrf(page), "digest": "0" * 64})
    assert refused.status == 403
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_utf8_with_bom_is_imported_once(live_server, page, tenant, make_user):
    """Is Excel's 'CSV UTF-8' imported, and does pressing 取り込む again import nothing twice?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/import")
    choose(page, "meibo.csv", codecs.BOM_UTF8 + CSV.encode())
    expect(page.locator(".preview")).to_contain_text("エラーはありません")
    digest = page.locator("input[name=digest]").get_attribute("value")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="取り込む").click()
    expect(page.get_by_role("heading", name="取り込みました")).to_be_visible()
    again = page.request.post(f"{live_server}/t/musashino/import/commit",
                              form={"csrf_token": csrf(page), "digest": digest})
    assert again.status == 409
    assert "もう一度選んでください" in again.text()
    [person] = tenant.api.get("/api/v1/residents").get_json()["items"]
    assert person["channels"] == ["voice"] and person["name_kana"] == "ヤマダ ハナコ"


def test_unreadable_file_is_explained_beside_the_field(live_server, page, tenant, make_user):
    """Is an Excel workbook (not CSV) refused with a message that says how to save it?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/import")
    choose(page, "meibo.xlsx", b"PK\x03\x04" + b"\x00" * 40)
    field = page.locator(".field.has-error", has=page.locator("#file"))
    expect(field).to_contain_text("Excelのブック(.xlsx)です")
    expect(page.get_by_role("alert")).to_contain_text("CSVファイル")
    page.get_by_role("button", name="内容を確認する").click()
    expect(field).to_contain_text("CSVファイルを選んでください")


def test_cancelled_confirmation_writes_nothing(live_server, page, tenant, make_user):
    """If staff answer 'cancel' to the confirmation, is nothing imported?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/import")
    choose(page, "meibo.csv", CSV.encode("cp932"))
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="取り込む").click()
    expect(page.get_by_role("button", name="取り込む")).to_be_visible()
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_an_unclosed_quote_is_shown_in_japanese_on_its_row(live_server, page, tenant, make_user):
    """Does a file with a quote left open on row 3 show staff, in Japanese, the row and column
    where it opened, and offer no 取り込む button?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/import")
    broken = ("氏名,電話番号\r\n山田 花子,090-1234-5678\r\n\"鈴木 一郎,090-2222-3333\r\n"
              "田中 三郎,090-3333-4444\r\n")
    choose(page, "meibo.csv", broken.encode("cp932"))
    row = page.locator("table.import-errors tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("3行目")
    expect(row).to_contain_text("氏名 (name)")
    expect(row).to_contain_text("引用符 \" が閉じられていない")
    expect(page.get_by_role("button", name="取り込む")).to_have_count(0)
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []
