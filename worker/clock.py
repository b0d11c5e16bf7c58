"""The clock: one `tick` plans, reminds, escalates and reconciles every tenant as of `now`."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import RedisError
from sqlalchemy import bindparam, func, or_, select, update

from mimamori import logging as logs
from mimamori import metrics
from mimamori.extensions import db
from tenants.batching import chunks
from tenants.models import Check, Delivery, Tenant
from tenants.services import checks, deliveries, digests, earthquakes, incidents
from tenants.tenancy import all_tenants, bind_tenant
from tenants.types import utcnow
from worker import dispatch
from worker.queues import enqueue

log = logging.getLogger(__name__)

# A delivery on a queue this long without being sent is taken to be lost (Redis restart,
# killed worker) and queued again; claims in the database keep it from being sent twice.
STALE_AFTER = timedelta(minutes=2)
# What one send job takes on; see `enqueue_batches`.
JOB_RECIPIENTS = 2000
JOB_BATCHES = 200
PACED_JOB_SECONDS = 60


@dataclass
class TickReport:
    tenants: int = 0
    checks_created: int = 0
    checks_failed: int = 0
    reminders: int = 0
    missed: int = 0
    steps_deliveries: int = 0
    digests: int = 0
    earthquake_rounds: int = 0
    enqueued: int = 0

    def add(self, other: TickReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def enqueue_due(tenant: Tenant, now: datetime) -> int:
    """Queue every delivery that should be on a queue now and may not be: retries whose wait is
    over, voice calls whose quiet hours ended, rows written outside the planner, and any a lost
    job (Redis restart, killed worker) left behind."""
    due = deliveries.due_for_dispatch(now, STALE_AFTER)
    interrupted = [d.id for d in due if d.status == "sending"]
    for part in chunks(interrupted):
        db.session.execute(update(Delivery).where(Delivery.id.in_(part),
                                                  Delivery.status == "sending")
                           .values(status="retry", error=dispatch.INTERRUPTED)
                           .execution_options(synchronize_session=False))
    return queue_deliveries(tenant.id, [d.id for d in due], now)


def queue_deliveries(tenant_id: int, ids: list[int], now: datetime) -> int:
    """Put these deliveries on the queue, one job per batch; rows without a batch get one.

    Rows held until later (a call in quiet hours, a retry's wait) stay off the queue: the clock
    queues them when their time comes (`enqueue_due`)."""
    rows = [dict(row._mapping) for part in chunks(ids) for row in db.session.execute(
        select(Delivery.id, Delivery.channel, Delivery.body, Delivery.purpose,
               Delivery.incident_id, Delivery.recipient_type, Delivery.retry_key)
        .where(Delivery.id.in_(part), or_(Delivery.not_before.is_(None), Delivery.not_before <= now)))]
    if not rows:
        return 0
    ids = [row["id"] for row in rows]
    unkeyed = [row for row in rows if not row["retry_key"]]
    keys = deliveries.assign_batches(rows)
    if unkeyed:
        table = Delivery.__table__
        db.session.execute(
            update(table).where(table.c.tenant_id == tenant_id, table.c.id == bindparam("row_id"))
            .values(retry_key=bindparam("key")),
            [{"row_id": row["id"], "key": row["retry_key"]} for row in unkeyed])
    for part in chunks(ids):
        db.session.execute(update(Delivery).where(Delivery.id.in_(part)).values(enqueued_at=now)
                           .execution_options(synchronize_session=False))
    db.session.commit()  # batch keys are stored before any job can send
    enqueue_batches(tenant_id, keys)
    return len(ids)


def enqueue_batches(tenant_id: int, keys: list[str]) -> None:
    """Put batches on the queue, several to a job, which sends them side by side: SMS and call
    batches first (up to PACED_JOB_SECONDS of their providers' pace, so one job and one worker
    wait it out), then LINE batches (up to JOB_RECIPIENTS people or JOB_BATCHES requests)."""
    from worker.ratelimit import DEFAULT_LIMITS, twilio_calls

    if not keys:
        return
    with bind_tenant(tenant_id):
        sizes = {key: (channel, count) for part in chunks(keys) for key, channel, count in
                 db.session.execute(select(Delivery.retry_key, Delivery.channel, func.count())
                                    .where(Delivery.retry_key.in_(part))
                                    .group_by(Delivery.retry_key, Delivery.channel))}
        calls = twilio_calls(max(1, db.session.get(Tenant, tenant_id).twilio_calls_per_second))
    pace = {"sms": 1 / DEFAULT_LIMITS["twilio_messages"].rate_per_second,
            "voice": 1 / calls.rate_per_second}
    paced: list[list[str]] = [[]]
    waits: dict[str, float] = defaultdict(float)
    line: list[list[str]] = [[]]
    recipients = 0
    for key in keys:
        if key not in sizes:
            continue  # nothing to send
        channel, count = sizes[key]
        if channel in pace:
            if paced[-1] and waits[channel] + count * pace[channel] > PACED_JOB_SECONDS:
                paced.append([])
                waits.clear()
            paced[-1].append(key)
            waits[channel] += count * pace[channel]
            continue
        if line[-1] and (recipients + count > JOB_RECIPIENTS or len(line[-1]) >= JOB_BATCHES):
            line.append([])
            recipients = 0
        line[-1].append(key)
        recipients += count
    for job in [*paced, *line]:
        if job:
            enqueue("worker.jobs.send_batches", tenant_id, job)


def enqueue_or_leave_to_clock(tenant_id: int, keys: list[str], what: str) -> None:
    """Queue batches just committed by a request (a round, a broadcast); with Redis down they
    wait in the database, where the next tick finds them (`enqueue_due`): nothing is lost."""
    try:
        enqueue_batches(tenant_id, keys)
    except RedisError:
        log.warning("%s: queue unavailable, the clock will send it", what)


def tick_tenant(tenant: Tenant, now: datetime) -> TickReport:
    """One pass for the bound tenant; each stage commits, so a crash loses nothing."""
    report = TickReport(tenants=1)
    for planned in checks.plan_checks(tenant, now):
        report.checks_created += planned.checks
        report.checks_failed += len(planned.failed_check_ids)
        incidents.open_incidents(list(db.session.scalars(
            select(Check).where(Check.id.in_(planned.failed_check_ids)))), now)
        db.session.commit()  # each part's checks, deliveries and incidents, before any job
        enqueue_batches(tenant.id, planned.batch_keys)
        report.enqueued += len(planned.batch_keys)
    report.reminders = len(checks.send_reminders(tenant, now))
    db.session.commit()
    missed = checks.close_windows(now)
    incidents.open_incidents(missed, now)
    report.missed = len(missed)
    db.session.commit()
    report.steps_deliveries, step_batches = incidents.fire_due_steps(tenant, now)
    db.session.commit()
    enqueue_batches(tenant.id, step_batches)
    report.enqueued += len(step_batches)
    report.digests = len(digests.send_due(tenant, now))
    db.session.commit()
    quakes = earthquakes.fire_due(tenant, now)
    report.earthquake_rounds = len(quakes.round_ids)
    db.session.commit()
    enqueue_batches(tenant.id, quakes.batch_keys)
    report.enqueued += enqueue_due(tenant, now)
    metrics.tick_report(tenant.slug, report)
    return report


def tick(now: datetime | None = None) -> TickReport:
    """Run one pass for every active tenant as of `now` (default: the current instant)."""
    now = now or utcnow()
    with all_tenants():
        tenant_ids = db.session.scalars(select(Tenant.id).where(Tenant.active.is_(True))
                                        .order_by(Tenant.id)).all()
    report = TickReport()
    for tenant_id in tenant_ids:
        with bind_tenant(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            try:
                with logs.bound(tenant=tenant.slug):
                    report.add(tick_tenant(tenant, now))
            except Exception:
                # One tenant's failure (say, Redis briefly down) must not stop the others;
                # everything is re-derived from the database on the next tick.
                db.session.rollback()
                log.exception("tick failed for tenant %s", tenant_id)
    return report


def run_forever(interval_seconds: int = 60, stop: threading.Event | None = None) -> None:
    """Tick at the start of every minute until `stop` is set; a tick under way finishes first."""
    stop = stop or threading.Event()
    while not stop.is_set():
        started = time.time()
        report = tick()
        metrics.tick_finished(time.time() - started)
        log.info("tick %s", report)
        db.session.remove()
        stop.wait(max(1.0, interval_seconds - (time.time() - started) % interval_seconds))
