"""The queues and workers as Redis holds them now, for the operator console's health page."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from worker.queues import QUEUE_NAMES, redis_connection

# A worker's heartbeat is renewed well within its TTL; one older than that and a margin is lost.
HEARTBEAT_GRACE = timedelta(seconds=60)


@dataclass
class QueueStatus:
    name: str
    depth: int  # jobs waiting
    oldest_enqueued_at: datetime | None  # when the job at the head of the queue was put there
    started: int
    scheduled: int  # retries waiting for their time
    failed: int

    def oldest_age(self, now: datetime) -> timedelta | None:
        return None if self.oldest_enqueued_at is None else max(now - self.oldest_enqueued_at,
                                                                timedelta(0))


@dataclass
class WorkerStatus:
    name: str
    state: str
    queues: list[str]
    last_heartbeat: datetime | None
    successful_jobs: int
    failed_jobs: int
    stale: bool  # no heartbeat within its TTL: the process is gone or stuck


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def queue_status() -> list[QueueStatus]:
    connection = redis_connection()
    statuses = []
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=connection)
        oldest = None
        # The head job may be taken (and finished) by a worker between the two reads.
        for job_id in queue.get_job_ids(0, 1):
            with suppress(NoSuchJobError):
                oldest = _aware(Job.fetch(job_id, connection=connection).enqueued_at)
        statuses.append(QueueStatus(name, queue.count, oldest, queue.started_job_registry.count,
                                    queue.scheduled_job_registry.count,
                                    queue.failed_job_registry.count))
    return statuses


def worker_status(now: datetime) -> list[WorkerStatus]:
    statuses = []
    for worker in Worker.all(connection=redis_connection()):
        heartbeat = _aware(worker.last_heartbeat)
        stale = heartbeat is None or now - heartbeat > timedelta(seconds=worker.worker_ttl) + HEARTBEAT_GRACE
        state = worker.get_state()
        statuses.append(WorkerStatus(worker.name, getattr(state, "value", str(state)),
                                     worker.queue_names(),
                                     heartbeat, worker.successful_job_count,
                                     worker.failed_job_count, stale))
    return sorted(statuses, key=lambda w: w.name)
