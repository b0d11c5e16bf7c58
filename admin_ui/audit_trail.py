"""What a signed-in user did on a tenant's pages, in that tenant's audit log."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_login import current_user

from tenants.services.audit import record


def audit(action: str, target: Any = None, detail: dict[str, Any] | None = None) -> None:
    """Record what the signed-in user did or saw, in the bound tenant (the caller commits)."""
    record(action, tenant_id=g.tenant.id, target=target, user_id=current_user.id, detail=detail)
