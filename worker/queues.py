"""The app's RQ queue and Redis connection; every job carries a tenant id and row ids, never ORM objects."""

from __future__ import annotations

from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue, Retry

QUEUE_NAMES = ("mimamori",)
JOB_TIMEOUT = 600


def redis_connection() -> Redis:
    url = current_app.config.get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set and no embedded Redis is running")
    cached = current_app.extensions.get("mimamori_redis")
    if cached is None or cached[0] != url:
        cached = (url, Redis.from_url(url))
        current_app.extensions["mimamori_redis"] = cached
    return cached[1]


def queue() -> Queue:
    return Queue(QUEUE_NAMES[0], connection=redis_connection(), default_timeout=JOB_TIMEOUT)


def enqueue(function: str, *args: Any, job_id: str | None = None) -> None:
    """Put a job on the queue; RQ retries a crashed job, the database keeps it from doubling."""
    # The description is what RQ logs for the job: the function only, as arguments may hold text.
    queue().enqueue(function, *args, job_id=job_id, retry=Retry(max=3, interval=[5, 30, 120]),
                    result_ttl=3600, failure_ttl=7 * 24 * 3600, description=function)
