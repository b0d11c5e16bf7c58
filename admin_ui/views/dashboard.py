"""The tenant's home page: today's checks at a glance, open incidents first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify, render_template
from sqlalchemy import case, func, select

from admin_ui.session import tenant_blueprint, visible_residents
from admin_ui.support import day_bounds, equip, local_today
from mimamori.extensions import db
from tenants.models import Check, Incident, IncidentEvent, Resident, ResidentPause

blueprint = tenant_blueprint("dashboard", __name__)
equip(blueprint)

UNANSWERED_LISTED = 200
# The ones most in need of a look first: nobody could be reached, then no answer, then waiting.
_URGENCY = case({"failed": 0, "missed": 1}, value=Check.status, else_=2)


def today_bounds() -> tuple[datetime, datetime]:
    """Midnight to midnight today in the tenant's zone, as UTC instants."""
    return day_bounds(local_today())


def _counts(start: datetime, end: datetime) -> dict[str, int]:
    visible = visible_residents(select(Resident.id))
    counts = dict(db.session.execute(
        select(Check.status, func.count(Check.id)).where(Check.scheduled_at >= start,
                                                         Check.scheduled_at < end,
                                                         Check.resident_id.in_(visible))
        .group_by(Check.status)).all())
    return {status: counts.get(status, 0) for status in ("sent", "answered", "missed", "failed")}


def _open_incidents() -> list[Any]:
    visible = visible_residents(select(Resident.id))
    latest = (select(func.max(IncidentEvent.at)).where(IncidentEvent.incident_id == Incident.id)
              .scalar_subquery())
    return list(db.session.execute(
        select(Incident, Resident, Check.status, latest)
        .join(Resident, Resident.id == Incident.resident_id)
        .join(Check, Check.id == Incident.check_id)
        .where(Incident.status != "resolved", Incident.resident_id.in_(visible))
        .order_by(Incident.escalated.desc(), case({"open": 0}, value=Incident.status, else_=1),
                  Incident.opened_at, Incident.id)).all())


def _paused_today() -> int:
    day = local_today()
    return db.session.scalar(visible_residents(
        select(func.count(Resident.id)).where(Resident.id.in_(
            select(ResidentPause.resident_id).where(ResidentPause.starts_on <= day,
                                                    ResidentPause.until > day))))) or 0


@blueprint.get("/")
def today() -> Any:
    start, end = today_bounds()
    counts = _counts(start, end)
    unanswered = db.session.execute(visible_residents(
        select(Check, Resident).join(Resident, Resident.id == Check.resident_id)
        .where(Check.scheduled_at >= start, Check.scheduled_at < end, Check.status != "answered"))
        .order_by(_URGENCY, Check.scheduled_at, Resident.name_kana, Resident.id)
        .limit(UNANSWERED_LISTED)).all()
    unanswered_total = counts["sent"] + counts["missed"] + counts["failed"]
    return render_template("dashboard/today.html", counts=counts, incidents=_open_incidents(),
                           day=start, unanswered=unanswered, unanswered_total=unanswered_total,
                           paused=_paused_today(), total=sum(counts.values()))


@blueprint.get("/today.json")
def today_figures() -> Any:
    """The figures the page refreshes live (app.js data-refresh-url)."""
    start, end = today_bounds()
    counts = _counts(start, end)
    incidents = db.session.scalar(visible_residents(
        select(func.count(Incident.id)).join(Resident, Resident.id == Incident.resident_id)
        .where(Incident.status != "resolved"))) or 0
    return jsonify({**counts, "incidents": incidents,
                    "unanswered": counts["sent"] + counts["missed"] + counts["failed"]})
