"""One send per form: a broadcast or round confirmed twice (a double click, a resent form after a
slow answer) messages every resident once.

Each sending form carries a token of its own; the first post to present it claims it in Redis and
records what it created, and a later post with it is shown that instead of sending again.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import TypeVar

from flask import flash, g, redirect, request, url_for
from redis import Redis, RedisError
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

FIELD = "submission"
KEEP_SECONDS = 24 * 3600
_TOKEN = re.compile(r"[0-9a-f]{32}")
_CLAIMED = "claimed"
T = TypeVar("T")


def new_token() -> str:
    return uuid.uuid4().hex


def _form_key() -> str | None:
    """This form's key in Redis; None for a form without a token (posted by hand: not guarded)."""
    token = request.form.get(FIELD, "")
    return f"mimamori:submission:{g.tenant.id}:{token}" if _TOKEN.fullmatch(token) else None


def _redis(action: Callable[[Redis, str], T], unguarded: T) -> T:
    """`action` on this form's key; `unguarded` without a token or when Redis cannot be reached
    (the post goes ahead: sending matters more than catching a double click)."""
    from worker.queues import redis_connection

    key = _form_key()
    if key is None:
        return unguarded
    try:
        return action(redis_connection(), key)
    except RedisError:
        log.warning("submission guard unavailable: Redis did not answer")
        return unguarded


def repeated(show_endpoint: str, id_argument: str, index_endpoint: str,
             message: str) -> Response | None:
    """None for the form's first post, which it claims; for a repeat, the page of what the first
    created (or the list while it is still being created), with `message`."""
    def claim(redis: Redis, key: str) -> bytes | None:
        return None if redis.set(key, _CLAIMED, nx=True, ex=KEEP_SECONDS) else (redis.get(key) or b"")

    earlier = _redis(claim, None)
    if earlier is None:
        return None
    flash(message, "info")
    text = earlier.decode()
    return redirect(url_for(show_endpoint, **{id_argument: int(text)}) if text.isdigit()
                    else url_for(index_endpoint))


def created(record_id: int) -> None:
    """Remember what this form's first post created, for a repeat to be shown it."""
    _redis(lambda redis, key: redis.set(key, str(record_id), ex=KEEP_SECONDS), None)


def release() -> None:
    """The first post did not send after all (the service refused it): the form may be sent again."""
    _redis(lambda redis, key: redis.delete(key), None)
