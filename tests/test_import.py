"""Staff onboard residents from a CSV export of their register (Excel, Shift_JIS or UTF-8)."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from werkzeug.test import TestResponse

from mimamori.extensions import db
from tenants.models import Resident
from tenants.tenancy import bind_tenant

IMPORT = "/api/v1/residents/import"
LINE_ID = "U" + "0123456789abcdef" * 2


def upload(tenant: Any, body: str | bytes, encoding: str = "utf-8", dry_run: bool = False,
           content_type: str = "text/csv") -> TestResponse:
    data = body.encode(encoding) if isinstance(body, str) else body
    return tenant.api.post(IMPORT + ("?dry_run=true" if dry_run else ""), data=data,
                           headers={"Content-Type": content_type})


def csv_text(*lines: str) -> str:
    """Rows as Excel writes them: CRLF line ends."""
    return "\r\n".join(lines) + "\r\n"


def residents(tenant: Any) -> list[dict[str, Any]]:
    return tenant.api.get("/api/v1/residents").get_json()["items"]


def by_name(tenant: Any) -> dict[str, dict[str, Any]]:
    return {resident["name"]: resident for resident in residents(tenant)}


def ok(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["errors"] == []
    return body


def refused(response: TestResponse) -> list[tuple[int, str | None]]:
    """The (row, field) pairs of a 422 answer, checking it is problem+json carrying the counts."""
    assert response.status_code == 422, response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.get_json()
    assert {"created", "updated", "errors", "status", "detail"} <= set(body)
    return [(error["row"], error["field"]) for error in body["errors"]]


def make_policy(tenant: Any, name: str) -> int:
    response = tenant.api.post("/api/v1/check-policies", {
        "name": name, "schedule": {"freq": "daily", "interval": 1, "time": "09:00"}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def make_group(tenant: Any, name: str) -> int:
    response = tenant.api.post("/api/v1/groups", {"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


REGISTER = csv_text(
    "管理番号,氏名,フリガナ,生年月日,電話番号,連絡方法,住所,緊急連絡先氏名,緊急連絡先電話番号,続柄",
    "A-001,髙橋 花子,たかはし はなこ,昭和15年4月1日,090-1234-5678,LINE|電話,武蔵野市緑町1-1,"
    "髙橋 一郎,080-1111-2222,長男",
    "A-002,佐藤　次郎,ｻﾄｳ ｼﾞﾛｳ,S12.11.3,0422-51-1234,SMS|音声,武蔵野市中町2-2,"
    "鈴木 民子,090-3333-4444,民生委員",
)


def test_shift_jis_excel_export_with_japanese_headers_imports(tenant):
    """Does a Shift_JIS export from Excel with Japanese headers, era dates and 続柄 import?"""
    # cp932 rather than shift_jis: 髙 exists only in Microsoft's variant, which Excel writes.
    body = ok(upload(tenant, REGISTER, encoding="cp932"))
    assert (body["created"], body["updated"]) == (2, 0)
    found = by_name(tenant)
    hanako, jiro = found["髙橋 花子"], found["佐藤 次郎"]
    assert hanako["external_id"] == "A-001" and hanako["name_kana"] == "タカハシ ハナコ"
    assert hanako["birth_date"] == "1940-04-01" and hanako["phone"] == "+819012345678"
    assert hanako["channels"] == ["line", "voice"] and hanako["address"] == "武蔵野市緑町1-1"
    assert len(hanako["link_code"]) == 6
    [son] = hanako["contacts"]
    assert (son["name"], son["phone"], son["relation"], son["relation_note"]) == (
        "髙橋 一郎", "+818011112222", "relative", "長男")
    assert son["channels"] == ["sms", "voice"]
    assert jiro["birth_date"] == "1937-11-03" and jiro["name_kana"] == "サトウ ジロウ"
    assert jiro["phone"] == "+81422511234" and jiro["channels"] == ["sms", "voice"]
    assert jiro["contacts"][0]["relation"] == "welfare_commissioner"


def test_utf8_with_bom_and_english_headers_imports(tenant):
    """Does a UTF-8 file with a BOM import, the BOM not spoiling the first header?"""
    text = "\ufeff" + csv_text(
        "external_id,name,birth_date,phone,line_user_id,channels,contact_name,contact_phone,"
        "contact_relation,contact_channels",
        f"B-1,山田 花子,1940/4/1,09012345678,{LINE_ID},line|sms,山田 太郎,+818012345678,"
        "case_worker,sms",
    )
    assert ok(upload(tenant, text))["created"] == 1
    [resident] = residents(tenant)
    assert resident["external_id"] == "B-1" and resident["line_user_id"] == LINE_ID
    assert resident["channels"] == ["line", "sms"] and resident["birth_date"] == "1940-04-01"
    contact = resident["contacts"][0]
    assert (contact["relation"], contact["relation_note"], contact["channels"]) == (
        "case_worker", None, ["sms"])


def test_one_bad_row_refuses_the_file_with_the_row_excel_shows(tenant):
    """Is a bad phone on Excel's row 5 reported as row 5 (quoted line breaks and blank rows
    counted as Excel counts them), with nothing written?"""
    text = csv_text(
        "氏名,電話番号,住所",
        '山田 花子,090-1234-5678,"武蔵野市',
        '緑町1-1"',
        "鈴木 一郎,090-2222-3333,武蔵野市",
        ",,",
        "田中 三郎,03-123,武蔵野市",
        "佐藤 四郎,090-5555-6666,武蔵野市",
    )
    response = upload(tenant, text)
    assert refused(response) == [(5, "phone")]
    error = response.get_json()["errors"][0]
    assert "電話番号" in error["message"] and "03-123" in error["message"]
    assert (response.get_json()["created"], response.get_json()["updated"]) == (3, 0)
    assert residents(tenant) == []


def test_every_mistake_in_the_file_is_reported_by_field(tenant):
    """Are all mistakes reported at once, each under the column's English field name?"""
    text = csv_text(
        "氏名,フリガナ,生年月日,電話番号,連絡方法,緊急連絡先氏名,緊急連絡先電話番号",
        "山田 花子,山田,1940-04-01,090-1234-5678,,,",
        "鈴木 一郎,,昭和99年13月1日,090-2222-3333,,,",
        "田中 三郎,,,090-3333-4444,FAX,,",
        "佐藤 四郎,,,,SMS,,",
        "高橋 五郎,,,090-5555-6666,,高橋 六郎,123",
        ",,,090-7777-8888,,,",
    )
    assert refused(upload(tenant, text)) == [
        (2, "name_kana"), (3, "birth_date"), (4, "channels"), (5, "phone"),
        (6, "contact_phone"), (7, "name")]
    assert residents(tenant) == []


