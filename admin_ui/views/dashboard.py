"""The tenant's home page: today's checks at a glance, open incidents first."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask import g, render_template
from sqlalchemy import func, select

from admin_ui.session import tenant_blueprint, visible_residents
from mimamori.extensions import db
from tenants.models import Check, Incident, Resident
from tenants.types import utcnow

blueprint = tenant_blueprint("dashboard", __name__)


def today_bounds() -> tuple[datetime, datetime]:
    """Midnight to midnight today in the tenant's zone, as UTC instants."""
    zone = g.tenant.zone
    day = utcnow().astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, start + timedelta(days=1)


@blueprint.get("/")
def today() -> Any:
    start, end = today_bounds()
    visible = visible_residents(select(Resident.id))
    counts = dict(db.session.execute(
        select(Check.status, func.count()).where(Check.scheduled_at >= start,
                                                 Check.scheduled_at < end,
                                                 Check.resident_id.in_(visible))
        .group_by(Check.status)).all())
    incidents = db.session.execute(
        select(Incident, Resident).join(Resident, Resident.id == Incident.resident_id)
        .where(Incident.status != "resolved", Incident.resident_id.in_(visible))
        .order_by(Incident.escalated.desc(), Incident.opened_at)).all()
    return render_template("dashboard/today.html", counts=counts, incidents=incidents,
                           day=start)
