"""The Redis token bucket that paces every worker's sends per tenant and provider."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from redis import Redis

from worker.ratelimit import DEFAULT_LIMITS, TokenBucket, bucket_for, retry_after_seconds


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def key(redis: Redis) -> Iterator[str]:
    name = f"test:ratelimit:{uuid.uuid4().hex}"
    yield name
    redis.delete(name)


def test_two_workers_sharing_a_bucket_are_spread_over_the_rate(redis, key):
    """Two workers take 400 tokens at 200/s: are they told to wait so the sends span ~2 s, not burst?"""
    reservations: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        bucket = TokenBucket(redis, key, rate_per_second=200, burst=1)
        for _ in range(200):
            wait = bucket.acquire()
            with lock:
                reservations.append(time.monotonic() + wait)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    reservations.sort()
    assert len(reservations) == 400
    assert reservations[-1] - reservations[0] >= 1.9
    # No second of reserved send times may hold more than the rate plus the burst; the slack is
    # for the moments between Redis reading its clock and this thread reading its own.
    for i, start in enumerate(reservations):
        in_window = sum(1 for r in reservations[i:] if r < start + 1.0)
        assert in_window <= 200 + 1 + 10


def test_burst_is_free_then_the_rate_applies(redis, key):
    """With a burst of 5 at 1/s, do five sends go at once and the next ones wait a second apart?"""
    bucket = TokenBucket(redis, key, rate_per_second=1, burst=5)
    waits = [bucket.acquire() for _ in range(7)]

    assert waits[:5] == [0, 0, 0, 0, 0]
    assert waits[5] == pytest.approx(1.0, abs=0.05)
    assert waits[6] == pytest.approx(2.0, abs=0.05)


def test_an_idle_bucket_saves_up_no_more_than_its_burst(redis, key):
    """After a quiet spell, is the next burst still capped, so a long pause cannot flood LINE?"""
    bucket = TokenBucket(redis, key, rate_per_second=100, burst=5)
    assert bucket.acquire(5) == 0
    time.sleep(0.2)  # worth 20 tokens at this rate, of which the bucket may keep 5

    assert bucket.acquire(6) == pytest.approx(0.01, abs=0.001)


def test_a_batch_reserves_all_its_tokens_at_once(redis, key):
    """Does taking 50 tokens for one batch make the next caller wait for all of them?"""
    bucket = TokenBucket(redis, key, rate_per_second=10, burst=10)
    assert bucket.acquire(10) == 0
    assert bucket.acquire(50) == pytest.approx(5.0, abs=0.05)
    assert bucket.acquire(1) == pytest.approx(5.1, abs=0.05)


def test_tenants_do_not_share_a_bucket(redis):
    """Does one tenant's big round leave another tenant's calls unthrottled?"""
    tenant_a, tenant_b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    busy = bucket_for(redis, tenant_a, "twilio_calls")
    quiet = bucket_for(redis, tenant_b, "twilio_calls")
    try:
        assert busy.acquire() == 0
        # the second call waits its turn at the account's pace (calls per second, with headroom)
        pace = 1 / DEFAULT_LIMITS["twilio_calls"].rate_per_second
        assert pace >= 1.0 and busy.acquire() == pytest.approx(pace, abs=0.05)
        assert quiet.acquire() == 0
    finally:
        redis.delete(busy.key, quiet.key)


def test_retry_after_is_read_in_seconds_or_as_a_date():
    """Are both forms of Retry-After understood, and a garbled one ignored?"""
    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
