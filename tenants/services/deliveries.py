"""Deliveries: choosing a working channel, writing each attempt, recording what providers said."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, case, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mimamori.extensions import db
from tenants.batching import chunks
from tenants.models import Delivery, Resident, Tenant
from tenants.models.residents import CHANNELS
from tenants.tenancy import bound_tenant_id

PENDING = ("queued", "retry")
# A send job is stopped at its timeout (worker.queues.JOB_TIMEOUT, 10 minutes) after claiming
# its deliveries; a delivery still `sending` after this long was left by a job that died.
ABANDONED_AFTER = timedelta(minutes=12)
# How far each status is along; a late callback never moves a delivery backwards.
STATUS_RANK = {"queued": 0, "retry": 1, "sending": 2, "sent": 3, "delivered": 4, "read": 5,
               "answered": 6, "blocked": 6, "failed": 6, "busy": 6, "no_answer": 6, "canceled": 7}
FINAL = {"delivered", "read", "answered", "blocked", "failed", "busy", "no_answer", "canceled"}


def insert_ignoring_duplicates(model: Any) -> Insert:
    """An INSERT that skips rows whose unique key exists (the engine's idempotency)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


def channel_address(channel: str, phone: str | None, line_user_id: str | None,
                    line_blocked: bool = False) -> str | None:
    if channel == "line":
        return None if line_blocked else line_user_id
    return phone


def tenant_supports(tenant: Tenant, channel: str) -> bool:
    """Sandbox tenants simulate every channel; others need that provider's credentials."""
    if tenant.is_sandbox:
        return True
    return tenant.line_configured if channel == "line" else tenant.twilio_configured


def first_working(tenant: Tenant, channels: Sequence[str], phone: str | None,
                  line_user_id: str | None, line_blocked: bool = False,
                  skip: Iterable[str] = ()) -> tuple[str, str] | None:
    """The first channel of a person's order that can reach them now, with its address."""
    skipped = set(skip)
    for channel in channels:
        if channel in skipped or not tenant_supports(tenant, channel):
            continue
        address = channel_address(channel, phone, line_user_id, line_blocked)
        if address:
            return channel, address
    return None


def first_working_sql(tenant: Tenant) -> ColumnElement[str]:
    """`first_working` for a resident as a SQL expression (NULL when no channel works), so a
    morning's checks are planned inside the database instead of row by row in Python."""
    usable = {"line": and_(Resident.line_user_id.is_not(None), Resident.line_user_id != "",
                           Resident.line_blocked.is_(False)),
              "sms": and_(Resident.phone.is_not(None), Resident.phone != "")}
    usable["voice"] = usable["sms"]
    supported = [c for c in CHANNELS if tenant_supports(tenant, c)]
    if not supported:
        return null()
    # A resident's order names each channel at most once, so three positions cover it.
    whens = []
    for position in range(len(CHANNELS)):
        channel = Resident.channels[position].as_string()
        whens.append((or_(*(and_(channel == c, usable[c]) for c in supported)), channel))
    return case(*whens, else_=null())


def preferred(tenant: Tenant, wanted: str | None, channels: Sequence[str], phone: str | None,
              line_user_id: str | None, line_blocked: bool = False) -> tuple[str, str] | None:
    """An alert step's channel when the person can be reached that way, else their own order."""
    if wanted and tenant_supports(tenant, wanted):
        address = channel_address(wanted, phone, line_user_id, line_blocked)
        if address:
            return wanted, address
    return first_working(tenant, channels, phone, line_user_id, line_blocked)


def _local(tenant: Tenant, at: datetime) -> datetime:
    return at.astimezone(tenant.zone)


def quiet_hours_end(tenant: Tenant, at: datetime) -> datetime | None:
    """When quiet hours end if `at` falls inside them (voice calls wait), else None."""
    local = _local(tenant, at)
    start, end, clock = tenant.quiet_hours_start, tenant.quiet_hours_end, local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tenant.zone)


def delivery_row(*, key: str, purpose: str, recipient_type: str, recipient_id: int | None,
                 channel: str, address: str, body: str, now: datetime, tenant: Tenant,
                 check_id: int | None = None, incident_id: int | None = None,
                 round_id: int | None = None, broadcast_id: int | None = None,
                 digest_id: int | None = None) -> dict[str, Any]:
    """A delivery to insert; voice calls inside quiet hours wait for them to end."""
    not_before = quiet_hours_end(tenant, now) if channel == "voice" else None
    return {"tenant_id": tenant.id, "idempotency_key": key, "purpose": purpose,
            "recipient_type": recipient_type, "recipient_id": recipient_id, "channel": channel,
            "address": address, "body": body, "status": "queued", "check_id": check_id,
            "incident_id": incident_id, "round_id": round_id, "broadcast_id": broadcast_id,
            "digest_id": digest_id, "attempts": 0,
            "not_before": not_before, "created_at": now, "updated_at": now}


