"""LINE and Twilio webhooks: verify the provider's signature, then hand each event to the answer rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections import Counter
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from redis import RedisError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from mimamori import logging as logs
from mimamori import metrics
from mimamori.extensions import db
from schemas.common import LINE_USER_ID
from schemas.tenants import SLUG
from tenants import messages
from tenants.models import Tenant
from tenants.services import answers
from tenants.services.tenants import tenant_by_slug
from tenants.tenancy import bind_tenant
from tenants.types import utcnow
from worker import voice

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# What a caller hears when the call cannot go on (an unknown call, or no 1 after a second try).
VOICE_GOODBYE = "お電話ありがとうございました。失礼いたします。"
XML = "text/xml; charset=utf-8"
# Larger bodies answer 413 unread. LINE puts many events in one webhook (20,000 OK taps are about
# 7 MB); Twilio posts small forms.
LINE_MAX_BODY = 16 * 1024 * 1024
TWILIO_MAX_BODY = 64 * 1024
# OK taps answered per transaction: each statement stays far below PostgreSQL's 65,535 parameters.
TAPS_PER_BATCH = 1000
# Fields as the providers document them; a value outside these is nothing they sent.
_PROVIDER_ID = re.compile(r"[0-9A-Za-z_-]{1,100}")  # webhookEventId, reply tokens, Twilio SIDs
LINE_TEXT_MAX = 5000  # LINE's limit on a text message
LINE_POSTBACK_MAX = 300  # LINE's limit on postback data
# Twilio's form fields we read, and their longest sensible value (an SMS is at most 1,600 characters).
TWILIO_FIELDS = {"MessageSid": 64, "CallSid": 64, "From": 64, "Body": 1600, "Digits": 32,
                 "MessageStatus": 32, "CallStatus": 32, "ErrorCode": 16}


def _safe_slug(slug: str) -> str:
    """The slug comes from the URL: keep anything but slug characters out of logs and metrics."""
    return re.sub(r"[^a-z0-9_-]", "?", slug[:63])


@blueprint.before_request
def _start() -> Response | None:
    g.webhook_started = time.perf_counter()
    slug = str((request.view_args or {}).get("slug", ""))
    logs.bind(tenant=_safe_slug(slug))
    limit = LINE_MAX_BODY if request.endpoint == "webhooks.line" else TWILIO_MAX_BODY
    request.max_content_length = limit  # a body sent without a length stops there too
    if (request.content_length or 0) > limit:
        provider = (request.endpoint or "").removeprefix("webhooks.")
        return _reject(413, provider, slug, "too_large")
    return None


@blueprint.after_request
def _observe(response: Response) -> Response:
    if "webhook_started" in g:
        metrics.webhook_answered((request.endpoint or "").removeprefix("webhooks."),
                                 time.perf_counter() - g.webhook_started, response.status_code)
    return response


def _log(level: int, provider: str, slug: str, result: str, **fields: Any) -> None:
    """One key=value line per request or event; ids and outcomes only, never who or what was said."""
    values = {"provider": provider, "tenant": _safe_slug(slug), "result": result, **fields}
    log.log(level, "webhook " + " ".join(f"{k}={v!s}" for k, v in values.items()),
            extra={"webhook": values})


def _reject(status: int, provider: str, slug: str, reason: str) -> Response:
    _log(logging.WARNING, provider, slug, reason, status=status)
    return Response(json.dumps({"error": reason}), status=status, content_type="application/json")


def _text(value: Any, longest: int) -> str | None:
    """`value` if it is text the database can store (no NUL, no lone surrogate) of sensible length."""
    if not isinstance(value, str) or len(value) > longest or "\x00" in value:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


def _tenant(slug: str) -> Tenant | None:
    """The tenant of a URL's slug; a slug no tenant can have does not reach the database."""
    return tenant_by_slug(slug) if SLUG.fullmatch(slug) else None


def _queue(tenant_id: int, follow_up: list[int], job: tuple[Any, ...] | None = None) -> None:
    """After the commit: fallback deliveries and reply jobs go on the queue."""
    from worker.clock import queue_deliveries
    from worker.queues import enqueue

    try:
        if follow_up:
            queue_deliveries(tenant_id, follow_up, utcnow())
        if job is not None:
            enqueue(*job)
    except RedisError:
        # Deliveries are in the database and the clock re-queues them; a lost reply is only a reply.
        log.warning("webhook queue unavailable tenant_id=%s", tenant_id)


def _finish(outcome: answers.Outcome) -> None:
    if outcome.rejected:
        db.session.rollback()
    else:
        db.session.commit()


# LINE

def _line_signature_ok(secret: str, body: bytes, signature: str) -> bool:
    """HMAC-SHA256 of the raw body, base64, as LINE signs it. The SDK's SignatureValidator takes
    the body as text and re-encodes it; the bytes as received are what LINE signed."""
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.encode())


