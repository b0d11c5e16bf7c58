"""Japanese first, English available: locale choice, compiled catalogs, Japanese date formats.

Source strings are Japanese (the language staff work in); `translations/en` holds English.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, session
from flask_babel import format_date, get_locale
from flask_login import current_user

LOCALES = ("ja", "en")
TRANSLATIONS = Path(__file__).parent / "translations"
WEEKDAYS_JA = "月火水木金土日"


def select_locale() -> str:
    # A server error's page asks nothing of the database (the failure may be the database).
    if (not g.get("bare_page") and current_user and current_user.is_authenticated
            and current_user.locale in LOCALES):
        return current_user.locale
    return session.get("locale") if session.get("locale") in LOCALES else "ja"


def select_timezone() -> str:
    tenant = g.get("tenant")
    return tenant.timezone if tenant is not None else "Asia/Tokyo"


def compile_catalogs() -> None:
    """Compile each .po whose .mo is missing or older (images ship them compiled)."""
    for po_path in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file)
        try:
            with mo_path.open("wb") as mo_file:
                write_mo(mo_file, catalog)
        except OSError:
            pass  # a read-only install uses what it shipped with


def _zone() -> ZoneInfo:
    return ZoneInfo(select_timezone())


def long_date(value: date | datetime | None) -> str:
    """2026年11月22日(日) in Japanese; Sun, Nov 22, 2026 in English."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(_zone()).date()
    if str(get_locale()) == "ja":
        return f"{value.year}年{value.month}月{value.day}日({WEEKDAYS_JA[value.weekday()]})"
    return format_date(value, "EEE, MMM d, y")


def date_time(value: datetime | None) -> str:
    """The date as above and the time in the tenant's zone, e.g. 2026年11月22日(日) 09:05."""
    if value is None:
        return ""
    return f"{long_date(value)} {value.astimezone(_zone()).strftime('%H:%M')}"


def short_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(_zone()).strftime("%H:%M")


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "ja")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    compile_catalogs()
    app.jinja_env.filters.update(long_date=long_date, date_time=date_time, short_time=short_time)
    app.jinja_env.globals.update(get_locale=get_locale, LOCALES=LOCALES,
                                 has_endpoint=lambda name: name in app.view_functions)
