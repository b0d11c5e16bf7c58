"""What the webhook tests share: a tenant with LINE and Twilio, the engine's clock and worker, the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import select
from werkzeug.test import TestResponse

from mimamori.extensions import db
from tenants.tenancy import bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fakes.line import LineFake, signed_webhook
from tests.fakes.twilio import TwilioFake, signature
from worker.clock import TickReport, tick
from worker.queues import queue, redis_connection

DAY1 = "2030-04-01"  # ahead of any run of the suite, so residents made now precede its checks
PUBLIC_BASE_URL = "http://testserver"  # what tests/fixtures/app.py configures
LINE_SECRET = "line-channel-secret-0123456789"
LINE_TOKEN = "line-channel-access-token-0123456789"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
OTHER_SUFFIX = "-2"  # another tenant's credentials: these with the suffix, and its own account
OTHER_TWILIO_SID = "AC" + "fedcba9876543210" * 2
TWILIO_TOKEN = "twilio-auth-token-0123456789"
TWILIO_FROM = "+815012345678"


# Fallbacks are made at the real time of day while the tests move the clock's: a tenant without
# quiet hours makes a fallback call at once, whatever hour the tests run.
NO_QUIET_HOURS = {"quiet_hours": {"start": "00:00", "end": "00:00"}}


def credentials(other: bool = False) -> dict[str, Any]:
    """The operator's LINE and Twilio settings for the tenant (or, `other`, a second tenant)."""
    suffix = OTHER_SUFFIX if other else ""
    return {"line": {"channel_secret": LINE_SECRET + suffix, "channel_access_token": LINE_TOKEN + suffix},
            "twilio": {"account_sid": OTHER_TWILIO_SID if other else TWILIO_SID,
                       "auth_token": TWILIO_TOKEN + suffix, "from_number": TWILIO_FROM}}


def daily_policy(api: Any, **overrides: Any) -> dict[str, Any]:
    """The standard chain and a daily 09:00 policy (reminder +30, window 60 minutes) from DAY1."""
    chain = created(api.post("/api/v1/alert-chains", chain_body()))
    return created(api.post("/api/v1/check-policies", policy_body(chain["id"], starts_on=DAY1,
                                                                   **overrides)))


def add_resident(api: Any, policy_id: int | None, **fields: Any) -> dict[str, Any]:
    return created(api.post("/api/v1/residents", resident_body(check_policy_id=policy_id, **fields)))


def run_clock(app: Flask, at: datetime) -> TickReport:
    with app.app_context():
        return tick(at)


def work(app: Flask) -> None:
    """Run every queued job as `mimamori worker --burst` does."""
    with app.app_context():
        SimpleWorker([queue()], connection=redis_connection()).work(burst=True)


def queued_calls(app: Flask) -> list[tuple[str, tuple[Any, ...]]]:
    """The jobs waiting on the queue: (function name, arguments)."""
    with app.app_context():
        return [(job.func_name, tuple(job.args)) for job in queue().get_jobs()]


def rows(app: Flask, tenant_id: int, model: Any, *where: Any) -> list[Any]:
    """Rows of one tenant, read as a job of that tenant would (detached, for assertions)."""
    with app.app_context(), bind_tenant(tenant_id):
        found = list(db.session.scalars(select(model).where(*where).order_by(model.id)))
        db.session.expunge_all()
        return found


@contextmanager
def providers(app: Flask) -> Iterator[tuple[LineFake, TwilioFake]]:
    """LINE's and Twilio's fakes, knowing the tenants' credentials, as the app's provider hosts."""
    line, twilio = LineFake(), TwilioFake()
    line.add_channel(LINE_TOKEN)
    line.add_channel(LINE_TOKEN + OTHER_SUFFIX)
    twilio.add_account(TWILIO_SID, TWILIO_TOKEN)
    twilio.add_account(OTHER_TWILIO_SID, TWILIO_TOKEN + OTHER_SUFFIX)
    saved = {key: app.config[key] for key in ("LINE_API_BASE_URL", "TWILIO_API_BASE_URL")}
    app.config.update(LINE_API_BASE_URL=line.url, TWILIO_API_BASE_URL=twilio.url)
    try:
        yield line, twilio
    finally:
        app.config.update(saved)
        line.stop()
        twilio.stop()


def post_line(client: FlaskClient, slug: str, events: list[dict[str, Any]],
              secret: str = LINE_SECRET) -> TestResponse:
    """A webhook POST as LINE makes it, signed with `secret`."""
    body, line_signature = signed_webhook(secret, events)
    return client.post(f"/webhooks/line/{slug}", data=body, content_type="application/json",
                       headers={"X-Line-Signature": line_signature})


def post_twilio(client: FlaskClient, url: str, params: dict[str, str],
                token: str = TWILIO_TOKEN) -> TestResponse:
    """A webhook POST as Twilio makes it to `url` (our public URL), signed with `token`."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature(token, url, params)})


def twilio_url(slug: str, kind: str, query: str = "") -> str:
    return f"{PUBLIC_BASE_URL}/webhooks/twilio/{slug}/{kind}" + (f"?{query}" if query else "")


def ok_button_data(message: dict[str, Any]) -> str:
    """The postback data of the button in a LINE message we sent (buttons template or quick reply)."""
    if message["type"] == "template":
        return message["template"]["actions"][0]["data"]
    return message["quickReply"]["items"][0]["action"]["data"]
