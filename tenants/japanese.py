"""Japanese input as city registers write it: phone numbers, kana, names and era dates."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import phonenumbers

# Start year (year 1) of each era, in the forms registers use: 昭和, 昭, S, s.
_ERAS = {
    "明治": 1868, "明": 1868, "M": 1868,
    "大正": 1912, "大": 1912, "T": 1912,
    "昭和": 1926, "昭": 1926, "S": 1926,
    "平成": 1989, "平": 1989, "H": 1989,
    "令和": 2019, "令": 2019, "R": 2019,
}
_ERA_DATE = re.compile(
    r"^(?P<era>明治|大正|昭和|平成|令和|[明大昭平令MTSHR])\s*(?P<year>元|\d{1,2})\s*"
    r"[年./\-]\s*(?P<month>\d{1,2})\s*[月./\-]\s*(?P<day>\d{1,2})\s*日?$"
)
_WESTERN_DATE = re.compile(
    r"^(?P<year>\d{4})\s*[年./\-]\s*(?P<month>\d{1,2})\s*[月./\-]\s*(?P<day>\d{1,2})\s*日?$"
)
_COMPACT_DATE = re.compile(r"^(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})$")
_KATAKANA = re.compile(r"^[\u30A0-\u30FF\s]+$")


def normalise_text(value: str) -> str:
    """NFKC (full-width digits and letters, half-width kana), single spaces, trimmed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip()


def normalise_phone(value: str) -> str:
    """E.164 for a Japanese domestic or international number; ValueError when not a number."""
    text = normalise_text(value).replace("ー", "-").replace("−", "-")
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_kana(value: str) -> str:
    """Full-width katakana from hiragana, katakana or half-width katakana; ValueError otherwise."""
    text = normalise_text(value)
    text = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)
    if not _KATAKANA.match(text):
        raise ValueError("use kana (フリガナ) only")
    return text


def parse_date(value: str) -> date:
    """A date written as 1940-04-01, 1940/4/1, 1940年4月1日, 19400401, 昭和15年4月1日 or S15.4.1."""
    text = normalise_text(value)
    match = _ERA_DATE.match(text)
    if match:
        year_text = match["year"]
        era_year = 1 if year_text == "元" else int(year_text)
        year = _ERAS[match["era"]] + era_year - 1
    else:
        match = _WESTERN_DATE.match(text) or _COMPACT_DATE.match(text)
        if not match:
            raise ValueError("not a date (use 1940-04-01 or 昭和15年4月1日)")
        year = int(match["year"])
    try:
        return date(year, int(match["month"]), int(match["day"]))
    except ValueError as exc:
        raise ValueError("no such date") from exc
