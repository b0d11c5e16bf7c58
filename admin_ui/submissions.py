"""One send per form: a broadcast or round confirmed twice (a double click, a resent form after a
slow answer) messages every resident once.

Each sending form carries a token of its own; the first post to present it claims it in Redis and
records what it created, and a later post with it is shown that instead of sending again.
"""

from __future__ import annotations

import logging
import re
import uuid

from flask import g, request
from redis import RedisError

log = logging.getLogger(__name__)

FIELD = "submission"
KEEP_SECONDS = 24 * 3600
_TOKEN = re.compile(r"[0-9a-f]{32}")
_CLAIMED = "claimed"


def new_token() -> str:
    return uuid.uuid4().hex


def _key(token: str) -> str:
    return f"mimamori:submission:{g.tenant.id}:{token}"


def claim() -> tuple[bool, str | None]:
    """(first, earlier): whether this post is the form's first, else the id of what the first
    created (None while it is still being created).

    A form without a token (posted by hand) is not guarded. If Redis cannot be reached the post
    goes ahead: sending matters more than catching a double click."""
    from worker.queues import redis_connection

    token = request.form.get(FIELD, "")
    if not _TOKEN.fullmatch(token):
        return True, None
    try:
        redis = redis_connection()
        if redis.set(_key(token), _CLAIMED, nx=True, ex=KEEP_SECONDS):
            return True, None
        earlier = redis.get(_key(token))
    except RedisError:
        log.warning("submission guard unavailable: Redis did not answer")
        return True, None
    text = earlier.decode() if earlier else ""
    return False, text if text.isdigit() else None


def created(record_id: int) -> None:
    """Remember what this form's first post created, for a repeat to be shown it."""
    from worker.queues import redis_connection

    token = request.form.get(FIELD, "")
    if not _TOKEN.fullmatch(token):
        return
    try:
        redis_connection().set(_key(token), str(record_id), ex=KEEP_SECONDS)
    except RedisError:
        log.warning("submission guard unavailable: Redis did not answer")


def release() -> None:
    """The first post did not send after all (the service refused it): the form may be sent again."""
    from worker.queues import redis_connection

    token = request.form.get(FIELD, "")
    if not _TOKEN.fullmatch(token):
        return
    try:
        redis_connection().delete(_key(token))
    except RedisError:
        log.warning("submission guard unavailable: Redis did not answer")