def test_a_file_full_of_errors_lists_the_first_thousand(tenant):
    """Does a file with more than 1000 errors list 1000 and say how many there were?"""
    text = csv_text("氏名,電話番号", *(f"住民{i},03-1" for i in range(1005)))
    response = upload(tenant, text)
    assert len(refused(response)) == 1000
    body = response.get_json()
    assert body["error_count"] == 1005 and "first 1000" in body["detail"]


def test_dry_run_counts_but_writes_nothing(tenant):
    """Does a dry run report what would be created and updated, leaving the residents as they were?"""
    first = csv_text("管理番号,氏名,電話番号", "A-1,山田 花子,090-1234-5678")
    ok(upload(tenant, first))
    before = residents(tenant)
    text = csv_text("管理番号,氏名,電話番号", "A-1,山田 花子,090-9999-0000",
                    "A-2,鈴木 一郎,090-2222-3333")
    body = ok(upload(tenant, text, dry_run=True))
    assert (body["created"], body["updated"], body["dry_run"]) == (1, 1, True)
    assert residents(tenant) == before
    bad = csv_text("氏名,電話番号", "鈴木 一郎,03-1")
    assert refused(upload(tenant, bad, dry_run=True)) == [(2, "phone")]


def test_importing_the_same_register_again_updates_instead_of_duplicating(tenant):
    """Does a second import update the residents (by 管理番号, else name and birth date), keep
    what the new file leaves empty, and replace or add contacts by phone?"""
    ok(upload(tenant, csv_text(
        "管理番号,氏名,生年月日,電話番号,住所,緊急連絡先氏名,緊急連絡先電話番号,続柄",
        "A-1,山田 花子,1940-04-01,090-1234-5678,緑町1-1,山田 太郎,080-1111-2222,長男",
        ",鈴木 一郎,1941-05-05,090-2222-3333,中町2-2,鈴木 次子,080-3333-4444,長女",
    )))
    ids = sorted(r["id"] for r in residents(tenant))
    body = ok(upload(tenant, csv_text(
        "管理番号,氏名,生年月日,電話番号,住所,緊急連絡先氏名,緊急連絡先電話番号,続柄",
        "A-1,山田 花子,1940-04-01,090-9999-0000,,山田 太郎,080-1111-2222,近所の友人",
        ",鈴木一郎,1941-05-05,,,鈴木 三郎,080-5555-6666,次男",
    )))
    assert (body["created"], body["updated"]) == (0, 2)
    found = by_name(tenant)
    assert sorted(r["id"] for r in found.values()) == ids
    hanako, ichiro = found["山田 花子"], found["鈴木一郎"]
    assert hanako["phone"] == "+819099990000" and hanako["address"] == "緑町1-1"
    assert [(c["phone"], c["relation"], c["relation_note"]) for c in hanako["contacts"]] == [
        ("+818011112222", "neighbour", "近所の友人")]
    assert ichiro["phone"] == "+819022223333" and ichiro["address"] == "中町2-2"
    assert [(c["name"], c["priority"]) for c in ichiro["contacts"]] == [
        ("鈴木 次子", 1), ("鈴木 三郎", 2)]


