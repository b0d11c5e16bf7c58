"""Gunicorn settings for `mimamori serve`: Prometheus multiprocess bookkeeping and JSON logs.

Gunicorn reads this module's public names as settings (`-c python:mimamori.gunicorn_config`), so
helpers are private. The metrics directory comes from PROMETHEUS_MULTIPROC_DIR, which `serve`
sets before gunicorn starts so that every worker process inherits it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from mimamori.logging import wants_json as _wants_json

# Names the metrics directory `serve` made itself (PROMETHEUS_MULTIPROC_DIR unset), removed at exit.
TEMPORARY_METRICS_DIR = "MIMAMORI_TEMPORARY_METRICS_DIR"


def _log_config() -> dict[str, Any]:
    """Gunicorn's own lines (start-up, worker restarts, errors) rendered like the app's."""
    json_lines = _wants_json(os.environ.get("MIMAMORI_ENV", "development").strip().lower())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "mimamori.logging.formatter", "json_lines": json_lines}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured",
                                "stream": "ext://sys.stderr"}},
        # The app installs the root handler itself (mimamori.logging.configure) in each worker.
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            # The app logs each request with its id; gunicorn's access lines would repeat them.
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


logconfig_dict = _log_config()
# No runtime control socket: it would be written under $HOME, which is read-only in the container.
control_socket_disable = True
# Worker heartbeats on tmpfs (the container's /tmp may be disk-backed, or absent).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def on_starting(server: Any) -> None:
    """Start from an empty metrics directory: files of an earlier run would be added in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits leaves its counters in place, but its live gauges must go."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    temporary = os.environ.get(TEMPORARY_METRICS_DIR)
    if temporary and temporary == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(temporary, ignore_errors=True)
