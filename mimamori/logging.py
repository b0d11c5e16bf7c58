"""Structured logs: JSON lines in production, readable lines in development, never personal data.

Every module logs through the standard library (`logging.getLogger(__name__)`); structlog renders
the records once, on standard error, with what is bound to the current request or job:
`request_id` (from X-Request-ID or made up, and echoed on the response), `tenant` (the slug) and
`job_id`. Log lines carry ids, slugs and outcomes; names, phone numbers and message texts are
never logged. As a last line of defence, at any depth of a log line (`webhook.tenant`, dicts in
dicts, lists of dicts): fields named like a secret or personal data are masked whole, and
anything that looks like a phone number is masked inside any text.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import structlog
from flask import Flask, Response, g, request
from structlog.contextvars import (
    bind_contextvars,
    bound_contextvars,
    clear_contextvars,
    get_contextvars,
)
from structlog.typing import EventDict, Processor

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Paths the probes and Prometheus hit every few seconds; a log line each would drown the rest.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_HANDLER_NAME = "mimamori"
# Chatty libraries: the Twilio SDK logs every request at INFO, query strings (phone numbers) included.
QUIET_LOGGERS = {"twilio.http_client": logging.WARNING}
# E.164 (+819012345678) and Japanese domestic numbers with or without hyphens (090-1234-5678).
_PHONE = re.compile(r"\+\d{9,15}\b|(?<![\w.:-])0\d{1,4}-\d{1,4}-\d{3,4}(?![\w-])|(?<![\w.:-])0\d{9,10}(?!\w)")

# Fields whose values are masked whole wherever they are nested; a dotted key such as
# `twilio.auth_token` counts by its last part.
SECRET_FIELDS = frozenset({
    "password", "secret", "token", "authorization", "cookie", "api_key", "auth_token",
    "access_token", "channel_secret", "channel_access_token", "totp_secret", "link_code",
})
SECRET_SUFFIXES = ("_password", "_secret", "_token")
PERSONAL_FIELDS = frozenset({
    "name", "name_kana", "phone", "email", "address", "birth_date", "line_user_id", "text",
    "body", "relation_note", "notes", "access_notes",
})
MASKED = "[masked]"
# Deeper than any log line we write: past it a structure is cut rather than walked for ever.
_MAX_DEPTH = 16

_configured: tuple[bool, int] | None = None


def _masks_whole(key: object) -> bool:
    if not isinstance(key, str):
        return False
    leaf = key.rsplit(".", 1)[-1].lower()
    return leaf in SECRET_FIELDS or leaf in PERSONAL_FIELDS or leaf.endswith(SECRET_SUFFIXES)


def _masked(value: Any, depth: int = 0) -> Any:
    """`value` with secret and personal fields masked and phone numbers hidden, at any depth."""
    if isinstance(value, str):
        return _PHONE.sub("[phone]", value)
    if depth >= _MAX_DEPTH and isinstance(value, Mapping | list | tuple | set | frozenset):
        return "[too deep]"
    if isinstance(value, Mapping):
        return {key: MASKED if _masks_whole(key) else _masked(nested, depth + 1)
                for key, nested in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(nested, depth + 1) for nested in value]
    return value


def _mask_personal_data(_logger: Any, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if key == "exc_info":
            continue  # the console renderer formats it; JSON lines have it as text already
        event_dict[key] = MASKED if _masks_whole(key) else _masked(value)
    return event_dict


def _drop_formatted_message(_logger: Any, _name: str, event_dict: EventDict) -> EventDict:
    # Another handler (pytest's, say) may have formatted the record first: `message` repeats `event`.
    event_dict.pop("message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_formatted_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def wants_json(environment: str) -> bool:
    """LOG_FORMAT=json|console decides; otherwise JSON in production, console elsewhere."""
    chosen = os.environ.get("LOG_FORMAT", "").strip().lower()
    if chosen in ("json", "console"):
        return chosen == "json"
    return environment == "production"


def formatter(json_lines: bool, colors: bool = False) -> logging.Formatter:
    """The formatter every handler uses (gunicorn's too, see `mimamori.gunicorn_config`)."""
    renderer: Processor = (structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines
                           else structlog.dev.ConsoleRenderer(colors=colors))
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_lines:
        final.append(structlog.processors.format_exc_info)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[*final, _mask_personal_data, renderer],
    )


def json_formatter() -> logging.Formatter:
    return formatter(True)


def configure(json_lines: bool, level: int | str | None = None, stream: IO[str] | None = None) -> None:
    """Send every log record through structlog to `stream` (default standard error).

    Replaces only the handler it installed itself, so calling it again (another app in the same
    process, a test capturing output) does not duplicate lines.
    """
    global _configured
    level = level or os.environ.get("LOG_LEVEL", "INFO").upper()
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_shared_processors(),
                    structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter(json_lines, colors=not json_lines and stream.isatty()))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)
    _configured = (json_lines, root.level)


def is_configured() -> bool:
    return _configured is not None


def bind(**values: Any) -> None:
    """Add ids to every log line of this request or job (tenant=slug, ...)."""
    bind_contextvars(**values)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Ids for the log lines inside the block only (a tenant in the clock's loop, a job)."""
    with bound_contextvars(**values):
        yield


@contextmanager
def job_context() -> Iterator[None]:
    """Bind the running RQ job's id, when there is one; whatever the job binds (its tenant)
    ends with it, so the worker's next job starts clean."""
    from rq import get_current_job

    job = get_current_job()
    saved = get_contextvars()
    if job is not None:
        bind_contextvars(job_id=job.id)
    try:
        yield
    finally:
        clear_contextvars()
        bind_contextvars(**saved)


def _start_request() -> None:
    # Threads serve one request after another: nothing bound by the last one may leak in.
    clear_contextvars()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    bind_contextvars(request_id=g.request_id)


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    if request.path not in QUIET_PATHS and "request_started" in g:
        # The path names ids and slugs only; query strings and bodies stay out of the log.
        logging.getLogger("mimamori.request").info(
            "request", extra={"method": request.method, "path": request.path,
                              "status": response.status_code,
                              "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1)})
    return response


def _end_request(_exc: BaseException | None) -> None:
    clear_contextvars()


def init_app(app: Flask) -> None:
    """Configure logging for this process once, and give every request an id."""
    if _configured is None:
        configure(wants_json(app.config.get("MIMAMORI_ENV", "development")))
    # First, so the hooks that bind a tenant (API tokens, webhooks) add to this request's context.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