def _line_event(event: Any) -> tuple[answers.LineEvent, str | None] | None:
    """Our view of one LINE event and its reply token; None for what we do not handle, or for an
    event whose fields LINE could not have sent (wrong types, NUL bytes, absurd lengths)."""
    if not isinstance(event, dict):
        return None
    source = event.get("source")
    if not isinstance(source, dict) or source.get("type") != "user":
        return None  # groups and rooms are not residents
    event_id, user_id, kind = event.get("webhookEventId"), source.get("userId"), event.get("type")
    if not (isinstance(event_id, str) and _PROVIDER_ID.fullmatch(event_id)
            and isinstance(user_id, str) and LINE_USER_ID.match(user_id)
            and isinstance(kind, str) and kind.isascii() and kind.isalpha() and len(kind) <= 32):
        return None
    message, postback = event.get("message", {}), event.get("postback", {})
    if not (isinstance(message, dict) and isinstance(postback, dict)):
        return None
    text = data = None
    if kind == "message" and not isinstance(message.get("type"), str):
        return None
    if message.get("type") == "text":
        text = _text(message.get("text"), LINE_TEXT_MAX)
        if text is None:
            return None
    if kind == "postback" or "data" in postback:
        data = _text(postback.get("data"), LINE_POSTBACK_MAX)
        if data is None:
            return None
    reply_token = event.get("replyToken")
    if reply_token is not None and not (isinstance(reply_token, str)
                                        and _PROVIDER_ID.fullmatch(reply_token)):
        return None
    return (answers.LineEvent(event_id=event_id, kind=kind, user_id=user_id, text=text, data=data),
            reply_token if event.get("mode") != "standby" else None)


@blueprint.post("/line/<slug>")
def line(slug: str) -> Any:
    tenant = _tenant(slug)
    if tenant is None or not tenant.line_configured:
        return _reject(404, "line", slug, "unknown_tenant")
    body = request.get_data(cache=False)
    if not _line_signature_ok(tenant.line_channel_secret or "", body,
                              request.headers.get("X-Line-Signature", "")):
        return _reject(403, "line", slug, "bad_signature")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be LINE's
        return _reject(400, "line", slug, "malformed_body")
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return _reject(400, "line", slug, "malformed_body")
    tenant_id = tenant.id
    replies: list[tuple[str, str]] = []
    follow_up: list[int] = []
    with bind_tenant(tenant_id):
        for run in _line_runs(events, slug):
            if answers.is_answer_tap(run[0][0]):
                # OK taps, the bulk of a morning: a run of them in a few statements, one commit.
                outcomes = answers.answer_taps([event for event, _ in run], utcnow())
                db.session.commit()
            else:
                outcomes = [answers.line_event(db.session.get(Tenant, tenant_id), run[0][0], utcnow())]
                _finish(outcomes[0])
            for (event, reply_token), outcome in zip(run, outcomes, strict=True):
                # A morning brings 100,000 OK taps: those are counted in one line per webhook
                # (their event ids are kept in the database); anything else gets its own line.
                refused = outcome.rejected or outcome.result in ("link_locked", "link_paused")
                if refused or len(run) == 1:
                    _log(logging.WARNING if refused else logging.INFO, "line", slug,
                         outcome.result, event=event.kind, event_id=event.event_id)
                if outcome.result in answers.LINK_RESULTS:
                    metrics.line_link_code(_safe_slug(slug), outcome.result)
                if outcome.reply and reply_token:
                    replies.append((reply_token, outcome.reply))
                follow_up += outcome.follow_up
            if len(run) > 1:
                counted = Counter(o.result for o in outcomes if not o.rejected)
                _log(logging.INFO, "line", slug, "taps", event="postback",
                     **{result: counted[result] for result in sorted(counted)})
        _queue(tenant_id, follow_up,
               ("worker.jobs.send_line_replies", tenant_id, replies) if replies else None)
    return {}


def _line_runs(events: list[Any], slug: str) -> list[list[tuple[answers.LineEvent, str | None]]]:
    """The events in order, consecutive OK taps together (up to TAPS_PER_BATCH) and every other
    event on its own."""
    runs: list[list[tuple[answers.LineEvent, str | None]]] = []
    for raw in events:
        parsed = _line_event(raw)
        if parsed is None:
            _log(logging.WARNING, "line", slug, "unhandled_event")
            continue
        if (runs and answers.is_answer_tap(parsed[0]) and answers.is_answer_tap(runs[-1][0][0])
                and len(runs[-1]) < TAPS_PER_BATCH):
            runs[-1].append(parsed)
        else:
            runs.append([parsed])
    return runs


# Twilio

def _signed_url() -> str:
    """The URL Twilio requested as we published it: behind proxies the Host header is not it."""
    # Not UTF-8, it is not a URL we gave Twilio: the signature will not match.
    query = request.query_string.decode(errors="replace")
    return current_app.config["PUBLIC_BASE_URL"] + request.path + (f"?{query}" if query else "")


def _twilio_tenant(slug: str, kind: str) -> Tenant | Response:
    tenant = _tenant(slug)
    if tenant is None or not tenant.twilio_configured:
        return _reject(404, f"twilio_{kind}", slug, "unknown_tenant")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(tenant.twilio_auth_token or "").validate(_signed_url(), request.form,
                                                                       signature):
        return _reject(403, f"twilio_{kind}", slug, "bad_signature")
    return tenant


