"""Checks (安否確認): planning them from schedules, reminders, closing windows, answers.

Every function takes `now` and works on the bound tenant. Writes are idempotent claims: a unique
key (resident, occurrence) for new checks and compare-and-set UPDATEs for every later step, so
two clocks or two workers running at once never do anything twice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import String, and_, case, cast, exists, null, select, true, update

from mimamori import metrics
from mimamori.extensions import db
from tenants import messages
from tenants.batching import chunks
from tenants.models import Check, CheckPolicy, Delivery, Incident, Resident, ResidentPause, Tenant
from tenants.schedules import latest_due
from tenants.services import deliveries
from tenants.services.deliveries import delivery_row, insert_ignoring_duplicates
from tenants.tenancy import bound_tenant_id


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
    """One delivery per new check on the resident's first working channel; none works: failed.

    The channel is normally chosen as the checks are written; any check written without one
    gets it here."""
    planned = Planned()
    for part in chunks(check_ids):
        db.session.execute(
            update(Check).where(Check.id.in_(part), Check.channel.is_(None))
            .values(channel=select(deliveries.first_working_sql(tenant))
                    .where(Resident.id == Check.resident_id).scalar_subquery())
            .execution_options(synchronize_session=False))
        chosen = db.session.execute(select(Check.id, Check.channel).where(Check.id.in_(part))).all()
        done = _first_deliveries(tenant, chosen, now, texts, purpose)
        planned.batch_keys += done.batch_keys
        planned.failed_check_ids += done.failed_check_ids
    return planned


def _first_deliveries(tenant: Tenant, chosen: Sequence[tuple[int, str | None]], now: datetime,
                      texts: dict[str, str] | None, purpose: str) -> Planned:
    """The deliveries of checks whose channel is chosen, written by one INSERT ... SELECT with
    their batch keys, and queued-now marks; calls held for quiet hours are left for the clock."""
    planned = Planned(failed_check_ids=sorted(i for i, channel in chosen if channel is None))
    if planned.failed_check_ids:
        db.session.execute(update(Check).where(Check.id.in_(planned.failed_check_ids))
                           .values(status="failed").execution_options(synchronize_session=False))
    by_channel: dict[str, list[int]] = defaultdict(list)
    for check_id, channel in chosen:
        if channel is not None:
            by_channel[channel].append(check_id)
    if not by_channel:
        return planned
    held_until = deliveries.quiet_hours_end(tenant, now)
    keys = []
    # Provider-paced channels first: their batches start while LINE's are still being written.
    for channel in ("voice", "sms", "line"):
        ids = sorted(by_channel.get(channel, ()))
        if not ids or (channel == "voice" and held_until):
            continue
        size = deliveries.LINE_BATCH if channel == "line" else deliveries.OTHER_BATCH
        for part in chunks(ids, size):
            key = str(uuid.uuid4())
            planned.batch_keys.append(key)
            keys.append((and_(Check.channel == channel, Check.id.between(part[0], part[-1])), key))
    text = {c: (texts or {}).get(c) or _check_message(tenant, c) for c in by_channel}
    when = db.literal(now, Delivery.created_at.type)
    columns = {
        "tenant_id": Check.tenant_id,
        "idempotency_key": db.literal("check:") + cast(Check.id, String) + ":" + Check.channel,
        "purpose": db.literal(purpose), "recipient_type": db.literal("resident"),
        "recipient_id": Resident.id, "channel": Check.channel,
        "address": case((Check.channel == "line", Resident.line_user_id), else_=Resident.phone),
        "body": case(*((Check.channel == c, t) for c, t in text.items())),
        "status": db.literal("queued"), "check_id": Check.id, "round_id": Check.round_id,
        "attempts": db.literal(0),
        "not_before": (case((Check.channel == "voice", db.literal(held_until, Delivery.not_before.type)))
                       if held_until else null()),
        "enqueued_at": case((Check.channel != "voice", when)) if held_until else when,
        "retry_key": case(*keys) if keys else null(),
        "created_at": when, "updated_at": when,
    }
    ids = [i for channel_ids in by_channel.values() for i in channel_ids]
    # The id range lets PostgreSQL read just this part's checks by their key instead of testing
    # every check of the tenant against the list.
    db.session.execute(insert_ignoring_duplicates(Delivery).from_select(
        list(columns), select(*columns.values()).join(Resident, Resident.id == Check.resident_id)
        .where(Check.tenant_id == tenant.id, Check.id.between(min(ids), max(ids)),
               Check.id.in_(ids))))
    return planned


def plan_checks(tenant: Tenant, now: datetime) -> Iterator[Planned]:
    """Create the check due now for every resident of every policy, once per occurrence, and
    its first delivery, a part at a time.

    The caller commits each part and then queues its batch keys, so the first batches are being
    sent while the rest of a large tenant is still being planned. Residents reached by SMS or
    voice come first: those providers are paced, so their batches should start early.
    """
    channel = deliveries.first_working_sql(tenant)
    for policy in db.session.scalars(select(CheckPolicy).order_by(CheckPolicy.id)).all():
        due = latest_due(policy.rrule, policy.starts_on, tenant.zone, now)
        if due is None:
            continue
        window_end, reminder_at = _deadlines(due, now, policy.response_window_minutes,
                                             policy.reminder_after_minutes)
        local_day = due.astimezone(tenant.zone).date()
        paused = exists().select_from(ResidentPause).where(ResidentPause.resident_id == Resident.id,
                                ResidentPause.starts_on <= local_day,
                                ResidentPause.until > local_day)
        eligible = and_(Resident.tenant_id == tenant.id, Resident.check_policy_id == policy.id,
                        Resident.policy_assigned_at <= due, ~paused)
        candidates = select(
            Resident.tenant_id, Resident.id, db.literal(policy.id), db.literal(occurrence_key(due)),
            db.literal(due, Check.scheduled_at.type), db.literal("sent"), channel,
            db.literal(window_end, Check.window_ends_at.type),
            db.literal(reminder_at, Check.reminder_due_at.type),
            db.literal(now, Check.created_at.type),
        ).where(eligible)
        not_line = channel.is_distinct_from("line")
        paced = db.session.scalars(select(Resident.id).where(eligible, not_line)
                                   .order_by(Resident.id)).all()
        everyone = db.session.scalars(select(Resident.id).where(eligible)
                                      .order_by(Resident.id)).all()
        # Everyone comes again in the second pass: those already planned are skipped by the
        # unique key, and anyone whose channel changed in between is not left out.
        parts = [*((not_line, p) for p in chunks(paced)), *((true(), p) for p in chunks(everyone))]
        for condition, part in parts:
            statement = insert_ignoring_duplicates(Check).from_select(
                ["tenant_id", "resident_id", "policy_id", "occurrence", "scheduled_at", "status",
                 "channel", "window_ends_at", "reminder_due_at", "created_at"],
                candidates.where(condition, Resident.id.between(part[0], part[-1])),
            ).returning(Check.id, Check.channel)
            chosen = db.session.execute(statement).all()
            if not chosen:
                continue
            planned = _first_deliveries(tenant, chosen, now, None, "check")
            planned.checks = len(chosen)
            yield planned


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
    if not answer_many([check.id], via, at):
        return False
    db.session.refresh(check)
    return True


def answer_many(check_ids: Sequence[int], via: str, at: datetime) -> set[int]:
    """`answer` for many checks in a few statements (a webhook full of OK taps); returns those
    not answered before."""
    from tenants.services import incidents

    answered = set(db.session.scalars(
        update(Check).where(Check.id.in_(check_ids), Check.answered_at.is_(None))
        .values(status="answered", answered_at=at, answered_via=via).returning(Check.id)
        .execution_options(synchronize_session=False)))
    if not answered:
        return answered
    metrics.CHECKS_ANSWERED.labels(db.session.get(Tenant, bound_tenant_id()).slug,
                                   via).inc(len(answered))
    db.session.execute(
        update(Delivery).where(Delivery.check_id.in_(answered), Delivery.status.in_(deliveries.PENDING))
        .values(status="canceled", updated_at=at).execution_options(synchronize_session=False))
    for check_id in db.session.scalars(select(Incident.check_id).where(
            Incident.check_id.in_(answered))).all():
        incidents.resolve_by_answer(db.session.get(Check, check_id), via, at)
    return answered


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
