"""A fake LINE Messaging API (push, multicast, reply, bot info, profile) and LINE webhook builders.

It answers as api.line.me does: bearer tokens checked, request bodies validated with LINE's limits
and error shape, `X-Line-Retry-Key` honoured (a retried, already accepted request answers 409 with
`x-line-accepted-request-id` and delivers nothing), `x-line-request-id` on every answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.base import FakeServer, Fault

PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"
REPLY = "/v2/bot/message/reply"

_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
_PUSH_TARGET = re.compile(r"^[UCR][0-9a-f]{32}$")
_REPLY_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_MESSAGE_TYPES = {"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap",
                  "template", "flex"}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MESSAGE_TYPE_NAMES = ", ".join(sorted(_MESSAGE_TYPES))
_UNPARSABLE = object()

_routes = Map([
    Rule(PUSH, endpoint="push", methods=["POST"]),
    Rule(MULTICAST, endpoint="multicast", methods=["POST"]),
    Rule(REPLY, endpoint="reply", methods=["POST"]),
    Rule("/v2/bot/info", endpoint="info", methods=["GET"]),
    Rule("/v2/bot/profile/<user_id>", endpoint="profile", methods=["GET"]),
])


def user_id(n: int) -> str:
    """A well-formed LINE user id (U + 32 hex digits) numbered `n`."""
    return f"U{n:032x}"


@dataclass
class RecordedRequest:
    method: str
    path: str
    status: int
    retry_key: str | None
    body: Any
    # When the fake answered (time.time()), so a benchmark can tell when the last send landed.
    at: float = field(default_factory=time.time)


@dataclass
class _Channel:
    token: str
    bot_user_id: str
    display_name: str
    basic_id: str


@dataclass
class _Profile:
    display_name: str
    language: str = "ja"


@dataclass
class _Errors:
    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, prop: str, message: str) -> None:
        self.items.append((prop, message))

    def length(self, prop: str, value: Any, low: int, high: int, required: bool = True) -> None:
        if value is None:
            if required:
                self.add(prop, "Must not be null")
        elif not isinstance(value, str):
            self.add(prop, "Must be a string")
        elif not low <= len(value) <= high:
            self.add(prop, f"Length must be between {low} and {high}")


class LineFake(FakeServer):
    """LINE's Messaging API on a local port; tell it the channel tokens it accepts.

    `rate_limit` is multicast requests per second per channel (LINE's published 200),
    `push_rate_limit` the same for push (2,000); over it LINE answers 429 and `violations` counts.
    """

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        latency_ms: float = 0,
        rate_limit: float | None = 200,
        push_rate_limit: float | None = 2000,
    ) -> None:
        super().__init__(latency_ms)
        self.rate_limit = rate_limit
        self.push_rate_limit = push_rate_limit
        self.requests: list[RecordedRequest] = []
        self._channels: dict[str, _Channel] = {}
        self._profiles: dict[str, _Profile] = {}
        self._blocked: set[str] = set()
        self._delivered: dict[str, list[dict[str, Any]]] = {}
        self._replies: dict[str, list[dict[str, Any]]] = {}
        self._accepted: dict[tuple[str, str], str] = {}
        for token in tokens:
            self.add_channel(token)

    def add_channel(self, token: str, display_name: str = "見守りサービス") -> None:
        """Accept `token` as a channel access token of a channel called `display_name`."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.lock:
            self._channels[token] = _Channel(token, f"U{digest[:32]}", display_name, f"@{digest[:8]}")

    def add_user(self, line_user_id: str, display_name: str = "利用者", language: str = "ja") -> None:
        """A friend of the channels, so that GET /v2/bot/profile/{userId} finds them."""
        with self.lock:
            self._profiles[line_user_id] = _Profile(display_name, language)

    def block(self, line_user_id: str) -> None:
        """The user blocked the account: LINE still answers 200 but delivers nothing to them."""
        with self.lock:
            self._blocked.add(line_user_id)

    def delivered_to(self, line_user_id: str) -> list[dict[str, Any]]:
        """The message objects this user received, in order (each accepted request once)."""
        with self.lock:
            return list(self._delivered.get(line_user_id, []))

    def replied(self, reply_token: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._replies.get(reply_token, []))

    def accepted(self, path: str) -> list[RecordedRequest]:
        """Requests to `path` that LINE accepted (200), in order."""
        with self.lock:
            return [r for r in self.requests if r.path == path and r.status == 200]

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = _routes.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return _answer(exc.code or 404, {"message": "Not found"})
        retry_key = request.headers.get("X-Line-Retry-Key")
        body = _json_body(request)
        response = self._dispatch(request, endpoint, args, retry_key, body)
        with self.lock:
            self.requests.append(RecordedRequest(request.method, request.path, response.status_code,
                                                 retry_key, None if body is _UNPARSABLE else body))
        return response

    def _dispatch(self, request: Request, endpoint: str, args: dict[str, str],
                  retry_key: str | None, body: Any) -> Response:
        channel = self._channel(request)
        if channel is None:
            return _answer(401, {"message": "Authentication failed. Confirm that the access token in the "
                                            "authorization header is valid."})
        if retry_key is not None:
            if endpoint not in ("push", "multicast"):
                return _answer(400, {"message": "X-Line-Retry-Key is not supported by this API"})
            if not _is_uuid(retry_key):
                return _answer(400, {"message": "The value of the X-Line-Retry-Key header is invalid"})
        limit = {"multicast": self.rate_limit, "push": self.push_rate_limit}.get(endpoint)
        if self.over_rate((channel.token, endpoint), limit):
            return _answer(429, {"message": "The API rate limit has been exceeded. Try again later."})
        fault = self.take_fault()
        if fault is not None and not fault.after_delivery:
            return _fault(fault)
        if endpoint == "info":
            return _answer(200, {"userId": channel.bot_user_id, "basicId": channel.basic_id,
                                 "displayName": channel.display_name, "chatMode": "bot",
                                 "markAsReadMode": "auto"})
        if endpoint == "profile":
            return self._profile(args["user_id"])
        response = self._send(endpoint, channel, retry_key, body)
        if fault is not None and response.status_code == 200:
            return _fault(fault)
        return response

    def _channel(self, request: Request) -> _Channel | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            return self._channels.get(token) if scheme == "Bearer" else None

    def _profile(self, line_user_id: str) -> Response:
        with self.lock:
            profile = self._profiles.get(line_user_id)
        if profile is None:
            return _answer(404, {"message": "Not found"})
        return _answer(200, {"displayName": profile.display_name, "userId": line_user_id,
                             "language": profile.language})

    def _send(self, endpoint: str, channel: _Channel, retry_key: str | None, body: Any) -> Response:
        if body is _UNPARSABLE:
            return _answer(400, {"message": "The request body could not be parsed as JSON"})
        errors = _validate_send(endpoint, body)
        if errors.items:
            return _answer(400, {"message": f"The request body has {len(errors.items)} error(s)",
                                 "details": [{"message": m, "property": p} for p, m in errors.items]})
        request_id = uuid.uuid4().hex
        with self.lock:
            if retry_key is not None:
                earlier = self._accepted.get((channel.token, retry_key))
                if earlier is not None:
                    return _answer(409, {"message": "The retry key is already accepted"},
                                   {"x-line-accepted-request-id": earlier})
                self._accepted[(channel.token, retry_key)] = request_id
            if endpoint == "reply":
                if body["replyToken"] in self._replies:
                    return _answer(400, {"message": "Invalid reply token"})
                self._replies[body["replyToken"]] = list(body["messages"])
            else:
                recipients = body["to"] if endpoint == "multicast" else [body["to"]]
                for recipient in recipients:
                    if recipient not in self._blocked:
                        self._delivered.setdefault(recipient, []).extend(body["messages"])
        if endpoint in ("push", "reply"):
            sent = [{"id": str(int(time.time() * 1000)), "quoteToken": uuid.uuid4().hex}
                    for _ in body["messages"]]
            return _answer(200, {"sentMessages": sent}, request_id=request_id)
        return _answer(200, {}, request_id=request_id)


def _json_body(request: Request) -> Any:
    """The JSON body of a POST (None for GET), or _UNPARSABLE as LINE refuses anything else."""
    if request.method != "POST":
        return None
    if not request.is_json:
        return _UNPARSABLE
    try:
        return json.loads(request.get_data())
    except ValueError:
        return _UNPARSABLE


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _answer(status: int, payload: Any, headers: dict[str, str] | None = None,
            request_id: str | None = None) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), status=status,
                        content_type="application/json")
    response.headers["x-line-request-id"] = request_id or uuid.uuid4().hex
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _fault(fault: Fault) -> Response:
    if fault.status == 429:
        return _answer(429, {"message": "The API rate limit has been exceeded. Try again later."},
                       {"Retry-After": f"{fault.retry_after:g}"})
    return _answer(fault.status, {"message": "An error occurred in the backend server"})


