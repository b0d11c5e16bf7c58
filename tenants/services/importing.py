"""CSV onboarding of residents (利用者の一括登録): decoding, header mapping, validation, bulk write."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from mimamori.extensions import db
from schemas.residents import ResidentIn
from tenants.errors import Conflict, DomainError
from tenants.japanese import normalise_text
from tenants.models import CheckPolicy, Contact, Group, GroupMember, Resident
from tenants.models.residents import RELATIONS
from tenants.services.residents import (
    CONTACT_FIELDS,
    RESIDENT_FIELDS,
    check_quota,
    default_channels,
    new_link_codes,
    reachability_errors,
)
from tenants.tenancy import bound_tenant_id
from tenants.types import utcnow

MAX_ERRORS = 1000
# One file holds at most this many data rows (a large city's register fits several times over).
MAX_ROWS = 100_000
# No cell is longer than the longest field takes (備考, 4000 characters): a longer one is most
# likely the rest of the file swallowed by a quote that was never closed.
MAX_CELL = 4000
# Only these columns may hold a line break (Alt+Enter in Excel) inside a quoted cell.
MULTILINE_COLUMNS = frozenset({"address", "notes"})
# Imports of one tenant wait for each other this long before answering 409.
IMPORT_LOCK_TIMEOUT = "30s"
# The first key of the advisory lock that serialises a tenant's imports (the second is the tenant).
_IMPORT_LOCK_SPACE = 0x4353_5649  # "CSVI"

# Each column's English name (the resident API's JSON field where there is one) and the labels
# city registers use for it. `check_policy` is the policy by name, `check_policy_id` by id.
COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("管理番号", "台帳番号"),
    "name": ("氏名",),
    "name_kana": ("フリガナ", "ふりがな", "氏名カナ"),
    "birth_date": ("生年月日",),
    "phone": ("電話番号",),
    "line_user_id": ("LINE ID",),
    "channels": ("連絡方法",),
    "check_policy": ("見守り設定",),
    "check_policy_id": (),
    "groups": ("グループ",),
    "address": ("住所",),
    "notes": ("備考",),
    "contact_name": ("緊急連絡先氏名",),
    "contact_phone": ("緊急連絡先電話番号",),
    "contact_relation": ("続柄",),
    "contact_channels": ("緊急連絡先連絡方法",),
}
CHANNEL_ALIASES = {"line": "line", "sms": "sms", "voice": "voice", "ショートメール": "sms",
                   "電話": "voice", "音声": "voice"}
# 続柄 as staff write it: the first label found in the text wins, anything else is a relative.
RELATION_LABELS = (("民生委員", "welfare_commissioner"), ("ケースワーカー", "case_worker"),
                   ("職員", "staff"), ("近所", "neighbour"), ("隣人", "neighbour"),
                   ("近隣", "neighbour"))
# The column a schema or reachability error on the row's contact belongs to.
CONTACT_COLUMNS = {"name": "contact_name", "phone": "contact_phone", "relation": "contact_relation",
                   "relation_note": "contact_relation", "channels": "contact_channels",
                   "line_user_id": "contact_channels"}
# Excel's "Shift_JIS" is Microsoft's CP932 (①, 髙, ㈱); these IANA names Python does not know.
_CP932_NAMES = {"shift_jis", "windows-31j", "x-sjis", "x-ms-cp932"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Where the csv module ends a physical line.
_LINE_END = re.compile(r"\r\n|\r|\n")
_LINE_END_BYTES = re.compile(rb"\r\n|\r|\n")


class UnreadableCsv(DomainError):
    """The body is not CSV text in an encoding we read (UTF-8 or Shift_JIS); `row` is the
    spreadsheet row where the trouble is, when there is one."""

    status = 400

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


@dataclass
class ImportResult:
    """What an import created and updated (or would have, on a dry run or with errors)."""

    dry_run: bool = False
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def add_error(self, row: int, field_name: str | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "field": field_name, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "errors": self.errors,
                "error_count": self.error_count, "dry_run": self.dry_run}


def _header_key(text: str) -> str:
    # "氏　名", "ＬＩＮＥ ＩＤ" and "line id" all name the same column.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


_HEADERS = {_header_key(label): column for column, labels in COLUMNS.items()
            for label in (column, *labels)}


def _codec(charset: str) -> str:
    name = charset.strip().lower()
    try:
        name = codecs.lookup(name).name
    except LookupError:
        if name not in _CP932_NAMES:
            raise UnreadableCsv(f"Unknown charset {charset!r} in the Content-Type; "
                                "send UTF-8 or Shift_JIS.") from None
    if name in _CP932_NAMES:
        return "cp932"
    return "utf-8-sig" if name == "utf-8" else name


def decode_csv(raw: bytes, charset: str | None = None) -> str:
    """The text of a CSV file: the declared charset, else UTF-8 (BOM or not), else Shift_JIS."""
    if not raw:
        raise UnreadableCsv("The body is empty: send the CSV file as text/csv.", row=1)
    if raw.startswith(b"PK\x03\x04"):
        raise UnreadableCsv("The file is an Excel workbook (.xlsx), not CSV: save it as "
                            "'CSV UTF-8' or 'CSV (comma delimited)' first.")
    if charset:
        codec = _codec(charset)
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            row = _row_of_byte(raw, exc.start, codec)
            raise UnreadableCsv(f"The body is not valid {charset} as its Content-Type says "
                                f"(row {row}, byte {exc.start}); send UTF-8 or Shift_JIS.",
                                row=row) from exc
        except (LookupError, UnicodeError) as exc:
            # A codec Python knows that is not a text encoding (base64, rot13, idna...).
            raise UnreadableCsv(f"Unknown charset {charset!r} in the Content-Type; "
                                "send UTF-8 or Shift_JIS.") from exc
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableCsv("The file is UTF-16 text (Excel's 'Unicode text'): save it as "
                            "'CSV UTF-8' or 'CSV (comma delimited)' (Shift_JIS) instead.")
    else:
        text = _guess(raw)
    control = _CONTROL.search(text)
    if control:
        row = _row_of_line(text, len(_LINE_END.findall(text, 0, control.start())) + 1)
        raise UnreadableCsv(f"The file holds the control character {control.group()!r} in row "
                            f"{row}: it is not CSV text in UTF-8 or Shift_JIS (UTF-16 without a "
                            "BOM, or binary data?).", row=row)
    return text


def _guess(raw: bytes) -> str:
    # Japanese text in Shift_JIS is almost never valid UTF-8, so trying UTF-8 first is safe.
    failures: list[tuple[int, str]] = []
    for codec in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError as exc:
            failures.append((exc.start, codec))
    # The encoding that read further is the one the file was meant to be in.
    start, codec = max(failures)
    row = _row_of_byte(raw, start, codec)
    raise UnreadableCsv(f"The file is neither UTF-8 nor Shift_JIS (CP932) text (row {row} "
                        "cannot be read): save it from Excel as 'CSV UTF-8' or "
                        "'CSV (comma delimited)'.", row=row)


def _row_of_byte(raw: bytes, offset: int, codec: str) -> int:
    # Neither UTF-8 nor CP932 uses the bytes of CR or LF inside a character.
    line = len(_LINE_END_BYTES.findall(raw, 0, offset)) + 1
    try:
        return _row_of_line(raw.decode(codec, errors="replace"), line)
    except UnicodeError:  # a codec without a "replace" mode (idna): the line is the best guess
        return line


def _row_of_line(text: str, line: int) -> int:
    """The spreadsheet row that physical line `line` belongs to (quoted line breaks join lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    number = 0
    try:
        for number, _record in enumerate(reader, start=1):
            if reader.line_num >= line:
                return number
    except csv.Error:
        pass  # the record that cannot be read is the next one
    return number + 1


@dataclass
class _Records:
    """A file's records, numbered as Excel numbers rows, and the first one that could not be
    read: (row, index of the cell, what is wrong)."""

    rows: list[tuple[int, list[str]]]
    broken: tuple[int, int | None, str] | None = None


_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')
_UNQUOTED = re.compile(r"[^,\r\n]*")
UNCLOSED_QUOTE = ("The quote (\") that opens this cell is never closed, so the rows after it "
                  "cannot be read: close it, or write a quote inside a cell as two (\"\").")
TEXT_AFTER_QUOTE = ("Text follows the closing quote (\") of this cell: write a quote inside a "
                    "cell as two (\"\"), or quote the whole cell.")


def _records(text: str) -> _Records:
    """The non-empty records, numbered as Excel numbers rows (a quoted line break stays in its row).

    Parsed strictly, so a quote that is never closed stops the file at the row where it opened
    instead of swallowing every later row into one cell.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    number, next_line = 0, 1
    try:
        for number, record in enumerate(reader, start=1):
            cells = [cell.strip() for cell in record]
            if any(cells):
                rows.append((number, cells))
            next_line = reader.line_num + 1
    except csv.Error as exc:
        return _Records(rows, _broken_record(text, number + 1, next_line, str(exc)))
    return _Records(rows)


def _broken_record(text: str, row: int, line: int, reason: str) -> tuple[int, int | None, str]:
    """Which cell of the record starting on physical line `line` breaks the quoting, and how."""
    lines = io.StringIO(text, newline="").readlines()
    pos = sum(len(physical) for physical in lines[:line - 1])
    cell = 0
    while True:
        if text.startswith('"', pos):
            match = _QUOTED.match(text, pos)
            if match is None:
                return row, cell, UNCLOSED_QUOTE
            if text[match.end():match.end() + 1] not in ("", ",", "\r", "\n"):
                spans_lines = "\n" in match.group() or "\r" in match.group()
                return row, cell, UNCLOSED_QUOTE if spans_lines else TEXT_AFTER_QUOTE
        else:
            match = _UNQUOTED.match(text, pos)
        if text[match.end():match.end() + 1] != ",":
            break
        pos, cell = match.end() + 1, cell + 1
    if "field larger than field limit" in reason:
        return row, None, f"A cell is longer than {MAX_CELL} characters."
    return row, None, f"The row cannot be read as CSV: {reason}."


def _split(cell: str) -> list[str]:
    return [part.strip() for part in normalise_text(cell).split("|") if part.strip()]


def _channels(cell: str) -> list[str]:
    # Unknown words pass through so the schema refuses them exactly as the JSON API does.
    return [CHANNEL_ALIASES.get(part.casefold(), part) for part in _split(cell)]


def _relation(cell: str) -> tuple[str, str | None]:
    """The relation for 続柄 as written; Japanese text (長男, 近所の友人) is kept as the note."""
    if cell.casefold() in RELATIONS:
        return cell.casefold(), None
    return next((value for label, value in RELATION_LABELS if label in cell), "relative"), cell


def _person_key(name: str | None, birth_date: date | None) -> tuple[str, date] | None:
    # "山田 花子" and "山田花子" are one person in two exports of the same register.
    if not name or not birth_date:
        return None
    return normalise_text(name).replace(" ", ""), birth_date


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [message for nested in value.values() for message in _messages(nested)]
    if isinstance(value, list):
        return [message for nested in value for message in _messages(nested)]
    return [str(value)]


@dataclass
class _Existing:
    """A resident the tenant already has, with its RESIDENT_FIELDS as stored."""

    id: int
    values: dict[str, Any]


@dataclass
class _Row:
    """One valid data row, ready to write."""

    number: int
    fields: dict[str, Any]
    existing: _Existing | None
    group_ids: list[int] | None
    contact: dict[str, Any] | None


class _Importer:
    """Checks every row against the file and what the tenant has, with one query per lookup."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self.schema = ResidentIn()
        self.headers: dict[str, str] = {}
        self.columns: list[str | None] = []
        self.rows: list[_Row] = []
        self.policy_ids: set[int] = set()
        self.policies_by_name: dict[str, int] = {}
        self.groups_by_name: dict[str, int] = {}
        self.by_external: dict[str, _Existing] = {}
        self.by_person: dict[tuple[str, date], list[_Existing]] = defaultdict(list)
        self.line_owners: dict[str, int] = {}
        self.seen_external: dict[str, int] = {}
        self.seen_person: dict[tuple[str, date], int] = {}
        self.seen_resident: dict[int, int] = {}
        self.seen_line: dict[str, int] = {}

    def error(self, row: int, column: str | None, message: str) -> None:
        """Errors name the API field, so the policy-by-name column reports as check_policy_id."""
        self.result.add_error(row, "check_policy_id" if column == "check_policy" else column,
                              message)

    def label(self, column: str) -> str:
        return self.headers.get(column, column)

    def field_error(self, row: int, column: str | None, messages: list[str],
                    values: dict[str, str]) -> None:
        text = " ".join(messages)
        if column:
            cell = values.get(column)
            text = f"{self.label(column)}{f' 「{cell[:40]}」' if cell else ''}: {text}"
        self.error(row, column, text)

    def read_header(self, row: int, cells: list[str]) -> bool:
        for cell in cells:
            column = _HEADERS.get(_header_key(cell)) if cell else None
            if cell and column is None:
                self.result.add_error(row, cell, f"Unknown column 「{cell}」: the columns are "
                                      f"{', '.join(COLUMNS)} or their Japanese labels "
                                      "(docs/csv-import.md).")
            elif column in self.headers:
                self.error(row, column, f"「{cell}」 repeats the column 「{self.headers[column]}」.")
                column = None
            elif column:
                self.headers[column] = cell
            self.columns.append(column)
        if "name" not in self.headers:
            self.error(row, "name", "The column 氏名 (name) is required.")
        if "check_policy" in self.headers and "check_policy_id" in self.headers:
            self.error(row, "check_policy_id", f"Give 「{self.headers['check_policy']}」 or "
                       f"「{self.headers['check_policy_id']}」, not both.")
        return self.result.error_count == 0

    def broken_row(self, row: int, cell: int | None, message: str) -> None:
        """The record the CSV parser stopped at, blamed on the column whose cell broke it."""
        column = self.columns[cell] if cell is not None and cell < len(self.columns) else None
        self.error(row, column, f"{self.label(column)}: {message}" if column else message)

    def load_lookups(self) -> None:
        if {"check_policy", "check_policy_id"} & set(self.headers):
            for policy_id, name in db.session.execute(select(CheckPolicy.id, CheckPolicy.name)):
                self.policy_ids.add(policy_id)
                self.policies_by_name[normalise_text(name)] = policy_id
        if "groups" in self.headers:
            self.groups_by_name = {normalise_text(name): group_id for group_id, name
                                   in db.session.execute(select(Group.id, Group.name))}
        stored = [getattr(Resident, name) for name in RESIDENT_FIELDS]
        for resident_id, *values in db.session.execute(select(Resident.id, *stored)):
            existing = _Existing(resident_id, dict(zip(RESIDENT_FIELDS, values, strict=True)))
            if existing.values["external_id"]:
                self.by_external[existing.values["external_id"]] = existing
            key = _person_key(existing.values["name"], existing.values["birth_date"])
            if key:
                self.by_person[key].append(existing)
            if existing.values["line_user_id"]:
                self.line_owners[existing.values["line_user_id"]] = resident_id

    def read_row(self, number: int, cells: list[str]) -> None:
        errors_before = self.result.error_count
        values = self._values(number, cells)
        if self.result.error_count > errors_before:
            return  # a row that lost its shape: its other cells would only add confusion
        raw, group_ids = self._input(number, values)
        try:
            data = self.schema.load(raw)
        except ValidationError as exc:
            self._schema_errors(number, exc.messages, values)
            self._match(number, exc.valid_data or {})
            return
        existing = self._match(number, data)
        given = {key: data[key] for key in RESIDENT_FIELDS if key in raw}
        self._check_resident(number, given, existing, values)
        contact = data["contacts"][0] if data["contacts"] else None
        if contact:
            self._check_contact(number, contact, values)
        if self.result.error_count == errors_before:
            self.rows.append(_Row(number, given, existing, group_ids, contact))

    def _values(self, number: int, cells: list[str]) -> dict[str, str]:
        """The row's non-empty cells by column; a value in a column with no header is an error."""
        values: dict[str, str] = {}
        for index, cell in enumerate(cells):
            if not cell:
                continue
            column = self.columns[index] if index < len(self.columns) else None
            if column is None:
                self.error(number, None, f"Column {index + 1} holds 「{cell[:40]}」 but has no "
                                         "header, so it would be lost.")
            elif self._cell_fits(number, column, cell):
                values[column] = cell
        return values

    def _cell_fits(self, number: int, column: str, cell: str) -> bool:
        """False, with an error, for a cell no register holds: the usual sign of a quote that
        was never closed and took the rows below it into this cell."""
        if len(cell) > MAX_CELL:
            problem = f"Longer than {MAX_CELL} characters"
        elif "\n" in cell or "\r" in cell:
            # A swallowed row brings its separators: a line holding (nearly) a row's worth of them.
            enough = max(1, min(2, len(self.columns) - 1))
            rows_inside = any(line.count(",") >= enough for line in cell.splitlines()[1:])
            if column in MULTILINE_COLUMNS and not rows_inside:
                return True
            problem = ("Lines inside this cell look like rows of the file" if rows_inside
                       else "A line break inside this cell")
        else:
            return True
        self.error(number, column, f"{self.label(column)}: {problem}: is a closing quote (\") "
                                   "missing in this row?")
        return False

    def _input(self, number: int, values: dict[str, str]) -> tuple[dict[str, Any], list[int] | None]:
        """The row as the JSON API would receive it; policies and groups by name become ids."""
        raw: dict[str, Any] = {key: value for key, value in values.items() if key in RESIDENT_FIELDS}
        if "channels" in values:
            raw["channels"] = _channels(values["channels"])
        if "check_policy_id" in values:
            # Digits become an id; anything else goes to the schema as text for it to refuse.
            policy = values["check_policy_id"]
            raw["check_policy_id"] = int(policy) if policy.isdigit() else policy
        if "check_policy" in values:
            name = normalise_text(values["check_policy"])
            if name in self.policies_by_name:
                raw["check_policy_id"] = self.policies_by_name[name]
            else:
                self.field_error(number, "check_policy", ["No check policy has this name."], values)
        group_ids: list[int] | None = None
        if "groups" in values:
            names = _split(values["groups"])
            unknown = [name for name in names if name not in self.groups_by_name]
            if unknown:
                self.field_error(number, "groups", [f"No group named {'、'.join(unknown)}."], values)
            group_ids = list(dict.fromkeys(self.groups_by_name[n] for n in names
                                           if n in self.groups_by_name))
            raw["group_ids"] = group_ids
        contact: dict[str, Any] = {key: values[f"contact_{key}"] for key in ("name", "phone")
                                   if f"contact_{key}" in values}
        if "contact_channels" in values:
            contact["channels"] = _channels(values["contact_channels"])
        if "contact_relation" in values:
            contact["relation"], contact["relation_note"] = _relation(values["contact_relation"])
        if contact:
            raw["contacts"] = [contact]
        return raw, group_ids

    def _schema_errors(self, number: int, messages: dict[str, Any], values: dict[str, str]) -> None:
        for key, value in messages.items():
            if key == "contacts":
                for contact_errors in value.values():
                    for contact_field, contact_messages in contact_errors.items():
                        self.field_error(number, CONTACT_COLUMNS[contact_field],
                                         _messages(contact_messages), values)
            elif key == "check_policy_id" and "check_policy" in self.headers:
                self.field_error(number, "check_policy", _messages(value), values)
            else:
                self.field_error(number, key if key in COLUMNS else None, _messages(value), values)

    def _match(self, number: int, data: dict[str, Any]) -> _Existing | None:
        """The resident this row updates, if any; the same resident twice in the file is an error."""
        external_id = data.get("external_id")
        person = _person_key(data.get("name"), data.get("birth_date"))
        existing = self.by_external.get(external_id) if external_id else None
        if existing is None and person:
            # A register number given for the first time still finds the resident typed in by
            # hand without one, instead of creating them a second time.
            candidates = [r for r in self.by_person.get(person, [])
                          if not external_id or r.values["external_id"] is None]
            if len(candidates) > 1:
                self.error(number, "name", f"{self.label('name')}: residents "
                           f"{', '.join(str(r.id) for r in candidates)} share this name and birth "
                           f"date; add {self.label('external_id')} to tell them apart.")
            elif candidates:
                existing = candidates[0]
        column = "external_id" if external_id else "name"
        earlier = (self.seen_external.get(external_id) if external_id
                   else self.seen_person.get(person) if person else None)
        if earlier is None and existing is not None:
            earlier = self.seen_resident.get(existing.id)
        if earlier is not None:
            self.error(number, column, f"{self.label(column)}: the same resident as row {earlier}.")
        if external_id:
            self.seen_external.setdefault(external_id, number)
        if person:
            self.seen_person.setdefault(person, number)
        if existing is not None:
            self.seen_resident.setdefault(existing.id, number)
        self._check_line_user_id(number, data.get("line_user_id"), existing)
        return existing

    def _check_line_user_id(self, number: int, line_user_id: str | None,
                            existing: _Existing | None) -> None:
        if not line_user_id:
            return
        owner = self.line_owners.get(line_user_id)
        if owner is not None and (existing is None or owner != existing.id):
            self.error(number, "line_user_id",
                       f"{self.label('line_user_id')}: already belongs to resident {owner}.")
        elif line_user_id in self.seen_line:
            self.error(number, "line_user_id", f"{self.label('line_user_id')}: row "
                       f"{self.seen_line[line_user_id]} has the same LINE ID.")
        self.seen_line.setdefault(line_user_id, number)

    def _check_resident(self, number: int, given: dict[str, Any], existing: _Existing | None,
                        values: dict[str, str]) -> None:
        """The rules create_resident applies, on the resident as it will be after this row."""
        if existing is None:
            given.setdefault("channels", default_channels(given.get("phone"),
                                                          given.get("line_user_id")))
            after = given
        else:
            after = {**existing.values, **given}
        errors = reachability_errors(after.get("phone"), after.get("line_user_id"), after["channels"])
        policy_id = given.get("check_policy_id")
        if policy_id is not None and policy_id not in self.policy_ids:
            errors["check_policy_id"] = [f"No check policy {policy_id}."]
        for key, messages in errors.items():
            self.field_error(number, key, messages, values)

    def _check_contact(self, number: int, contact: dict[str, Any], values: dict[str, str]) -> None:
        if not contact["channels"]:
            contact["channels"] = default_channels(contact["phone"], contact["line_user_id"],
                                                   contact=True)
        errors = reachability_errors(contact["phone"], contact["line_user_id"],
                                     contact["channels"], contact=True)
        for key, messages in errors.items():
            self.field_error(number, CONTACT_COLUMNS[key], messages, values)


def import_residents(raw: bytes, charset: str | None = None, dry_run: bool = False,
                     wait: str = IMPORT_LOCK_TIMEOUT) -> ImportResult:
    """Check the whole file, then write it in the session's transaction only if no row has an error.

    The caller commits; with errors, or on a dry run, nothing has been written. A writing import
    waits up to `wait` (a PostgreSQL interval) for the tenant's other import to finish.
    """
    result = ImportResult(dry_run=dry_run)
    records = _records(decode_csv(raw, charset))
    if not records.rows and records.broken is None:
        raise UnreadableCsv("The file is empty: it has no header row.", row=1)
    importer = _Importer(result)
    if records.rows:
        header_row, header = records.rows[0]
        importer.read_header(header_row, header)
    if records.broken:
        importer.broken_row(*records.broken)
    if result.error_count:
        return result
    data = records.rows[1:]
    if not data:
        importer.error(header_row + 1, None, "The file has a header row but no residents below it.")
        return result
    if len(data) > MAX_ROWS:
        importer.error(data[MAX_ROWS][0], None, f"More than {MAX_ROWS} residents in one file: "
                       f"split it into files of at most {MAX_ROWS} rows.")
        return result
    if not dry_run:
        _one_import_at_a_time(wait)
    importer.load_lookups()
    for number, cells in data:
        importer.read_row(number, cells)
    result.created = sum(row.existing is None for row in importer.rows)
    result.updated = len(importer.rows) - result.created
    if result.error_count:
        return result
    check_quota(result.created)
    if not dry_run:
        try:
            _write(importer.rows)
        except IntegrityError as exc:
            # Only a concurrent change (a resident added meanwhile) gets here.
            raise Conflict(
                "These residents changed while the file was imported; import it again.") from exc
    return result


def _one_import_at_a_time(wait: str) -> None:
    """Wait for the tenant's other import to commit, so that this one reads what it wrote.

    Two imports of one register at once would otherwise both create the same residents, or
    update the same rows in opposite orders and deadlock. The lock is PostgreSQL's
    transaction-scoped advisory lock, released by the caller's commit or rollback; SQLite lets
    one writer at a time in anyway. Past `wait` the import gives up with a 409.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    previous = db.session.scalar(text("SELECT current_setting('lock_timeout')"))
    db.session.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait})
    try:
        db.session.execute(text("SELECT pg_advisory_xact_lock(:space, :tenant)"),
                           {"space": _IMPORT_LOCK_SPACE, "tenant": bound_tenant_id()})
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise Conflict("Another import for this tenant is still running; "
                       "try again in a minute.") from exc
    db.session.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": previous})


def _write(rows: list[_Row]) -> None:
    """Bulk statements, one per table and kind, instead of an ORM flush per resident.

    Plain executemany, without RETURNING, lets psycopg pipeline one prepared statement; RETURNING
    makes SQLAlchemy build 1000-row VALUES lists that psycopg re-parses in Python, twice as slow.
    `render_nulls` keeps empty cells in every parameter set: the ORM otherwise drops None values,
    and rows with different keys go to the database in separate batches.
    """
    tenant_id = bound_tenant_id()
    created = [row for row in rows if row.existing is None]
    resident_ids = {row.number: row.existing.id for row in rows if row.existing is not None}
    if created:
        codes = new_link_codes(len(created))
        db.session.execute(insert(Resident).execution_options(render_nulls=True), [
            {**dict.fromkeys(RESIDENT_FIELDS), **row.fields, "tenant_id": tenant_id, "link_code": code}
            for row, code in zip(created, codes, strict=True)])
        # Link codes are unique per tenant, so one query pairs the new ids with their rows.
        ids = dict(db.session.execute(select(Resident.link_code, Resident.id)).tuples().all())
        resident_ids.update((row.number, ids[code]) for row, code in zip(created, codes, strict=True))
    # In id order: two writers of the same residents then take their row locks in one order.
    changes = sorted((change for change in map(_resident_changes, rows) if change),
                     key=lambda change: change["id"])
    if changes:
        db.session.execute(update(Resident), changes)
    _write_contacts(rows, resident_ids, tenant_id)
    _write_memberships(rows, resident_ids, tenant_id)


def _resident_changes(row: _Row) -> dict[str, Any] | None:
    """What an update row changes: re-imports of a whole register mostly repeat what is stored."""
    if row.existing is None:
        return None
    changes = {key: value for key, value in row.fields.items() if row.existing.values[key] != value}
    if "check_policy_id" in changes:
        # As update_resident does: checks under the new policy start now, not this morning.
        changes["policy_assigned_at"] = utcnow()
    return {"id": row.existing.id, **changes} if changes else None


def _write_contacts(rows: list[_Row], resident_ids: dict[int, int], tenant_id: int) -> None:
    """The row's contact replaces the resident's contact with the same phone, or is added last."""
    kept = [key for key in CONTACT_FIELDS if key != "priority"]
    stored: dict[tuple[int, str | None], tuple[int, dict[str, Any]]] = {}
    last_priority: dict[int, int] = defaultdict(int)
    if any(row.contact and row.existing for row in rows):
        columns = [getattr(Contact, key) for key in kept]
        for contact_id, resident_id, priority, *values in db.session.execute(
                select(Contact.id, Contact.resident_id, Contact.priority, *columns)):
            contact = dict(zip(kept, values, strict=True))
            stored[resident_id, contact["phone"]] = contact_id, contact
            last_priority[resident_id] = max(last_priority[resident_id], priority)
    added: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for row in rows:
        if not row.contact:
            continue
        resident_id = resident_ids[row.number]
        fields = {key: row.contact[key] for key in kept}
        if (resident_id, fields["phone"]) not in stored:
            added.append({**fields, "tenant_id": tenant_id, "resident_id": resident_id,
                          "priority": last_priority[resident_id] + 1})
            continue
        contact_id, current = stored[resident_id, fields["phone"]]
        changes = {key: value for key, value in fields.items() if current[key] != value}
        if changes:
            replaced.append({"id": contact_id, **changes})
    if added:
        db.session.execute(insert(Contact).execution_options(render_nulls=True), added)
    if replaced:
        db.session.execute(update(Contact), sorted(replaced, key=lambda change: change["id"]))


def _write_memberships(rows: list[_Row], resident_ids: dict[int, int], tenant_id: int) -> None:
    """A filled グループ cell sets the resident's groups to exactly those named."""
    current: dict[int, dict[int, int]] = defaultdict(dict)
    if any(row.group_ids is not None and row.existing for row in rows):
        for member_id, resident_id, group_id in db.session.execute(
                select(GroupMember.id, GroupMember.resident_id, GroupMember.group_id)):
            current[resident_id][group_id] = member_id
    stale: list[int] = []
    fresh: list[dict[str, Any]] = []
    for row in rows:
        if row.group_ids is None:
            continue
        resident_id = resident_ids[row.number]
        have = current[resident_id]
        stale += [member_id for group_id, member_id in have.items() if group_id not in row.group_ids]
        fresh += [{"tenant_id": tenant_id, "resident_id": resident_id, "group_id": group_id}
                  for group_id in row.group_ids if group_id not in have]
    if stale:
        db.session.execute(delete(GroupMember).where(GroupMember.id.in_(stale)))
    if fresh:
        db.session.execute(insert(GroupMember), fresh)
