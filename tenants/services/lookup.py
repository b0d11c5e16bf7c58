"""Fetching one row by id in the bound tenant, or a 404 naming what was asked for."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select

from mimamori.extensions import db
from tenants.errors import Conflict, NotFound

T = TypeVar("T")


def get_or_404(model: type[T], object_id: int, what: str) -> T:
    """The row, scoped to the bound tenant by construction; another tenant's id is not found."""
    found = db.session.get(model, object_id)
    if found is None:
        raise NotFound(f"no {what} {object_id}")
    return found


def delete_unless_used(obj: Any, used_by: Any, message: str) -> None:
    """Delete `obj` unless some row's `used_by` column still points at it (409 then)."""
    if db.session.scalar(select(used_by).where(used_by == obj.id).limit(1)) is not None:
        raise Conflict(message)
    db.session.delete(obj)
    db.session.flush()