def _validate_send(endpoint: str, body: Any) -> _Errors:
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add("", "Must be an object")
        return errors
    if endpoint == "multicast":
        to = body.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= 500:
            errors.add("to", "Size must be between 1 and 500")
        else:
            for i, recipient in enumerate(to):
                if not isinstance(recipient, str) or not _USER_ID.match(recipient):
                    errors.add(f"to[{i}]", "The property, 'to', in the request body is invalid")
    elif endpoint == "push":
        if not isinstance(body.get("to"), str) or not _PUSH_TARGET.match(body["to"]):
            errors.add("to", "The property, 'to', in the request body is invalid")
    elif not isinstance(body.get("replyToken"), str) or not _REPLY_TOKEN.match(body["replyToken"]):
        errors.add("replyToken", "Invalid reply token")
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        errors.add("messages", "Size must be between 1 and 5")
        return errors
    for i, message in enumerate(messages):
        _validate_message(f"messages[{i}]", message, errors)
    return errors


def _validate_message(prop: str, message: Any, errors: _Errors) -> None:
    if not isinstance(message, dict) or message.get("type") not in _MESSAGE_TYPES:
        errors.add(f"{prop}.type", "Must be one of the following values: " + _MESSAGE_TYPE_NAMES)
        return
    if message["type"] == "text":
        errors.length(f"{prop}.text", message.get("text"), 1, 5000)
    elif message["type"] == "template":
        errors.length(f"{prop}.altText", message.get("altText"), 1, 400)
        _validate_template(f"{prop}.template", message.get("template"), errors)
    if "quickReply" in message:
        items = (message["quickReply"] or {}).get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 13:
            errors.add(f"{prop}.quickReply.items", "Size must be between 1 and 13")
            return
        for i, item in enumerate(items):
            where = f"{prop}.quickReply.items[{i}]"
            if not isinstance(item, dict) or item.get("type") != "action":
                errors.add(f"{where}.type", "Must be one of the following values: action")
            else:
                _validate_action(f"{where}.action", item.get("action"), errors, label_required=True)


