"""Immediate safety rounds (一斉安否確認): one check to every resident of a group or the tenant."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select

from mimamori import metrics
from mimamori.extensions import db
from tenants import messages
from tenants.batching import chunks
from tenants.errors import ValidationFailed
from tenants.models import (
    Check,
    Group,
    GroupMember,
    Incident,
    Resident,
    ResidentPause,
    Round,
    Tenant,
)
from tenants.services import incidents
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
    paused = exists().select_from(ResidentPause).where(ResidentPause.resident_id == Resident.id,
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


# A check's status as the tally names it.
TALLY_KEYS = {"answered": "answered", "sent": "pending", "missed": "missed", "failed": "failed"}


def _count(rows: list[tuple[str, int]]) -> dict[str, int]:
    counts = dict.fromkeys(("targeted", "answered", "pending", "missed", "failed"), 0)
    for status, number in rows:
        counts["targeted"] += number
        counts[TALLY_KEYS[status]] += number
    return counts


def by_group(round_: Round) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """The tally per community group, per area group (kind "area"), and of the residents in no
    area group; a resident in two groups counts in each."""
    rows = db.session.execute(
        select(Group.id, Group.name, Group.kind, Check.status, func.count())
        .join(GroupMember, GroupMember.group_id == Group.id)
        .join(Check, Check.resident_id == GroupMember.resident_id)
        .where(Check.round_id == round_.id)
        .group_by(Group.id, Group.name, Group.kind, Check.status).order_by(Group.id)).all()
    found: dict[int, dict[str, Any]] = {}
    for group_id, name, kind, status, number in rows:
        found.setdefault(group_id, {"group_id": group_id, "name": name, "kind": kind,
                                    "rows": []})["rows"].append((status, number))
    tallies = [{"group_id": g["group_id"], "name": g["name"], "kind": g["kind"], **_count(g["rows"])}
               for g in found.values()]
    in_area = select(GroupMember.resident_id).join(Group, Group.id == GroupMember.group_id).where(
        Group.kind == "area")
    outside = db.session.execute(
        select(Check.status, func.count()).where(Check.round_id == round_.id,
                                                 Check.resident_id.not_in(in_area))
        .group_by(Check.status)).all()
    return ([t for t in tallies if t["kind"] != "area"], [t for t in tallies if t["kind"] == "area"],
            _count([(status, number) for status, number in outside]))


def unanswered(round_: Round, after_check_id: int | None, limit: int) -> list[dict[str, Any]]:
    """Residents who have not answered the round yet (by check id, `limit` + 1 to tell whether
    more follow), with what staff need to go and see: vulnerability notes, address, phone."""
    statement = (select(Check, Resident).join(Resident, Resident.id == Check.resident_id)
                 .where(Check.round_id == round_.id, Check.answered_at.is_(None)))
    if after_check_id is not None:
        statement = statement.where(Check.id > after_check_id)
    rows = db.session.execute(statement.order_by(Check.id).limit(limit + 1)).all()
    resident_ids = [resident.id for _, resident in rows]
    check_ids = [check.id for check, _ in rows]
    groups: dict[int, list[int]] = {}
    for resident_id, group_id in db.session.execute(
            select(GroupMember.resident_id, GroupMember.group_id)
            .where(GroupMember.resident_id.in_(resident_ids)).order_by(GroupMember.group_id)):
        groups.setdefault(resident_id, []).append(group_id)
    opened = {check_id: (incident_id, status) for check_id, incident_id, status in db.session.execute(
        select(Incident.check_id, Incident.id, Incident.status).where(
            Incident.check_id.in_(check_ids)))}
    return [{"check_id": check.id, "check_status": check.status, "channel": check.channel,
             "resident_id": resident.id, "name": resident.name, "name_kana": resident.name_kana,
             "phone": resident.phone, "address": resident.address, "notes": resident.notes,
             "group_ids": groups.get(resident.id, []),
             "incident_id": opened.get(check.id, (None, None))[0],
             "incident_status": opened.get(check.id, (None, None))[1]}
            for check, resident in rows]


def escalate(round_: Round, now: datetime) -> dict[str, Any]:
    """Start the normal alert chain for everyone who has not answered the round: one incident per
    unanswered check, on the resident's own policy's chain (none: the incident says so).
    Running it again opens nothing new."""
    waiting = list(db.session.scalars(select(Check).where(
        Check.round_id == round_.id, Check.answered_at.is_(None)).order_by(Check.id)))
    opened = [incident for part in chunks(waiting)
              for incident in incidents.open_incidents(list(part), now, include_rounds=True)]
    return {"round_id": round_.id, "unanswered": len(waiting), "opened": len(opened),
            "incident_ids": sorted(i.id for i in opened)}
