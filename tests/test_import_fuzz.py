"""Registers damaged byte by byte (quotes, separators, line breaks, NULs, foreign encodings,
truncation): the import answers an error and writes nothing, or accounts for every row."""

from __future__ import annotations

import csv
import re
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mimamori.extensions import db
from tenants.models import Contact, Resident
from tenants.tenancy import bind_tenant
from tests.test_import import upload

HEADER = "管理番号,氏名,フリガナ,電話番号,連絡方法,緊急連絡先氏名,緊急連絡先電話番号"
# No 住所 or 備考 column: every other cell must stay on one line, so on success no row can have
# taken the lines below it.
ROWS = [
    "A-1,山田 花子,ヤマダ ハナコ,090-1234-5678,電話,山田 太郎,080-1111-2222",
    "A-2,髙橋 一郎,たかはし いちろう,0422-51-1234,SMS|電話,,",
    "A-3,佐藤 幸子,ｻﾄｳ ｻﾁｺ,080-5555-6666,,佐藤 次郎,090-7777-8888",
    '"A-4","鈴木 ""民"" 子",,090-2222-3333,"SMS",,',
    ",田中 三郎,,03-3333-4444,音声,,",
]
PIECES = [b'"', b'""', b",", b";", b"\t", b"\r\n", b"\n", b"\r", b"\x00", b"\xff", b"\x82\xa0",
          "髙".encode(), "髙".encode("cp932"), b"\xef\xbb\xbf", b" "]
EDIT = st.tuples(st.sampled_from(["insert", "delete", "truncate"]), st.integers(0, 10_000),
                 st.integers(1, 12), st.sampled_from(PIECES))


@st.composite
def damaged_registers(draw: Any) -> bytes:
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp932"]))
    rows = draw(st.lists(st.sampled_from(ROWS), max_size=6))
    head = (HEADER + "\r\n").encode(encoding)
    body = bytearray("".join(row + "\r\n" for row in rows).encode(encoding))
    for kind, at, length, piece in draw(st.lists(EDIT, max_size=4)):
        at = at % (len(body) + 1)
        if kind == "insert":
            body[at:at] = piece
        elif kind == "delete":
            del body[at:at + length]
        else:
            del body[at:]
    return head + bytes(body)


def rows_in(raw: bytes) -> range:
    """How many residents a file that imports must account for, counted on its physical lines
    after the header, each read on its own (so no quote can hide the lines after it): at least
    the lines holding something besides spaces, commas and quotes, at most the lines that read
    as a non-blank row (`","` is a resident named ","; `",,` may end a quoted cell)."""
    for codec in ("utf-8-sig", "cp932"):
        try:
            text = raw.decode(codec)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise AssertionError("a file that is neither UTF-8 nor Shift_JIS was imported")
    lines = re.split(r"\r\n|\r|\n", text)[1:]
    with_content = sum(bool(re.sub(r'[\s,"]', "", line)) for line in lines)
    non_blank = sum(any(cell.strip() for row in csv.reader([line]) for cell in row)
                    for line in lines)
    return range(with_content, non_blank + 1)


def stored(app: Any, tenant_id: int) -> tuple[Any, ...]:
    with app.app_context(), bind_tenant(tenant_id):
        residents = db.session.execute(select(Resident.id, Resident.external_id, Resident.name,
                                              Resident.phone, Resident.updated_at)
                                       .order_by(Resident.id)).all()
        contacts = db.session.scalar(select(func.count(Contact.id)))
        db.session.rollback()
    return tuple(residents), contacts


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=damaged_registers(), dry_run=st.booleans())
def test_a_damaged_register_is_refused_whole_or_imported_whole(clean_app, tenant, raw, dry_run):
    """Whatever a damaged file holds, is the answer never a 5xx, and either an error with nothing
    written, or every row with content counted as created or updated?"""
    before = stored(clean_app, tenant.id)
    response = upload(tenant, raw, dry_run=dry_run)
    assert response.status_code < 500, response.get_data(as_text=True)
    body = response.get_json()
    event(f"status {response.status_code}")
    if response.status_code != 200:
        assert body["errors"] and body["errors"][0]["message"], body
        assert stored(clean_app, tenant.id) == before
        return
    assert body["created"] + body["updated"] in rows_in(raw), body
    if dry_run:
        assert stored(clean_app, tenant.id) == before
    else:
        assert len(stored(clean_app, tenant.id)[0]) == len(before[0]) + body["created"]
