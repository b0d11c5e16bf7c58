"""Immediate safety rounds (一斉安否確認): one check to every resident of a group or the tenant."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select

from mimamori import metrics
from mimamori.extensions import db
from tenants import messages
from tenants.errors import ValidationFailed
from tenants.models import Check, Group, GroupMember, Resident, ResidentPause, Round, Tenant
from tenants.services.checks import Planned, send_first_deliveries
from tenants.services.deliveries import insert_ignoring_duplicates
from tenants.services.lookup import get_or_404


def get_round(round_id: int) -> Round:
    return get_or_404(Round, round_id, "round")


def start_round(tenant: Tenant, message: str, group_id: int | None, now: datetime,
                user_id: int | None = None, window_minutes: int = 180,
                trigger: str = "manual") -> tuple[Round, Planned]:
    """Create the round and one check per resident reached (paused residents are left out)."""
    if group_id is not None and db.session.get(Group, group_id) is None:
        raise ValidationFailed("unknown group", {"group_id": [f"No group {group_id}."]})
    round_ = Round(group_id=group_id, message=message, trigger=trigger, created_by_user_id=user_id,
                   response_window_minutes=window_minutes, created_at=now)
    db.session.add(round_)
    db.session.flush()
    today = tenant.local_today(now)
    paused = exists().where(ResidentPause.resident_id == Resident.id,
                            ResidentPause.starts_on <= today, ResidentPause.until > today)
    candidates = select(
        Resident.tenant_id, Resident.id, db.literal(round_.id), db.literal(f"round:{round_.id}"),
        db.literal(now, Check.scheduled_at.type), db.literal("sent"),
        db.literal(now + timedelta(minutes=window_minutes), Check.window_ends_at.type),
        db.literal(now, Check.created_at.type),
    ).where(~paused)
    if group_id is not None:
        candidates = candidates.where(Resident.id.in_(
            select(GroupMember.resident_id).where(GroupMember.group_id == group_id)))
    check_ids = list(db.session.scalars(insert_ignoring_duplicates(Check).from_select(
        ["tenant_id", "resident_id", "round_id", "occurrence", "scheduled_at", "status",
         "window_ends_at", "created_at"], candidates).returning(Check.id)))
    round_.targeted = len(check_ids)
    metrics.CHECKS_PLANNED.labels(tenant.slug, "round").inc(len(check_ids))
    texts = {channel: messages.round_text(message, channel) for channel in ("line", "sms", "voice")}
    planned = send_first_deliveries(tenant, check_ids, now, texts=texts, purpose="round")
    planned.checks = len(check_ids)
    return round_, planned


def tally(round_: Round) -> dict[str, Any]:
    """The live count: answered, still pending, and those no channel could reach."""
    counts = dict(db.session.execute(
        select(Check.status, func.count()).where(Check.round_id == round_.id)
        .group_by(Check.status)).all())
    return {"id": round_.id, "group_id": round_.group_id, "message": round_.message,
            "trigger": round_.trigger, "created_at": round_.created_at,
            "targeted": round_.targeted, "answered": counts.get("answered", 0),
            "pending": counts.get("sent", 0), "missed": counts.get("missed", 0),
            "failed": counts.get("failed", 0)}
