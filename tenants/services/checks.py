"""Checks (安否確認): planning them from schedules, reminders, closing windows, answers.

Every function takes `now` and works on the bound tenant. Writes are idempotent claims: a unique
key (resident, occurrence) for new checks and compare-and-set UPDATEs for every later step, so
two clocks or two workers running at once never do anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select, update

from mimamori import metrics
from mimamori.extensions import db
from tenants import messages
from tenants.batching import chunks
from tenants.models import Check, CheckPolicy, Delivery, Resident, ResidentPause, Tenant
from tenants.schedules import latest_due
from tenants.services import deliveries
from tenants.services.deliveries import delivery_row, first_working, insert_ignoring_duplicates


@dataclass
class Planned:
    """What a pass created: checks, failed checks, and the batch keys to queue once committed."""

    checks: int = 0
    failed_check_ids: list[int] = field(default_factory=list)
    batch_keys: list[str] = field(default_factory=list)


def occurrence_key(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%MZ")


def _deadlines(scheduled: datetime, now: datetime, window: int,
               reminder: int | None) -> tuple[datetime, datetime | None]:
    """Window end and reminder time counted from the scheduled instant — or from now when the
    window had already passed before the check could go out (the platform was down), so nobody
    is reported missing for our own outage."""
    base = scheduled if now < scheduled + timedelta(minutes=window) else now
    reminder_at = base + timedelta(minutes=reminder) if reminder else None
    return base + timedelta(minutes=window), reminder_at


def _check_message(tenant: Tenant, channel: str) -> str:
    if channel == "line":
        return messages.check_text(tenant.name)
    return messages.check_sms(tenant.name) if channel == "sms" else messages.check_voice(tenant.name)


def send_first_deliveries(tenant: Tenant, check_ids: list[int], now: datetime,
                          texts: dict[str, str] | None = None, purpose: str = "check") -> Planned:
    """One delivery per new check on the resident's first working channel; none works: failed."""
    planned = Planned()
    for part in chunks(check_ids):
        done = _first_deliveries(tenant, list(part), now, texts, purpose)
        planned.batch_keys += done.batch_keys
        planned.failed_check_ids += done.failed_check_ids
    return planned


def _first_deliveries(tenant: Tenant, check_ids: list[int], now: datetime,
                      texts: dict[str, str] | None, purpose: str) -> Planned:
    planned = Planned()
    rows, chosen = [], []
    found = db.session.execute(
        select(Check.id, Check.round_id, Resident.id, Resident.channels, Resident.phone,
               Resident.line_user_id, Resident.line_blocked)
        .join(Resident, Resident.id == Check.resident_id).where(Check.id.in_(check_ids))
    ).all()
    for check_id, round_id, resident_id, channels, phone, line_id, blocked in found:
        choice = first_working(tenant, channels, phone, line_id, blocked)
        if choice is None:
            planned.failed_check_ids.append(check_id)
            continue
        channel, address = choice
        body = (texts or {}).get(channel) or _check_message(tenant, channel)
        rows.append(delivery_row(key=f"check:{check_id}:{channel}", purpose=purpose,
                                 recipient_type="resident", recipient_id=resident_id,
                                 channel=channel, address=address, body=body, now=now,
                                 tenant=tenant, check_id=check_id, round_id=round_id))
        chosen.append((channel, check_id))
    for channel in {c for c, _ in chosen}:  # one UPDATE per channel, not one per check
        db.session.execute(update(Check).where(Check.id.in_([i for c, i in chosen if c == channel]))
                           .values(channel=channel).execution_options(synchronize_session=False))
    planned.batch_keys = deliveries.insert_many_deliveries(rows, now)
    if planned.failed_check_ids:
        db.session.execute(update(Check).where(Check.id.in_(planned.failed_check_ids))
                           .values(status="failed"))
    return planned