def _validate_template(prop: str, template: Any, errors: _Errors) -> None:
    if not isinstance(template, dict) or template.get("type") not in ("buttons", "confirm"):
        errors.add(f"{prop}.type", "Must be one of the following values: buttons, carousel, confirm, "
                                   "image_carousel")
        return
    if template["type"] == "buttons":
        short = "title" in template or "thumbnailImageUrl" in template
        errors.length(f"{prop}.text", template.get("text"), 1, 60 if short else 160)
        errors.length(f"{prop}.title", template.get("title"), 1, 40, required=False)
        low, high = 1, 4
    else:
        errors.length(f"{prop}.text", template.get("text"), 1, 240)
        low, high = 2, 2
    actions = template.get("actions")
    if not isinstance(actions, list) or not low <= len(actions) <= high:
        errors.add(f"{prop}.actions", f"Size must be between {low} and {high}")
        return
    for i, action in enumerate(actions):
        _validate_action(f"{prop}.actions[{i}]", action, errors, label_required=True)


def _validate_action(prop: str, action: Any, errors: _Errors, label_required: bool) -> None:
    if not isinstance(action, dict) or action.get("type") not in ("postback", "message", "uri"):
        errors.add(f"{prop}.type", "Must be one of the following values: message, postback, uri")
        return
    errors.length(f"{prop}.label", action.get("label"), 1, 20, required=label_required)
    if action["type"] == "postback":
        errors.length(f"{prop}.data", action.get("data"), 1, 300)
        errors.length(f"{prop}.displayText", action.get("displayText"), 1, 300, required=False)
    elif action["type"] == "message":
        errors.length(f"{prop}.text", action.get("text"), 1, 300)
    else:
        errors.length(f"{prop}.uri", action.get("uri"), 1, 1000)


