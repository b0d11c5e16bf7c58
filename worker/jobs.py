"""RQ jobs. Each takes a tenant id and row ids, binds that tenant, and is safe to run twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from flask import Flask, has_app_context

from mimamori import logging as logs
from mimamori.extensions import db
from tenants.models import Tenant
from tenants.tenancy import bind_tenant
from tenants.types import utcnow

log = logging.getLogger(__name__)

_app: Flask | None = None


@contextmanager
def app_context() -> Iterator[None]:
    """The worker's app context (one app per process, made on first use), with the job's id
    on every log line."""
    global _app
    if has_app_context():
        with logs.job_context():
            yield
        return
    if _app is None:
        from wsgi import create_app

        _app = create_app()
    with _app.app_context(), logs.job_context():
        yield


def send_batches(tenant_id: int, batch_keys: list[str]) -> None:
    """Send batches of a tenant's deliveries side by side; queue at once any fallback they lead to."""
    from worker import dispatch
    from worker.clock import queue_deliveries

    with app_context(), bind_tenant(tenant_id):
        try:
            tenant = db.session.get(Tenant, tenant_id)
            if tenant is None:
                return
            logs.bind(tenant=tenant.slug)
            follow_up = dispatch.dispatch(tenant, batch_keys)
            if follow_up:
                queue_deliveries(tenant_id, follow_up, utcnow())
            log.info("batch sent", extra={"batches": len(batch_keys), "fallbacks": len(follow_up)})
        finally:
            db.session.remove()


def send_batch(tenant_id: int, batch_key: str) -> None:
    """Send one batch (jobs queued before batches were sent several to a job)."""
    send_batches(tenant_id, [batch_key])


# Replies one job has in flight: a webhook of 100 OK taps is thanked in about a second.
REPLIES_PARALLEL = 16


def send_line_replies(tenant_id: int, replies: list[tuple[str, str]]) -> int:
    """Reply to a webhook's events — (reply token, text) each — side by side, off the webhook's
    2-second budget; returns how many LINE took.

    If LINE throttled or failed any, the job raises to be retried: replies already made are
    refused then (a reply token works once), so nobody is thanked twice."""
    from flask import current_app

    from worker import line

    with app_context():
        try:
            tenant = db.session.get(Tenant, tenant_id)
            token = tenant.line_channel_access_token if tenant else None
        finally:
            db.session.remove()
        if not token or not replies:
            return 0
        host = current_app.config["LINE_API_BASE_URL"]
    with ThreadPoolExecutor(max_workers=min(REPLIES_PARALLEL, len(replies))) as pool:
        return sum(pool.map(lambda reply: line.reply(host, token, *reply), replies))


def send_line_reply(tenant_id: int, reply_token: str, text: str) -> bool:
    """Reply to a resident's or contact's LINE event (jobs queued before replies were batched)."""
    from flask import current_app

    from worker import line

    with app_context():
        try:
            tenant = db.session.get(Tenant, tenant_id)
            token = tenant.line_channel_access_token if tenant else None
        finally:
            db.session.remove()
        if not token:
            return False
        return line.reply(current_app.config["LINE_API_BASE_URL"], token, reply_token, text)