def insert_deliveries(rows: list[dict[str, Any]]) -> list[int]:
    """Insert deliveries, skipping any already written for the same key; ids of the new ones."""
    if not rows:
        return []
    statement = insert_ignoring_duplicates(Delivery).returning(Delivery.id)
    return [i for part in chunks(rows) for i in db.session.scalars(statement, part)]


LINE_BATCH = 500  # LINE multicast takes at most 500 user ids
OTHER_BATCH = 50  # Twilio takes one request per recipient; a job sends this many


def assign_batches(rows: list[dict[str, Any]]) -> list[str]:
    """Give rows without one a batch key: the job that sends them, and for LINE the
    X-Line-Retry-Key of their one multicast, stored before any request is made."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    keys: set[str] = set()
    for row in rows:
        if row.get("retry_key"):
            keys.add(row["retry_key"])
        elif row["channel"] == "line":
            groups.setdefault(("line", row["body"], row["purpose"], row.get("incident_id"),
                               row.get("recipient_type")), []).append(row)
        else:
            groups.setdefault((row["channel"],), []).append(row)
    for group_key, members in groups.items():
        size = LINE_BATCH if group_key[0] == "line" else OTHER_BATCH
        for part in chunks(members, size):
            key = str(uuid.uuid4())
            keys.add(key)
            for row in part:
                row["retry_key"] = key
    return sorted(keys)


def insert_many_deliveries(rows: list[dict[str, Any]], now: datetime) -> list[str]:
    """A morning's worth of deliveries, batched and marked queued-now as they are written, in
    pipelined executemany without RETURNING (several times faster than row ids back).

    Returns the batch keys to put on the queue once committed; calls held for quiet hours are
    left for the clock."""
    ready = [row for row in rows if not row.get("not_before") or row["not_before"] <= now]
    keys = assign_batches(ready)
    for row in ready:
        row["enqueued_at"] = now
    for part in chunks(rows):
        db.session.execute(insert_ignoring_duplicates(Delivery), part)
    return keys


def cancel_pending(*, check_id: int | None = None, incident_id: int | None = None,
                   now: datetime) -> int:
    """Stop everything not yet sent for a check or incident (an answer or acknowledgement came)."""
    condition = Delivery.check_id == check_id if check_id is not None else (
        Delivery.incident_id == incident_id)
    result = db.session.execute(
        update(Delivery).where(condition, Delivery.status.in_(PENDING))
        .values(status="canceled", updated_at=now).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def advance_status(delivery: Delivery, status: str, now: datetime, error: str | None = None) -> bool:
    """Move a delivery forward only; returns whether anything changed."""
    if STATUS_RANK.get(status, 0) <= STATUS_RANK.get(delivery.status, 0):
        return False
    delivery.status = status
    delivery.updated_at = now
    if error:
        delivery.error = error[:300]
    return True


def due_for_dispatch(now: datetime, stale_after: timedelta,
                     abandoned_after: timedelta = ABANDONED_AFTER) -> list[Delivery]:
    """Deliveries that should be on a queue but may not be (Redis lost them, a worker died).

    A row still `sending` is taken from its job only once that job cannot be alive any more:
    taken from a live job, it would be sent twice. The claim's `attempted_at` is the worker's
    clock and `enqueued_at` the clock's own `now`: both must be that old, so that a tick run
    ahead of the workers' time (`tick --at`, a scheduler whose clock runs fast) never takes a
    batch from the job sending it."""
    tenant_id = bound_tenant_id()
    stale = now - stale_after
    gone = now - abandoned_after
    queued_long_ago = (Delivery.enqueued_at.is_(None)) | (Delivery.enqueued_at <= stale)
    abandoned = case((Delivery.attempted_at.is_(None), queued_long_ago),
                     else_=and_(Delivery.attempted_at <= gone,
                                (Delivery.enqueued_at.is_(None)) | (Delivery.enqueued_at <= gone)))
    return list(db.session.scalars(
        select(Delivery).where(
            Delivery.tenant_id == tenant_id,
            (Delivery.not_before.is_(None)) | (Delivery.not_before <= now),
            or_(and_(Delivery.status.in_(PENDING), queued_long_ago),
                and_(Delivery.status == "sending", abandoned)),
        ).order_by(Delivery.id)
    ))
