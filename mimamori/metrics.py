"""Prometheus metrics for operators: checks per tenant, deliveries, providers, queues and webhooks.

Under gunicorn (`mimamori serve`) several processes count, so the metrics live in files under
PROMETHEUS_MULTIPROC_DIR and a scrape adds them up (prometheus-client's multiprocess mode; the
gunicorn hooks are in `mimamori.gunicorn_config`). Without it, as in workers, the scheduler and
the tests, each process keeps its own registry. Labels carry tenant slugs, channels and outcomes,
never anything about a person.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from redis import Redis

    from worker.channels import Batch, ChannelAdapter, ChannelCredentials, SendResult

log = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Metrics without labels get their file at definition, below; the directory must exist.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

DEFAULT_METRICS_PORT = 9100
# Seconds without a finished tick after which the scheduler's /healthz answers 503.
TICK_STALE_AFTER = 600.0
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WEBHOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# Twilio's message and call statuses; anything else is counted as "other".
REPORT_STATUSES = frozenset({
    "queued", "accepted", "sending", "sent", "delivered", "undelivered", "failed", "read",
    "receiving", "received", "canceled", "initiated", "ringing", "in-progress", "completed",
    "busy", "no-answer",
})

CHECKS_PLANNED = Counter("mimamori_checks_planned_total",
                         "Checks (安否確認) created: by the clock (kind=scheduled) or a round (kind=round).",
                         ["tenant", "kind"])
CHECKS_SENT = Counter("mimamori_checks_sent_total",
                      "Check and round messages a provider accepted.", ["tenant"])
CHECKS_ANSWERED = Counter("mimamori_checks_answered_total",
                          "Checks a resident answered, by how (line, sms, voice, staff).",
                          ["tenant", "via"])
CHECKS_MISSED = Counter("mimamori_checks_missed_total",
                        "Checks whose response window ended unanswered (an incident opened).",
                        ["tenant"])
CHECKS_FAILED = Counter("mimamori_checks_failed_total",
                        "Checks no channel could deliver (an incident opened at once).", ["tenant"])
DELIVERIES = Counter("mimamori_deliveries_total",
                     "Delivery attempts by channel and the provider's answer "
                     "(sent, retry, blocked, failed).", ["tenant", "channel", "outcome"])
DELIVERY_REPORTS = Counter("mimamori_delivery_reports_total",
                           "Twilio status callbacks by channel and reported status.",
                           ["tenant", "channel", "status"])
PROVIDER_SECONDS = Histogram("mimamori_provider_request_seconds",
                             "Duration of one send call to a provider (a LINE multicast, an SMS, a call).",
                             ["provider"], buckets=PROVIDER_BUCKETS)
PROVIDER_ERRORS = Counter("mimamori_provider_errors_total",
                          "Provider errors: retry (5xx, 429, timeout), failed (refused), "
                          "exception (the adapter raised).", ["provider", "kind"])
WEBHOOK_SECONDS = Histogram("mimamori_webhook_seconds", "Time to answer a LINE or Twilio webhook.",
                            ["webhook"], buckets=WEBHOOK_BUCKETS)
WEBHOOK_REQUESTS = Counter("mimamori_webhook_requests_total", "Webhook requests by HTTP status.",
                           ["webhook", "status"])
LINE_LINKS = Counter("mimamori_line_link_codes_total",
                     "Link codes sent over LINE, by result: linked, link_code_wrong, link_locked "
                     "(that LINE user tried too many), link_paused (the tenant had too many wrong "
                     "codes: linking waits).", ["tenant", "result"])
TICK_SECONDS = Histogram("mimamori_tick_seconds", "Duration of one clock pass over every tenant.",
                         buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
TICK_LAST_SUCCESS = Gauge("mimamori_tick_last_success_timestamp_seconds",
                          "When the last clock pass finished (Unix time).", multiprocess_mode="max")

_last_tick: float | None = None
_started = time.time()


def tick_report(tenant_slug: str, report: Any) -> None:
    """Count what one tenant's clock pass did (a `worker.clock.TickReport`)."""
    CHECKS_PLANNED.labels(tenant_slug, "scheduled").inc(report.checks_created)
    CHECKS_FAILED.labels(tenant_slug).inc(report.checks_failed)
    CHECKS_MISSED.labels(tenant_slug).inc(report.missed)


def tick_finished(seconds: float) -> None:
    global _last_tick
    _last_tick = time.time()
    TICK_SECONDS.observe(seconds)
    TICK_LAST_SUCCESS.set(_last_tick)


def delivery_recorded(tenant_slug: str, channel: str, purpose: str, outcome: str,
                      count: int = 1) -> None:
    DELIVERIES.labels(tenant_slug, channel, outcome).inc(count)
    if outcome == "sent" and purpose in ("check", "round"):
        CHECKS_SENT.labels(tenant_slug).inc(count)


