"""What the resident, incident, import and group pages share: pages, form errors, phone numbers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import phonenumbers
from flask import g, request
from sqlalchemy import Select, func
from wtforms import Form

from admin_ui.messages import localise
from mimamori.extensions import db

PAGE_SIZE = 50


def local_today() -> date:
    return g.tenant.local_today()


def day_bounds(day: date, days: int = 1) -> tuple[datetime, datetime]:
    """Midnight of `day` to midnight `days` later in the tenant's zone."""
    start = datetime.combine(day, time(0), tzinfo=g.tenant.zone)
    return start, start + timedelta(days=days)


@dataclass
class Page:
    """One page of a long list, numbered from 1, with the total for "1–50 / 3,210"."""

    items: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        return min(self.total, self.number * self.size)

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def paginate(statement: Select, count_column: Any, scalars: bool = True,
             size: int = PAGE_SIZE) -> Page:
    """The page `?page=` asks for. The count keeps an ORM column at the top of the SELECT:
    a bare count over a subquery would escape the tenant filter."""
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and int(raw) > 0 else 1
    total = db.session.scalar(
        statement.with_only_columns(func.count(count_column)).order_by(None)) or 0
    number = min(number, max(1, math.ceil(total / size)))
    paged = statement.limit(size).offset((number - 1) * size)
    items = list(db.session.scalars(paged)) if scalars else list(db.session.execute(paged).all())
    return Page(items, number, size, total)


def blank_to_none(data: dict[str, Any]) -> dict[str, Any]:
    """Form text as the JSON API would get it: empty inputs are not given."""
    return {key: (None if isinstance(value, str) and not value.strip() else value)
            for key, value in data.items()}


def whole_number(value: Any) -> Any:
    """Digits become an int for the strict schema; anything else goes on for it to refuse."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def messages_of(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [message for nested in value.values() for message in messages_of(nested)]
    if isinstance(value, list | tuple):
        return [message for nested in value for message in messages_of(nested)]
    return [str(value)]


def put_errors(form: Form, errors: dict[str, Any], fields: dict[str, str] | None = None) -> list[str]:
    """Show each error beside its field, in the staff member's language; what belongs to no
    field is returned for the summary above the form.

    `fields` maps an error key (the schema's field name) to the form field that shows it.
    """
    unplaced: list[str] = []
    for key, value in errors.items():
        name = (fields or {}).get(key, key)
        messages = [localise(message) for message in messages_of(value)]
        if name in form:
            form[name].errors = [*list(form[name].errors or []), *messages]
        else:
            unplaced += messages
    return unplaced


def error_summary(forms: Iterable[Form]) -> list[tuple[str, str, str]]:
    """(field id, label, message) for every field error, for the alert at the top of a form."""
    found = []
    for form in forms:
        for field in form:
            if field.type in ("FieldList", "FormField"):
                for sub in (field.entries if field.type == "FieldList" else [field]):
                    found += error_summary([sub.form]) if hasattr(sub, "form") else []
                continue
            for message in field.errors or []:
                found.append((field.id, str(field.label.text), str(message)))
    return found


def phone_display(value: str | None) -> str:
    """+819012345678 as staff dial it: 090-1234-5678 (international numbers stay international)."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, "JP")
    except phonenumbers.NumberParseException:
        return value
    form = (phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 81
            else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, form)


def equip(blueprint: Any) -> None:
    """Give a blueprint's templates the labels and the phone filter these pages use."""
    from admin_ui.labels import labels

    blueprint.context_processor(labels)
    blueprint.add_app_template_filter(phone_display, "phone_display")