def test_a_register_number_finds_a_resident_typed_in_by_hand(tenant):
    """Does a first import with 管理番号 update the resident staff registered by hand (same name
    and birth date, no number yet) rather than register them twice?"""
    created = tenant.api.post("/api/v1/residents", {
        "name": "山田 花子", "birth_date": "1940-04-01", "phone": "090-1234-5678"})
    assert created.status_code == 201, created.get_json()
    body = ok(upload(tenant, csv_text("管理番号,氏名,生年月日", "A-1,山田 花子,昭和15年4月1日")))
    assert (body["created"], body["updated"]) == (0, 1)
    [resident] = residents(tenant)
    assert resident["id"] == created.get_json()["id"] and resident["external_id"] == "A-1"


def test_the_same_resident_twice_in_one_file_is_refused(tenant):
    """Is a resident listed twice refused on the later row, naming the earlier one?"""
    response = upload(tenant, csv_text(
        "管理番号,氏名,生年月日,電話番号",
        "A-1,山田 花子,1940-04-01,090-1234-5678",
        "A-2,鈴木 一郎,1941-01-01,090-2222-3333",
        "A-1,山田 はなこ,1940-04-01,090-1234-5678",
        ",佐藤 次郎,1950-05-05,090-4444-5555",
        ",佐藤次郎,1950-05-05,090-4444-5555",
    ))
    assert refused(response) == [(4, "external_id"), (6, "name")]
    messages = [error["message"] for error in response.get_json()["errors"]]
    assert "row 2" in messages[0] and "row 5" in messages[1]
    assert residents(tenant) == []


def test_two_rows_finding_the_same_resident_differently_are_refused(tenant):
    """Is a resident found once by 管理番号 and again by name and birth date refused as a duplicate?"""
    ok(upload(tenant, csv_text("管理番号,氏名,生年月日", "A-1,山田 花子,1940-04-01")))
    response = upload(tenant, csv_text("管理番号,氏名,生年月日", "A-1,山田 花子,",
                                       ",山田 花子,1940-04-01"))
    assert refused(response) == [(3, "name")]
    assert "row 2" in response.get_json()["errors"][0]["message"]


def test_check_policy_by_name_or_id(tenant):
    """Is 見守り設定 matched by the policy's name, and check_policy_id by id?"""
    daily = make_policy(tenant, "毎日9時")
    ok(upload(tenant, csv_text("氏名,電話番号,見守り設定", "山田 花子,090-1234-5678,毎日9時")))
    ok(upload(tenant, csv_text("name,phone,check_policy_id", f"鈴木 一郎,090-2222-3333,{daily}")))
    assert {r["check_policy_id"] for r in residents(tenant)} == {daily}