def line_link_code(tenant_slug: str, result: str) -> None:
    LINE_LINKS.labels(tenant_slug, result).inc()


def delivery_reported(tenant_slug: str, channel: str, status: str) -> None:
    DELIVERY_REPORTS.labels(tenant_slug, channel,
                            status if status in REPORT_STATUSES else "other").inc()


def webhook_answered(webhook: str, seconds: float, status: int) -> None:
    WEBHOOK_SECONDS.labels(webhook).observe(seconds)
    WEBHOOK_REQUESTS.labels(webhook, str(status)).inc()


def timed_send(adapter: ChannelAdapter, credentials: ChannelCredentials,
               batch: Batch) -> list[SendResult]:
    """`adapter.send`, timed, with its provider errors counted."""
    started = time.perf_counter()
    try:
        results = adapter.send(credentials, batch)
    except Exception:
        PROVIDER_ERRORS.labels(adapter.name, "exception").inc()
        raise
    finally:
        PROVIDER_SECONDS.labels(adapter.name).observe(time.perf_counter() - started)
    for result in results:
        if result.status in ("retry", "failed"):
            PROVIDER_ERRORS.labels(adapter.name, result.status).inc()
    return results


class QueueCollector(Collector):
    """Queue depth and the age of the oldest waiting job, read from Redis at scrape time."""

    def __init__(self, connection: Redis, queue_names: Iterable[str]) -> None:
        self.connection = connection
        self.queue_names = tuple(queue_names)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from redis import RedisError
        from rq import Queue
        from rq.job import Job
        from rq.utils import str_to_date

        up = GaugeMetricFamily("mimamori_redis_up", "Whether Redis answered this scrape.")
        depth = GaugeMetricFamily("mimamori_queue_depth", "Jobs waiting on the queue.",
                                  labels=["queue"])
        age = GaugeMetricFamily("mimamori_queue_oldest_job_age_seconds",
                                "How long the oldest waiting job has waited (0 when none).",
                                labels=["queue"])
        failed = GaugeMetricFamily("mimamori_queue_failed_jobs",
                                   "Jobs that failed after their retries, kept for a week.",
                                   labels=["queue"])
        try:
            for name in self.queue_names:
                queue = Queue(name, connection=self.connection)
                depth.add_metric([name], queue.count)
                failed.add_metric([name], queue.failed_job_registry.count)
                # The head of the list is the oldest job; only its timestamp is read, not its
                # arguments.
                oldest = self.connection.lindex(queue.key, 0)
                enqueued = (self.connection.hget(Job.key_for(oldest.decode()), "enqueued_at")
                            if oldest else None)
                waited = time.time() - str_to_date(enqueued).timestamp() if enqueued else 0.0
                age.add_metric([name], max(0.0, waited))
        except (RedisError, ValueError, LookupError) as exc:
            log.warning("queue metrics unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, depth, age, failed)


class _ProcessMetrics(Collector):
    """This process's own registry, for scrapes outside multiprocess mode."""

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(queues: Collector | None = None) -> CollectorRegistry:
    """What one scrape reports: every process's metrics (or this one's), plus the queues."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    if queues is not None:
        registry.register(queues)
    return registry


def exposition(queues: Collector | None = None) -> tuple[bytes, str]:
    """The text format of one scrape and its content type."""
    return generate_latest(scrape_registry(queues)), CONTENT_TYPE_LATEST


def tick_is_recent(now: float | None = None) -> bool:
    """Is the clock alive: a pass finished lately, or the process has only just started?"""
    now = time.time() if now is None else now
    last = _last_tick if _last_tick is not None else _started
    return now - last < TICK_STALE_AFTER


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(port: int, healthy: Callable[[], bool] | None = None,
          queues: Collector | None = None) -> WSGIServer | None:
    """Serve /metrics (and /healthz, 503 when `healthy` says no) on `port` in a daemon thread.

    A port already taken is logged and skipped: the worker or scheduler runs on without metrics.
    """
    if port == 0:
        return None
    metrics_app = make_wsgi_app(scrape_registry(queues))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = healthy() if healthy is not None else True
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n" if ok else b"stale\n"]
        return metrics_app(environ, start_response)

    try:
        server = make_server("0.0.0.0", port, app, _ThreadingServer, handler_class=_QuietHandler)
    except OSError as exc:
        log.error("metrics endpoint not started on port %s: %s", port, exc.strerror or exc)
        return None
    threading.Thread(target=server.serve_forever, name="mimamori-metrics", daemon=True).start()
    log.info("metrics on port %s", port)
    return server
