"""PostgreSQL out of reach: the API, the webhooks and the dashboard answer 503 with Retry-After."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mimamori.extensions import db
from mimamori.outages import unreachable
from tests.fakes.line import signed_webhook, text_message_event, user_id
from tests.webhooks_support import LINE_SECRET
from wsgi import create_app


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def outage_app(app: Flask, redis_url: str, tmp_path) -> Iterator[Flask]:
    """The application with its database on a port nothing listens on (the session's keys, so
    the process-wide keyring stays as the other tests need it)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/mimamori"
    yield create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url,
                      "PUBLIC_BASE_URL": "http://testserver", "WTF_CSRF_ENABLED": False,
                      "SECRET_KEY": app.config["SECRET_KEY"],
                      "ENCRYPTION_KEYS": app.config["ENCRYPTION_KEYS"]},
                     instance_path=str(tmp_path))


def assert_clean_503(response, caplog, at_least: int = 30) -> None:
    assert response.status_code == 503
    assert response.headers.getlist("Retry-After") == [response.headers["Retry-After"]]
    assert int(response.headers["Retry-After"]) >= at_least
    outage_lines = [r for r in caplog.records if r.name == "mimamori.outages"]
    assert [r.levelno for r in outage_lines] == [logging.WARNING]
    assert "database unreachable" in outage_lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def test_api_answers_503_problem_when_the_database_is_down(outage_app, caplog):
    """Does a client of the API get a 503 problem with Retry-After, and the log one warning?"""
    caplog.set_level(logging.INFO)
    response = outage_app.test_client().get("/api/v1/residents",
                                            headers={"Authorization": "Bearer mmr_" + "x" * 43})
    assert_clean_503(response, caplog)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 503


@pytest.mark.parametrize("path", ["/webhooks/line/musashino", "/webhooks/twilio/musashino/sms",
                                  "/webhooks/twilio/musashino/voice?delivery=1",
                                  "/webhooks/twilio/musashino/status?delivery=1"])
def test_webhooks_answer_503_so_providers_retry(outage_app, caplog, path):
    """Do LINE and Twilio get a 503 with Retry-After, so that they send the event again later?"""
    caplog.set_level(logging.INFO)
    if "line" in path:
        body, signature = signed_webhook(LINE_SECRET, [text_message_event(user_id(1), "はい")])
        response = outage_app.test_client().post(path, data=body, content_type="application/json",
                                                 headers={"X-Line-Signature": signature})
    else:
        response = outage_app.test_client().post(path, data={"MessageSid": "SM" + "0" * 32,
                                                             "From": "+819012345678", "Body": "1"})
    assert_clean_503(response, caplog)


def test_dashboard_answers_503_when_the_database_is_down(outage_app, caplog):
    """Does staff signing in to the dashboard get a 503 page, not a server error?"""
    caplog.set_level(logging.INFO)
    response = outage_app.test_client().post(
        "/login", data={"email": "staff@example.jp", "password": "correct horse battery"})
    # The sign-in limiter's headers carry the end of its own window as Retry-After.
    assert_clean_503(response, caplog, at_least=1)
    assert "ただいま一時的に利用できません" in response.get_data(as_text=True)


def test_readiness_says_so_too(outage_app):
    """Does /readyz agree (503) while the database is down?"""
    assert outage_app.test_client().get("/readyz").status_code == 503


def test_redis_out_of_reach_is_an_outage_too():
    """The web tier's Redis (sign-in limits, queues) refuses connections: is that an outage?"""
    error = None
    try:
        redis.Redis(host="127.0.0.1", port=closed_port(), socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        error = exc
    assert unreachable(error) == "redis"


def test_other_database_errors_stay_server_errors(clean_app):
    """A statement the database cancels or refuses (a timeout on PostgreSQL, a missing table on
    SQLite) is a fault to look into, not an outage: is it left a 500 with its traceback?"""
    with clean_app.app_context():
        on_sqlite = db.engine.dialect.name == "sqlite"
        statement = ("SELECT 1 FROM no_such_table" if on_sqlite
                     else "SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)")
        with pytest.raises(OperationalError) as raised:
            db.session.execute(text(statement))
        db.session.rollback()
    assert unreachable(raised.value) is None