def test_an_unknown_policy_is_refused(tenant):
    """Is a policy name or id the tenant does not have an error on that row?"""
    make_policy(tenant, "毎日9時")
    response = upload(tenant, csv_text("氏名,電話番号,見守り設定", "山田 花子,090-1234-5678,毎週月曜"))
    assert refused(response) == [(2, "check_policy_id")]
    assert "見守り設定" in response.get_json()["errors"][0]["message"]
    response = upload(tenant, csv_text("name,phone,check_policy_id", "鈴木 一郎,090-2222-3333,9999"))
    assert refused(response) == [(2, "check_policy_id")]
    assert residents(tenant) == []


def test_a_new_policy_in_a_reimport_counts_from_the_import(tenant, clean_app):
    """When a re-import moves a resident to another 見守り設定, do its checks count from the import
    (as when staff change it by hand), while re-importing the same policy changes nothing?"""
    make_policy(tenant, "毎日9時")
    make_policy(tenant, "毎日18時")
    header = "管理番号,氏名,電話番号,見守り設定"
    ok(upload(tenant, csv_text(header, "A-1,山田 花子,090-1234-5678,毎日9時")))
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)

    def assigned_at() -> datetime:
        with clean_app.app_context(), bind_tenant(tenant.id):
            return db.session.scalar(select(Resident.policy_assigned_at))

    with clean_app.app_context(), bind_tenant(tenant.id):
        db.session.execute(update(Resident).values(policy_assigned_at=long_ago))
        db.session.commit()
    ok(upload(tenant, csv_text(header, "A-1,山田 花子,090-1234-5678,毎日9時")))
    assert assigned_at() == long_ago
    ok(upload(tenant, csv_text(header, "A-1,山田 花子,090-1234-5678,毎日18時")))
    assert assigned_at() > long_ago


def test_groups_are_named_and_an_unknown_group_is_refused(tenant):
    """Are residents put in the groups named in グループ, and an unknown name refused?"""
    salon, area = make_group(tenant, "緑町サロン"), make_group(tenant, "中町地区")
    response = upload(tenant, csv_text("氏名,電話番号,グループ",
                                       "山田 花子,090-1234-5678,緑町サロン|存在しない会"))
    assert refused(response) == [(2, "groups")]
    assert "存在しない会" in response.get_json()["errors"][0]["message"]
    ok(upload(tenant, csv_text("氏名,生年月日,グループ", "山田 花子,1940-04-01,緑町サロン|中町地区")))
    [resident] = residents(tenant)
    assert resident["group_ids"] == sorted([salon, area])
    ok(upload(tenant, csv_text("氏名,生年月日,グループ", "山田 花子,1940-04-01,中町地区")))
    [resident] = residents(tenant)
    assert resident["group_ids"] == [area]


def test_a_line_id_of_another_resident_is_refused(tenant):
    """Can a row take the LINE ID another resident already has? Checks would reach the wrong person."""
    other = tenant.api.post("/api/v1/residents", {"name": "鈴木 一郎", "line_user_id": LINE_ID})
    assert other.status_code == 201, other.get_json()
    response = upload(tenant, csv_text("氏名,LINE ID", f"山田 花子,{LINE_ID}"))
    assert refused(response) == [(2, "line_user_id")]
    assert len(residents(tenant)) == 1


def test_bytes_that_are_not_utf8_or_shift_jis_are_refused_by_name(tenant):
    """Are binary data and UTF-16 text refused with a 400 that names the encoding problem?"""
    utf16 = csv_text("氏名,電話番号", "山田 花子,090-1234-5678")
    for data, expected in ((random.Random(7).randbytes(4096), "Shift_JIS"),
                           (utf16.encode("utf-16"), "UTF-16"),
                           (utf16.encode("utf-16-le"), "UTF-16")):
        response = upload(tenant, data)
        assert response.status_code == 400, response.get_json()
        assert response.headers["Content-Type"] == "application/problem+json"
        assert expected in response.get_json()["detail"]
    assert residents(tenant) == []


