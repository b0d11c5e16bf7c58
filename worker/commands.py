"""Command-line entry points for the engine: `worker`, `scheduler` and `tick`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import asdict
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext
from rq import SimpleWorker

from mimamori import metrics
from worker.clock import run_forever, tick
from worker.queues import queue, redis_connection

log = logging.getLogger(__name__)


class AppWorker(SimpleWorker):
    """Runs jobs in this process, inside the app context the command set up.

    Forking per job would hand the child the parent's database connections; running in-process
    keeps one pool per worker, and replicas give the parallelism.
    """


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; one without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO-8601 instant: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@click.command("tick")
@click.option("--at", "at", metavar="ISO-8601",
              help="Run as of this instant (default: now); without an offset it is UTC.")
@with_appcontext
def tick_command(at: str | None) -> None:
    """One planning, reminder, escalation and reconcile pass for every tenant."""
    report = tick(parse_instant(at) if at else None)
    click.echo(json.dumps(asdict(report)))


@click.command("worker")
@click.option("--burst", is_flag=True, help="Drain the queues and exit.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """An RQ worker for all of the app's queues (metrics on METRICS_PORT, default 9100, unless --burst)."""
    if not burst:
        metrics.serve(_metrics_port())
    AppWorker([queue()], connection=redis_connection()).work(burst=burst, logging_level="INFO")


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """The clock: tick every minute (several schedulers at once are safe).

    Metrics on METRICS_PORT (default 9100), with /healthz answering 503 once no tick has finished
    for ten minutes."""
    metrics.serve(_metrics_port(), healthy=metrics.tick_is_recent)
    # SIGTERM (Kubernetes stopping the pod, `docker stop`) ends the loop after the tick under
    # way, with exit status 0; a tick cut short would be repeated by the next anyway.
    stop = threading.Event()
    for stopping in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stopping, lambda *_: stop.set())
    run_forever(stop=stop)
    log.info("scheduler stopped")


def _metrics_port() -> int:
    port = current_app.config.get("METRICS_PORT")
    return metrics.DEFAULT_METRICS_PORT if port is None else port
