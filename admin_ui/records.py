"""One of the tenant's records on a page: a 404 where it is not found, a refused delete explained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, flash, redirect
from werkzeug.wrappers import Response

from admin_ui.audit_trail import audit
from admin_ui.schema_forms import domain_errors
from mimamori.extensions import db
from tenants.errors import DomainError, NotFound

T = TypeVar("T")


def found_or_404(fetch: Callable[..., T], *args: Any) -> T:
    """What the service's `fetch` finds, or the 404 page where it finds nothing in this tenant."""
    try:
        return fetch(*args)
    except NotFound:
        abort(404)


def delete_or_refuse(record: Any, delete: Callable[[Any], None], action: str, done: str,
                     deleted_to: str, refused_to: str) -> Response:
    """Delete through the service and say `done`; where the service refuses (still in use),
    nothing is deleted and its reason is shown at `refused_to`."""
    try:
        audit(action, record)
        delete(record)
    except DomainError as exc:
        db.session.rollback()
        flash(domain_errors(exc)["_schema"][0], "error")
        return redirect(refused_to)
    db.session.commit()
    flash(done, "success")
    return redirect(deleted_to)