def test_a_declared_charset_is_honoured(tenant):
    """Is the charset in the Content-Type used, and a body that contradicts it refused?"""
    text = csv_text("氏名,電話番号", "山田 花子,090-1234-5678")
    ok(upload(tenant, text, encoding="euc-jp", content_type="text/csv; charset=EUC-JP"))
    # Excel's Shift_JIS is CP932: 髙 must survive a declared charset=Shift_JIS too.
    ok(upload(tenant, csv_text("氏名,電話番号", "髙橋 一郎,090-2222-3333"), encoding="cp932",
              content_type="text/csv; charset=Shift_JIS"))
    assert sorted(r["name"] for r in residents(tenant)) == ["山田 花子", "髙橋 一郎"]
    response = upload(tenant, text, encoding="cp932", content_type="text/csv; charset=utf-8")
    assert response.status_code == 400 and "utf-8" in response.get_json()["detail"]


def test_a_multipart_upload_from_a_browser_imports(tenant):
    """Does the admin UI's file upload (multipart, field `file`) import like a text/csv body?"""
    response = tenant.api.post(IMPORT, data={
        "file": (io.BytesIO(REGISTER.encode("cp932")), "名簿.csv", "application/vnd.ms-excel")})
    assert ok(response)["created"] == 2
    missing = tenant.api.post(IMPORT, data={"other": (io.BytesIO(b"x"), "a.csv")})
    assert missing.status_code == 400 and "file" in missing.get_json()["detail"]


def test_an_empty_body_is_refused(tenant):
    """Is an empty upload a 400 that says so, rather than an import of nothing?"""
    for body in (b"", "\ufeff\r\n,,\r\n".encode()):
        response = upload(tenant, body)
        assert response.status_code == 400, response.get_json()
        assert "empty" in response.get_json()["detail"]


def test_an_unknown_or_missing_header_is_refused(tenant):
    """Is a mistyped header an error on row 1 naming it, and a file without 氏名 refused?"""
    response = upload(tenant, csv_text("氏名,電話番号,でんわ", "山田 花子,090-1234-5678,"))
    assert refused(response) == [(1, "でんわ")]
    assert refused(upload(tenant, csv_text("電話番号", "090-1234-5678"))) == [(1, "name")]
    assert refused(upload(tenant, csv_text("氏名,,", "山田 花子,,メモ"))) == [(2, None)]
    assert residents(tenant) == []


def test_headers_are_read_through_spaces_and_full_width_letters(tenant):
    """Do "氏　名" and "ＬＩＮＥ　ＩＤ" with stray spaces count as the columns they name?"""
    ok(upload(tenant, csv_text(" 氏　名 ,ＬＩＮＥ　ＩＤ,電話番号", f"　山田 花子　,{LINE_ID},")))
    [resident] = residents(tenant)
    assert resident["name"] == "山田 花子" and resident["line_user_id"] == LINE_ID


def test_the_quota_holds_for_imports(make_tenant):
    """Can an import take a tenant past its resident quota? It is refused before writing."""
    small = make_tenant("small", name="小さな町", max_residents=1)
    response = upload(small, csv_text("氏名,電話番号", "山田 花子,090-1234-5678",
                                      "鈴木 一郎,090-2222-3333"))
    assert response.status_code == 409, response.get_json()
    assert residents(small) == []


def test_an_import_never_touches_another_tenant(make_tenant):
    """Does a 管理番号 or LINE ID that another tenant uses stay theirs, their resident untouched?"""
    ours, theirs = make_tenant("musashino"), make_tenant("other", name="三鷹市")
    ok(upload(theirs, csv_text("管理番号,氏名,LINE ID", f"A-1,三鷹 太郎,{LINE_ID}")))
    before = residents(theirs)
    body = ok(upload(ours, csv_text("管理番号,氏名,LINE ID", f"A-1,武蔵野 花子,{LINE_ID}")))
    assert (body["created"], body["updated"]) == (1, 0)
    assert residents(theirs) == before
    assert [r["name"] for r in residents(ours)] == ["武蔵野 花子"]


def test_the_import_is_documented_as_taking_csv(client):
    """Does the OpenAPI document say the import takes text/csv and a dry_run flag?"""
    operation = client.get("/api/v1/openapi.json").get_json()["paths"][IMPORT]["post"]
    assert "text/csv" in operation["requestBody"]["content"]
    assert any(p["name"] == "dry_run" for p in operation["parameters"])