def _twilio_form() -> dict[str, str] | None:
    """The form fields we read, each given at most once and as Twilio could have sent it."""
    fields: dict[str, str] = {}
    for name, longest in TWILIO_FIELDS.items():
        values = request.form.getlist(name)
        if len(values) > 1:
            return None
        if values:
            value = _text(values[0], longest)
            if value is None:
                return None
            fields[name] = value
    for name in ("MessageSid", "CallSid"):
        if name in fields and not _PROVIDER_ID.fullmatch(fields[name]):
            return None
    if "ErrorCode" in fields and not fields["ErrorCode"].isdigit():
        return None
    return fields


def _delivery_id() -> int | Response | None:
    """The delivery a voice or status callback URL names (we put it there); None when it names
    none a row can have, a response when the URL is not one we gave."""
    given = request.args.getlist("delivery")
    if len(given) > 1:
        return _reject(400, (request.endpoint or "").removeprefix("webhooks."),
                       str((request.view_args or {}).get("slug", "")), "malformed_query")
    return answers.parse_id(given[0]) if given else None


def _twiml(document: str) -> Response:
    return Response(document, content_type=XML)


@blueprint.post("/twilio/<slug>/sms")
def twilio_sms(slug: str) -> Any:
    tenant = _twilio_tenant(slug, "sms")
    if isinstance(tenant, Response):
        return tenant
    form = _twilio_form()
    sid = (form or {}).get("MessageSid", "")
    if not sid:
        return _reject(400, "twilio_sms", slug, "malformed_body")
    with bind_tenant(tenant.id):
        outcome = answers.sms_received(sid, form.get("From", ""), form.get("Body", ""), utcnow())
        _finish(outcome)
    _log(logging.WARNING if outcome.rejected else logging.INFO, "twilio_sms", slug, outcome.result,
         message_sid=sid)
    response = MessagingResponse()
    if outcome.reply:
        response.message(outcome.reply)
    return _twiml(str(response))


@blueprint.post("/twilio/<slug>/voice")
def twilio_voice(slug: str) -> Any:
    tenant = _twilio_tenant(slug, "voice")
    if isinstance(tenant, Response):
        return tenant
    action = _signed_url()
    form, delivery_id = _twilio_form(), _delivery_id()
    if isinstance(delivery_id, Response):
        return delivery_id
    if form is None:
        return _reject(400, "twilio_voice", slug, "malformed_body")
    digits = form.get("Digits")
    with bind_tenant(tenant.id):
        delivery = answers.voice_delivery(delivery_id)
        if delivery is None:
            _log(logging.WARNING, "twilio_voice", slug, "unknown_delivery")
            return _twiml(voice.thanks_twiml(VOICE_GOODBYE))
        if delivery.purpose == "broadcast":
            # Information only: said twice, nothing to press.
            return _twiml(voice.thanks_twiml(messages.spoken_twice(delivery.body or "")))
        prompt = (voice.check_twiml if delivery.recipient_type == "resident"
                  else voice.contact_alert_twiml)
        text = delivery.body or ""
        if not digits:
            return _twiml(prompt(text, action))
        outcome = answers.voice_keypress(tenant, delivery, digits, utcnow())
        _finish(outcome)
        _log(logging.INFO, "twilio_voice", slug, outcome.result, delivery=delivery.id)
    if outcome.reply:
        return _twiml(voice.thanks_twiml(outcome.reply))
    if request.args.get("again"):
        return _twiml(voice.thanks_twiml(VOICE_GOODBYE))
    # Another key: ask once more; the marker in the action URL makes the next miss the last.
    return _twiml(prompt(text, f"{action}&again=1"))


@blueprint.post("/twilio/<slug>/status")
def twilio_status(slug: str) -> Any:
    tenant = _twilio_tenant(slug, "status")
    if isinstance(tenant, Response):
        return tenant
    tenant_id = tenant.id
    form, delivery_id = _twilio_form(), _delivery_id()
    if isinstance(delivery_id, Response):
        return delivery_id
    if form is None:
        return _reject(400, "twilio_status", slug, "malformed_body")
    with bind_tenant(tenant_id):
        delivery = answers.find_delivery(delivery_id)
        if delivery is None:
            return _reject(404, "twilio_status", slug, "unknown_delivery")
        is_call = delivery.channel == "voice"
        sid = form.get("CallSid" if is_call else "MessageSid", "")
        status = form.get("CallStatus" if is_call else "MessageStatus", "")
        if not (sid and status):
            return _reject(400, "twilio_status", slug, "malformed_body")
        outcome = answers.delivery_status(tenant, delivery, sid, status, utcnow(),
                                          form.get("ErrorCode"))
        _finish(outcome)
        metrics.delivery_reported(tenant.slug, delivery.channel, status)
        _log(logging.WARNING if outcome.rejected else logging.INFO, "twilio_status", slug,
             outcome.result, delivery=delivery.id,
             status=status if status in metrics.REPORT_STATUSES else "other")
        _queue(tenant_id, outcome.follow_up)
    return Response(status=204)
