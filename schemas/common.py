"""Fields shared by several schemas: ids, pages, Japanese phone numbers, kana, dates, channels.

Every input schema is a `StrictSchema`: unknown fields, NUL characters and ids the database cannot
hold are refused there, so no request reaches a service or the database with them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import date, time
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from tenants.japanese import normalise_kana, normalise_phone, normalise_text, parse_date
from tenants.models.residents import CHANNELS
from tenants.types import MAX_ID

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR = 64
NUL_MESSAGE = "Must not contain NUL characters."


def _has_nul(value: Any) -> bool:
    """Whether a NUL is in this value, its keys or anything nested in it (JSON bodies arrive
    with their depth bounded, see api.MAX_JSON_DEPTH)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class StrictSchema(Schema):
    """Unknown fields are errors, so a typo never silently drops data; NUL characters are refused
    (PostgreSQL cannot store them in text, and no person types one)."""

    @pre_load
    def _refuse_nul(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {str(key): [NUL_MESSAGE] for key, value in data.items()
                      if _has_nul(key) or _has_nul(value)}
            if errors:
                raise ValidationError(errors)
        return data


class BlankIsNull(fields.String):
    """A string field where blank input means "no value": it loads as None (an error when the
    field is required or not nullable), and validators such as Length see only real text."""

    def _blank(self) -> None:
        if self.required or not self.allow_none:
            raise ValidationError("Must not be blank.")

    def _validate(self, value: Any) -> None:
        if value is not None:
            super()._validate(value)


class Text(BlankIsNull):
    """A string normalised to NFKC with single spaces; empty after trimming counts as missing."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = normalise_text(super()._deserialize(value, attr, data, **kwargs))
        if not text:
            self._blank()
        return text or None


class Note(BlankIsNull):
    """Free text as staff wrote it, line breaks kept, trimmed; blank counts as missing."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            self._blank()
        return text or None


class Phone(BlankIsNull):
    """A phone number in any Japanese domestic or international form, stored as E.164."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            self._blank()
            return None
        try:
            return normalise_phone(text)
        except ValueError as exc:
            raise ValidationError(f"Not a valid phone number: {text!r}.") from exc


class Kana(BlankIsNull):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            self._blank()
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


class LineUserId(BlankIsNull):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            self._blank()
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


class Id(fields.Integer):
    """The id of a row: a whole number from 1 to 2^31−1 (no larger one can exist)."""

    def __init__(self, **kwargs: Any) -> None:
        extra = kwargs.pop("validate", None)
        validators = [validate.Range(min=1, max=MAX_ID, error=f"Must be an id from 1 to {MAX_ID}.")]
        validators += extra if isinstance(extra, list) else [extra] if extra else []
        super().__init__(validate=validators, **kwargs)


def id_list(**kwargs: Any) -> fields.List:
    """Ids in a JSON body, each at most once."""
    return fields.List(Id(strict=True), validate=[validate.Length(max=10_000), _unique], **kwargs)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


class Cursor(fields.String):
    """`?cursor=`: the `next` of the previous page, loaded as the id it continues after."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            if len(text) > MAX_CURSOR:
                raise ValueError(text)
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            kind, _, number = raw.partition(":")
            if (kind == "id" and number.isascii() and number.isdigit() and len(number) <= 10
                    and int(number) <= MAX_ID):
                return int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
        raise ValidationError("Invalid cursor: use the `next` of the previous page.")


class PageArgs(StrictSchema):
    """`?cursor=&limit=` of every list."""

    cursor = Cursor(load_default=None, metadata={"description": "The `next` of the previous page.",
                                                 "maxLength": MAX_CURSOR})
    limit = fields.Integer(load_default=DEFAULT_LIMIT,
                           validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": "How many items a page holds at most."})


class ListOf(Schema):
    """Documentation shape of a page: {"items": [...], "next": cursor or null}."""

    next = fields.String(allow_none=True,
                         metadata={"description": "Give it as `?cursor=` for the next page."})


def page_of(item: type[Schema]) -> type[Schema]:
    """The page schema of a list of `item`: {"items": [...], "next": cursor or null}."""
    name = item.__name__.removesuffix("Out") + "Page"
    return type(name, (ListOf,), {"items": fields.List(fields.Nested(item), required=True),
                                  "__doc__": f"A page of {item.__name__.removesuffix('Out')}."})
