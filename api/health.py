"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import text

from mimamori import metrics
from mimamori.extensions import db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> Any:
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503


@blueprint.get("/metrics")
def prometheus_metrics() -> Any:
    """Every gunicorn worker's metrics added up, plus the queues as Redis holds them now.

    With METRICS_PORT set, `mimamori serve` listens on that port too and /metrics answers only
    there, so the port behind the public ingress does not publish per-tenant counts."""
    port = current_app.config.get("METRICS_PORT")
    if port and request.environ.get("SERVER_PORT") != str(port):
        abort(404)
    queues = None
    if current_app.config.get("REDIS_URL"):
        from worker.queues import QUEUE_NAMES, redis_connection

        queues = metrics.QueueCollector(redis_connection(), QUEUE_NAMES)
    body, content_type = metrics.exposition(queues)
    return Response(body, content_type=content_type)