def plan_checks(tenant: Tenant, now: datetime) -> Planned:
    """Create the check due now for every resident of every policy, once per occurrence."""
    planned = Planned()
    for policy in db.session.scalars(select(CheckPolicy).order_by(CheckPolicy.id)):
        due = latest_due(policy.rrule, policy.starts_on, tenant.zone, now)
        if due is None:
            continue
        window_end, reminder_at = _deadlines(due, now, policy.response_window_minutes,
                                             policy.reminder_after_minutes)
        local_day = due.astimezone(tenant.zone).date()
        paused = exists().where(ResidentPause.resident_id == Resident.id,
                                ResidentPause.starts_on <= local_day,
                                ResidentPause.until > local_day)
        key = occurrence_key(due)
        candidates = select(
            Resident.tenant_id, Resident.id, db.literal(policy.id), db.literal(key),
            db.literal(due, Check.scheduled_at.type), db.literal("sent"),
            db.literal(window_end, Check.window_ends_at.type),
            db.literal(reminder_at, Check.reminder_due_at.type),
            db.literal(now, Check.created_at.type),
        ).where(and_(Resident.check_policy_id == policy.id, Resident.policy_assigned_at <= due,
                     ~paused))
        statement = insert_ignoring_duplicates(Check).from_select(
            ["tenant_id", "resident_id", "policy_id", "occurrence", "scheduled_at", "status",
             "window_ends_at", "reminder_due_at", "created_at"], candidates,
        ).returning(Check.id)
        new_ids = list(db.session.scalars(statement))
        planned.checks += len(new_ids)
        first = send_first_deliveries(tenant, new_ids, now)
        planned.batch_keys += first.batch_keys
        planned.failed_check_ids += first.failed_check_ids
    return planned


def send_reminders(tenant: Tenant, now: datetime) -> list[int]:
    """A reminder (再送), once, on the channel the check went out on, if still unanswered."""
    claimed = db.session.execute(
        update(Check).where(Check.status == "sent", Check.reminder_due_at <= now,
                            Check.reminder_sent_at.is_(None), Check.window_ends_at > now)
        .values(reminder_sent_at=now).returning(Check.id, Check.resident_id, Check.channel,
                                                Check.round_id)
        .execution_options(synchronize_session=False)
    ).all()
    rows = []
    for check_id, resident_id, channel, round_id in claimed:
        resident = db.session.get(Resident, resident_id)
        address = resident and deliveries.channel_address(
            channel, resident.phone, resident.line_user_id, resident.line_blocked)
        if not address:
            continue
        rows.append(delivery_row(key=f"reminder:{check_id}", purpose="reminder",
                                 recipient_type="resident", recipient_id=resident_id,
                                 channel=channel, address=address,
                                 body=messages.reminder_text(tenant.name, channel), now=now,
                                 tenant=tenant, check_id=check_id, round_id=round_id))
    return deliveries.insert_deliveries(rows)


def close_windows(now: datetime) -> list[Check]:
    """Unanswered checks whose window has ended become `missed` (the caller opens incidents)."""
    ids = db.session.scalars(
        update(Check).where(Check.status == "sent", Check.window_ends_at <= now)
        .values(status="missed").returning(Check.id)
        .execution_options(synchronize_session=False)
    ).all()
    for part in chunks(ids):
        # A check message or reminder still waiting (a held call, a retry) is now too late;
        # the alert chain takes over.
        db.session.execute(
            update(Delivery).where(Delivery.check_id.in_(part),
                                   Delivery.purpose.in_(("check", "reminder", "round")),
                                   Delivery.status.in_(deliveries.PENDING))
            .values(status="canceled", updated_at=now).execution_options(synchronize_session=False))
    return [check for part in chunks(ids)
            for check in db.session.scalars(select(Check).where(Check.id.in_(part)))]


def answer(check: Check, via: str, at: datetime) -> bool:
    """The resident answered: stop everything pending; resolve an open incident as safe.

    Returns False when the check was already answered (a redelivered or repeated answer).
    """
    from tenants.services import incidents

    claimed = db.session.execute(
        update(Check).where(Check.id == check.id, Check.answered_at.is_(None))
        .values(status="answered", answered_at=at, answered_via=via)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return False
    metrics.CHECKS_ANSWERED.labels(db.session.get(Tenant, check.tenant_id).slug, via).inc()
    db.session.refresh(check)
    deliveries.cancel_pending(check_id=check.id, now=at)
    incidents.resolve_by_answer(check, via, at)
    return True


def open_check_for(resident_id: int) -> Check | None:
    """The resident's latest unanswered check (a reply answers this one)."""
    return db.session.scalar(
        select(Check).where(Check.resident_id == resident_id, Check.answered_at.is_(None),
                            Check.status.in_(("sent", "missed", "failed")))
        .order_by(Check.scheduled_at.desc(), Check.id.desc()).limit(1)
    )


def check_by_occurrence(resident_id: int, occurrence: str) -> Check | None:
    return db.session.scalar(select(Check).where(Check.resident_id == resident_id,
                                                 Check.occurrence == occurrence))
