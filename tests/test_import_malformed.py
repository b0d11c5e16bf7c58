"""A broken CSV file is refused on the row where it breaks, with nothing written, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_import import csv_text, ok, residents, upload

# The limits docs/csv-import.md promises: rows in one file, characters in one cell.
MAX_ROWS = 100_000
MAX_CELL = 4000


def refused_at(response: Any, status: int = 422) -> list[tuple[int, str | None]]:
    """The (row, field) pairs of a refusal in the import's shape: problem+json, nothing created."""
    assert response.status_code == status, response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.get_json()
    assert body["errors"] and all(error["message"] for error in body["errors"])
    assert body["error_count"] == len(body["errors"])
    return [(error["row"], error["field"]) for error in body["errors"]]


def test_an_unclosed_quote_is_reported_on_its_row_and_nothing_is_written(tenant):
    """Does a quote opened on row 3 and never closed refuse the file, naming row 3 and its column,
    instead of answering 200 with every later row swallowed into one cell?"""
    text = csv_text(
        "氏名,電話番号,住所",
        "山田 花子,090-1234-5678,武蔵野市緑町1-1",
        '"鈴木 一郎,090-2222-3333,武蔵野市中町2-2',
        "田中 三郎,090-3333-4444,武蔵野市境3-3",
        "佐藤 四郎,090-5555-6666,武蔵野市関前4-4",
    )
    for dry_run in (True, False):
        response = upload(tenant, text, dry_run=dry_run)
        assert refused_at(response) == [(3, "name")]
        assert "quote" in response.get_json()["errors"][0]["message"]
    assert residents(tenant) == []


def test_an_unclosed_quote_is_found_even_when_a_later_cell_is_quoted(tenant):
    """When a later row has a properly quoted address (with a line break), is the quote left open
    in row 2's address still blamed on row 2, not on the later row?"""
    text = csv_text(
        "氏名,電話番号,住所",
        '山田 花子,090-1234-5678,"武蔵野市緑町1-1',
        "鈴木 一郎,090-2222-3333,武蔵野市中町2-2",
        '田中 三郎,090-3333-4444,"武蔵野市境3-3\r\nメゾン境101"',
        "佐藤 四郎,090-5555-6666,武蔵野市関前4-4",
    )
    assert refused_at(upload(tenant, text)) == [(2, "address")]
    assert residents(tenant) == []


@pytest.mark.parametrize(("rows", "expected"), [
    # The stray quote opening 氏名 pairs with a stray one two rows below: a name with line breaks.
    (['"鈴木 一郎,090-2222-3333,中町', "田中 三郎,090-3333-4444,境", '佐藤 四郎",090-5555-6666,関前'],
     [(3, "name")]),
    # Opened in 住所, which may hold line breaks: the lines inside look like rows of the file.
    (['鈴木 一郎,090-2222-3333,"中町', "田中 三郎,090-3333-4444,境", '佐藤 四郎,090-5555-6666,関前"'],
     [(3, "address")]),
])
def test_two_stray_quotes_that_pair_up_do_not_swallow_the_rows_between(tenant, rows, expected):
    """Two stray quotes that close each other would merge the rows between them into one cell:
    is that refused on the first row rather than imported with rows missing?"""
    text = csv_text("氏名,電話番号,住所", "山田 花子,090-1234-5678,緑町", *rows)
    response = upload(tenant, text)
    assert refused_at(response) == expected
    assert "quote" in response.get_json()["errors"][0]["message"]
    assert residents(tenant) == []


def test_a_line_break_kept_in_an_address_still_imports(tenant):
    """Is an address with a line break inside quotes (Alt+Enter in Excel) still one resident?"""
    text = csv_text("氏名,電話番号,住所,備考", '山田 花子,090-1234-5678,"武蔵野市中町2-2\r\nメゾン中町101",',
                    '鈴木 一郎,090-2222-3333,境1-1,"補聴器使用\r\n夜は電話に出にくい、午前中に"')
    assert ok(upload(tenant, text))["created"] == 2
    assert {r["name"]: r["address"] for r in residents(tenant)}["山田 花子"].startswith("武蔵野市中町")


UTF8_THEN_BROKEN = "氏名,電話番号\r\n山田 花子,090-1234-5678\r\n".encode() + b"\x82\xa0\xff\xfe\r\n"

MALFORMED = {
    "text after a closing quote": (csv_text("氏名,電話番号", '"山田" 花子,090-1234-5678'), 422,
                                   [(2, "name")]),
    "more cells than the header": (csv_text("氏名,電話番号", "山田 花子,090-1234-5678,余分"), 422,
                                   [(2, None)]),
    "a line break in a phone number": (csv_text("氏名,電話番号", '山田 花子,"090-1234\r\n-5678"'),
                                       422, [(2, "phone")]),
    "a NUL byte": (csv_text("氏名,電話番号", "山田 花子,090-1234-5678", "鈴木\x00一郎,"), 400,
                   [(3, None)]),
    "a NUL byte in a file with CR line ends": ("氏名\r山田 花子\r鈴木\x00一郎\r", 400, [(3, None)]),
    "bytes neither UTF-8 nor Shift_JIS": (UTF8_THEN_BROKEN, 400, [(3, None)]),
    "an empty file": (b"", 400, [(1, None)]),
    "only blank rows": ("\ufeff\r\n,,\r\n", 400, [(1, None)]),
    "a header and no residents": (csv_text("氏名,電話番号", ",", ""), 422, [(2, None)]),
    "a header repeated": (csv_text("氏名,name", "山田 花子,山田 花子"), 422, [(1, "name")]),
    "an unknown header": (csv_text("氏名,でんわ", "山田 花子,090-1234-5678"), 422,
                          [(1, "でんわ")]),
    "a cell over the length limit": (csv_text("氏名,備考", f"山田 花子,{'あ' * (MAX_CELL + 1)}"),
                                     422, [(2, "notes")]),
}


@pytest.mark.parametrize("charset", ["rot13", "base64", "idna", "x-no-such-charset"])
def test_a_charset_that_is_no_text_encoding_is_refused(tenant, charset):
    """Is a Content-Type charset that names no text encoding a 400 rather than a server error?"""
    response = upload(tenant, csv_text("氏名", "山田 花子"),
                      content_type=f"text/csv; charset={charset}")
    assert refused_at(response, 400) == [(1, None)]
    assert charset in response.get_json()["detail"]


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_file_is_refused_on_its_row_with_nothing_written(tenant, case):
    """Does each kind of broken file answer a clear error naming the row (and column) at fault,
    in the import's problem+json shape, with nothing written?"""
    body, status, expected = MALFORMED[case]
    assert refused_at(upload(tenant, body), status) == expected
    assert residents(tenant) == []


def test_a_file_over_the_row_limit_is_refused_before_anything_is_checked(tenant):
    """Is a file with more rows than one import takes refused on the first row over the limit?"""
    text = csv_text("氏名", *(f"住民{i}" for i in range(MAX_ROWS + 1)))
    assert refused_at(upload(tenant, text)) == [(MAX_ROWS + 2, None)]
    assert residents(tenant) == []
