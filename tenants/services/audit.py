"""The audit trail: one append-only row per change or disclosure of personal data."""

from __future__ import annotations

from typing import Any

from mimamori.extensions import db
from tenants.models import AuditEvent


def record(action: str, *, tenant_id: int | None, target: Any = None, token_id: int | None = None,
           user_id: int | None = None, detail: dict[str, Any] | None = None) -> AuditEvent:
    event = AuditEvent(action=action, tenant_id=tenant_id, actor_token_id=token_id,
                       actor_user_id=user_id, detail=detail,
                       target_type=type(target).__name__ if target is not None else None,
                       target_id=getattr(target, "id", None))
    db.session.add(event)
    return event
