"""Cursor pagination: `{"items": [...], "next": <cursor or null>}`, next page at `?cursor=`.

Views take `?cursor=&limit=` through `schemas.common.PageArgs` (documented, bounded, validated)
and answer through `@blp.response(200, page_of(ItemOut))`, which dumps the items.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from mimamori.extensions import db
from schemas.common import encode_cursor


def next_cursor(last_id: int) -> str:
    return encode_cursor(last_id)


def paginate(statement: Select, model: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Page `statement` (a select of `model`) by ascending id, as `args` (PageArgs) ask."""
    limit = args["limit"]
    if args.get("cursor") is not None:
        statement = statement.where(model.id > args["cursor"])
    rows = db.session.scalars(statement.order_by(model.id).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": encode_cursor(rows[-1].id) if has_more and rows else None}
