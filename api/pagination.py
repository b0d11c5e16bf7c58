"""Cursor pagination: `{"items": [...], "next": <cursor or null>}`, next page at `?cursor=`."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import request
from marshmallow import Schema
from sqlalchemy import Select

from mimamori.extensions import db
from tenants.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(raw)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("cursor is not one this API gave out",
                               {"cursor": ["Invalid cursor."]}) from exc


def _limit() -> int:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed("limit out of range",
                               {"limit": [f"Must be a whole number from 1 to {MAX_LIMIT}."]})
    return int(raw)


def page_request() -> tuple[int | None, int]:
    """This request's `?cursor=` (the last id of the previous page, or None) and `?limit=`, for
    lists built another way than `paginate`."""
    cursor = request.args.get("cursor")
    return (_decode(cursor) if cursor else None), _limit()


def next_cursor(last_id: int) -> str:
    return _encode(last_id)


def paginate(statement: Select, model: Any, schema: Schema) -> dict[str, Any]:
    """Page `statement` (a select of `model`) by ascending id."""
    limit = _limit()
    cursor = request.args.get("cursor")
    if cursor:
        statement = statement.where(model.id > _decode(cursor))
    rows = db.session.scalars(statement.order_by(model.id).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": schema.dump(rows, many=True),
        "next": _encode(rows[-1].id) if has_more and rows else None,
    }
