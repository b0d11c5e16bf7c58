"""Monthly statistics for council reports: answer rates, answer times, incidents, residents.

Days and months are the tenant's (midnight to midnight in its zone). Answer rates count the
scheduled checks of each day (immediate rounds have their own tally); a check still inside its
response window counts as not yet answered. Incidents are those opened in the month, by outcome
when resolved and by status while still open. Residents are those registered by the month's
end, by their age on its last day and by the channel their checks go out on first today.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import case, func, select

from mimamori.extensions import db
from tenants.models import Check, Incident, Resident, Tenant
from tenants.models.engine import OUTCOMES
from tenants.services.deliveries import first_working

AGE_BANDS = ("under_65", "65_74", "75_84", "85_plus", "unknown")
INCIDENT_KEYS = (*OUTCOMES, "acknowledged", "open")
FIRST_CHANNELS = ("line", "sms", "voice", "none")


@dataclass(frozen=True)
class DayFigures:
    day: date
    checks: int
    answered: int

    @property
    def rate(self) -> float | None:
        """Answered checks as a percentage of the day's checks; None on a day without checks."""
        return self.answered / self.checks * 100 if self.checks else None


@dataclass(frozen=True)
class MonthlyStats:
    month: date  # its first day
    days: list[DayFigures]
    median_answer_minutes: float | None
    incidents: dict[str, int] = field(default_factory=dict)
    age_bands: dict[str, int] = field(default_factory=dict)
    first_channels: dict[str, int] = field(default_factory=dict)

    @property
    def checks(self) -> int:
        return sum(d.checks for d in self.days)

    @property
    def answered(self) -> int:
        return sum(d.answered for d in self.days)

    @property
    def rate(self) -> float | None:
        return self.answered / self.checks * 100 if self.checks else None

    @property
    def residents(self) -> int:
        return sum(self.age_bands.values())


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def age_band(birth_date: date | None, on: date) -> str:
    if birth_date is None:
        return "unknown"
    age = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if age < 65:
        return "under_65"
    if age < 75:
        return "65_74"
    if age < 85:
        return "75_84"
    return "85_plus"


def _midnight(tenant: Tenant, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tenant.zone)


def _days(tenant: Tenant, month: date) -> list[DayFigures]:
    """Checks and answers per local day, in one pass over the month's scheduled checks."""
    end_of_month = next_month(month)
    days = [month + timedelta(days=n) for n in range((end_of_month - month).days)]
    ends = [_midnight(tenant, day + timedelta(days=1)) for day in days]
    day_index = case(*[(Check.scheduled_at < end, index) for index, end in enumerate(ends)],
                     else_=-1).label("day")
    # Grouped outside a subquery: the CASE's parameters appear once, whatever the driver.
    inner = select(day_index, Check.answered_at).where(
        Check.round_id.is_(None), Check.scheduled_at >= _midnight(tenant, month),
        Check.scheduled_at < _midnight(tenant, end_of_month)).subquery()
    counts = {index: (total, answered) for index, total, answered in db.session.execute(
        select(inner.c.day, func.count(), func.count(inner.c.answered_at))
        .group_by(inner.c.day))}
    return [DayFigures(day, *counts.get(index, (0, 0))) for index, day in enumerate(days)]


def _median_answer_minutes(tenant: Tenant, month: date) -> float | None:
    answered = (Check.round_id.is_(None), Check.answered_at.is_not(None),
                Check.scheduled_at >= _midnight(tenant, month),
                Check.scheduled_at < _midnight(tenant, next_month(month)))
    if db.engine.dialect.name == "postgresql":
        seconds = func.extract("epoch", Check.answered_at - Check.scheduled_at)
        median = db.session.scalar(select(func.percentile_cont(0.5).within_group(seconds))
                                   .where(*answered))
        return None if median is None else float(median) / 60
    pairs = db.session.execute(select(Check.scheduled_at, Check.answered_at).where(*answered))
    minutes = [(done - sent).total_seconds() / 60 for sent, done in pairs]
    return statistics.median(minutes) if minutes else None


def _incidents(tenant: Tenant, month: date) -> dict[str, int]:
    key = case((Incident.status == "resolved", func.coalesce(Incident.outcome, "other")),
               else_=Incident.status).label("key")
    inner = select(key).where(Incident.opened_at >= _midnight(tenant, month),
                              Incident.opened_at < _midnight(tenant, next_month(month))).subquery()
    found = dict(db.session.execute(select(inner.c.key, func.count()).group_by(inner.c.key)).all())
    return {k: found.get(k, 0) for k in INCIDENT_KEYS}


def _residents(tenant: Tenant, month: date) -> tuple[dict[str, int], dict[str, int]]:
    last_day = next_month(month) - timedelta(days=1)
    bands = dict.fromkeys(AGE_BANDS, 0)
    channels = dict.fromkeys(FIRST_CHANNELS, 0)
    rows = db.session.execute(
        select(Resident.birth_date, Resident.channels, Resident.phone, Resident.line_user_id,
               Resident.line_blocked)
        .where(Resident.created_at < _midnight(tenant, next_month(month))))
    for birth_date, order, phone, line_user_id, blocked in rows:
        bands[age_band(birth_date, last_day)] += 1
        first = first_working(tenant, order or [], phone, line_user_id, blocked)
        channels[first[0] if first else "none"] += 1
    return bands, channels


def monthly(tenant: Tenant, month: date) -> MonthlyStats:
    """The figures of one month of the bound tenant (any day of the month names it)."""
    month = first_of_month(month)
    bands, channels = _residents(tenant, month)
    return MonthlyStats(month=month, days=_days(tenant, month),
                        median_answer_minutes=_median_answer_minutes(tenant, month),
                        incidents=_incidents(tenant, month), age_bands=bands,
                        first_channels=channels)