def signed_webhook(channel_secret: str, events: list[dict[str, Any]],
                   destination: str | None = None) -> tuple[bytes, str]:
    """A webhook body as LINE posts it and its X-Line-Signature (base64 HMAC-SHA256 of the body)."""
    payload = {"destination": destination or user_id(0xB07), "events": events}
    body = json.dumps(payload, ensure_ascii=False).encode()
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return body, base64.b64encode(digest).decode()


def webhook_event_id() -> str:
    """A ULID, the format of LINE's webhookEventId."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _event(kind: str, line_user_id: str, *, redelivery: bool, event_id: str | None,
           timestamp_ms: int | None, reply_token: str | None, replyable: bool = True) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "source": {"type": "user", "userId": line_user_id},
        "webhookEventId": event_id or webhook_event_id(),
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if replyable:
        event["replyToken"] = reply_token or uuid.uuid4().hex
    return event


def postback_event(line_user_id: str, data: str, *, redelivery: bool = False, event_id: str | None = None,
                   timestamp_ms: int | None = None, reply_token: str | None = None) -> dict[str, Any]:
    """The event LINE sends when the user taps a postback button (our OK button)."""
    event = _event("postback", line_user_id, redelivery=redelivery, event_id=event_id,
                   timestamp_ms=timestamp_ms, reply_token=reply_token)
    event["postback"] = {"data": data}
    return event


def follow_event(line_user_id: str, *, unblocked: bool = False, redelivery: bool = False,
                 event_id: str | None = None, timestamp_ms: int | None = None,
                 reply_token: str | None = None) -> dict[str, Any]:
    """The user added the account as a friend (or unblocked it)."""
    event = _event("follow", line_user_id, redelivery=redelivery, event_id=event_id,
                   timestamp_ms=timestamp_ms, reply_token=reply_token)
    event["follow"] = {"isUnblocked": unblocked}
    return event


def unfollow_event(line_user_id: str, *, redelivery: bool = False, event_id: str | None = None,
                   timestamp_ms: int | None = None) -> dict[str, Any]:
    """The user blocked the account; LINE gives no reply token for it."""
    return _event("unfollow", line_user_id, redelivery=redelivery, event_id=event_id,
                  timestamp_ms=timestamp_ms, reply_token=None, replyable=False)


def text_message_event(line_user_id: str, text: str, *, redelivery: bool = False,
                       event_id: str | None = None, timestamp_ms: int | None = None,
                       reply_token: str | None = None) -> dict[str, Any]:
    """The user sent a text (a link code, or "はい")."""
    event = _event("message", line_user_id, redelivery=redelivery, event_id=event_id,
                   timestamp_ms=timestamp_ms, reply_token=reply_token)
    event["message"] = {"type": "text", "id": str(int(time.time() * 1000)), "text": text,
                        "quoteToken": uuid.uuid4().hex}
    return event
