"""Fields shared by several schemas: Japanese phone numbers, kana, dates, channel lists."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from tenants.japanese import normalise_kana, normalise_phone, normalise_text, parse_date
from tenants.models.residents import CHANNELS

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")


class StrictSchema(Schema):
    """Unknown fields are errors, so a typo never silently drops data."""


class Text(fields.String):
    """A string normalised to NFKC with single spaces; empty after trimming counts as missing."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = normalise_text(super()._deserialize(value, attr, data, **kwargs))
        if not text and self.required:
            raise ValidationError("Must not be blank.")
        return text or None


class Phone(fields.String):
    """A phone number in any Japanese domestic or international form, stored as E.164."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            return None
        try:
            return normalise_phone(text)
        except ValueError as exc:
            raise ValidationError(f"Not a valid phone number: {text!r}.") from exc


class Kana(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            return None
        try:
            return normalise_kana(text)
        except ValueError as exc:
            raise ValidationError("Use kana (フリガナ) only.") from exc


class JapaneseDate(fields.Date):
    """ISO dates, plus 1940/4/1, 1940年4月1日 and era dates (昭和15年4月1日, S15.4.1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise ValidationError("Not a valid date.")
        try:
            return parse_date(value)
        except ValueError as exc:
            raise ValidationError(f"Not a valid date: {value!r}.") from exc


class ClockTime(fields.Field):
    """A wall-clock time written HH:MM."""

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.strftime("%H:%M")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            hour, minute = (int(part) for part in value.strip().split(":"))
            if hour < 24 and minute < 60:
                return time(hour, minute)
        raise ValidationError("Use a time written HH:MM, e.g. 09:00.")


class LineUserId(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            return None
        if not LINE_USER_ID.match(text):
            raise ValidationError("A LINE user id is U followed by 32 hexadecimal digits.")
        return text


def _unique(values: list[Any]) -> bool:
    if len(set(values)) != len(values):
        raise ValidationError("Each value may appear only once.")
    return True


def channel_list(**kwargs: Any) -> fields.List:
    """An ordered list of channels ("line", "sms", "voice"), most preferred first."""
    return fields.List(
        fields.String(validate=validate.OneOf(CHANNELS)),
        validate=[validate.Length(min=1, error="Give at least one channel."), _unique],
        **kwargs,
    )


def positive_minutes(maximum: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=maximum), **kwargs)


class ListOf(Schema):
    """Documentation shape of a page: {"items": [...], "next": cursor or null}."""

    next = fields.String(allow_none=True)
