"""PostgreSQL or Redis out of reach: a clean 503 with Retry-After, not a 500 and a traceback.

`/readyz` already says 503 while the database is unreachable; every other request says the same,
so providers (LINE, Twilio) retry their webhooks later and people see "try again" rather than an
error. The outage is logged as one warning line per request; the traceback tells nothing new.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import redis.exceptions
from flask import Flask, current_app, g, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import ServiceUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
# PostgreSQL shutting down, or terminating our connection, or not yet accepting any; class 08
# (connection exceptions) covers the rest.
_SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})
_DATABASE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                    sa_exc.TimeoutError)
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def unreachable(error: BaseException) -> str | None:
    """"database" or "redis" when `error` says it could not be reached; None for any other error
    (a deadlock, a bad statement), which stays a server error."""
    if isinstance(error, _REDIS_ERRORS):
        return "redis"
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError, sa_exc.InterfaceError)):
        return "database"  # the pool lost or could not get a connection
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    if error.connection_invalidated:
        return "database"
    original = error.orig
    if hasattr(original, "sqlstate"):  # psycopg: no SQLSTATE means the client lost the server
        state = original.sqlstate
        return "database" if state is None or state.startswith("08") or state in _SERVER_GONE else None
    if getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_CANTOPEN:
        return "database"
    return None


def _service_unavailable(error: Exception) -> Any:
    what = unreachable(error)
    if what is None:
        raise error  # not an outage: Flask's usual 500, traceback included
    original = getattr(error, "orig", None) or error
    log.warning("service unavailable: %s unreachable (%s) method=%s path=%s", what,
                type(original).__name__, request.method, request.path)
    # The error page must not load the signed-in user from the database that just failed.
    login_manager = getattr(current_app, "login_manager", None)
    if login_manager is not None:
        g._login_user = login_manager.anonymous_user()
    # Rendered as every other HTTP error is: problem+json for the API and webhooks, the
    # dashboard's error page elsewhere.
    return current_app.handle_http_exception(ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS))


def init_app(app: Flask) -> None:
    for error_class in (*_DATABASE_ERRORS, *_REDIS_ERRORS):
        app.register_error_handler(error_class, _service_unavailable)
