"""A fake Twilio REST API 2010-04-01 (Messages, Calls, Account) and builders of Twilio's webhooks.

It answers as api.twilio.com does: HTTP Basic auth with the account SID and auth token, form-encoded
requests, JSON resources (`SM…`/`CA…` SIDs, `queued`), list pages, and Twilio's error JSON
(`code`, `message`, `more_info`, `status`). Point the official client at it with
`client.api.base_url = fake.url`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.base import FakeServer, Fault

API_VERSION = "2010-04-01"
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_URL = re.compile(r"^https?://[^\s/]+")

_routes = Map([
    Rule(f"/{API_VERSION}/Accounts/<sid>.json", endpoint="account", methods=["GET"]),
    Rule(f"/{API_VERSION}/Accounts/<sid>/Messages.json", endpoint="messages", methods=["GET", "POST"]),
    Rule(f"/{API_VERSION}/Accounts/<sid>/Messages/<item>.json", endpoint="message", methods=["GET"]),
    Rule(f"/{API_VERSION}/Accounts/<sid>/Calls.json", endpoint="calls", methods=["GET", "POST"]),
    Rule(f"/{API_VERSION}/Accounts/<sid>/Calls/<item>.json", endpoint="call", methods=["GET"]),
])


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


@dataclass
class SentMessage:
    """A message Twilio accepted, with the StatusCallback it will post to."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    created: datetime
    status: str = "queued"
    sent: datetime | None = None

    def resource(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        per_segment = (160, 153) if self.body.isascii() else (70, 67)
        segments = 1 if len(self.body) <= per_segment[0] else -(-len(self.body) // per_segment[1])
        return {
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": self.body,
            "date_created": _rfc2822(self.created), "date_sent": _rfc2822(self.sent),
            "date_updated": _rfc2822(self.sent or self.created), "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": self.from_, "messaging_service_sid": None,
            "num_media": "0", "num_segments": str(segments), "price": None, "price_unit": "USD",
            "sid": self.sid, "status": self.status, "to": self.to, "uri": f"{uri}.json",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        }


@dataclass
class PlacedCall:
    """A call Twilio accepted: the TwiML it fetches (`url`) or runs (`twiml`) and its callbacks."""

    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    twiml: str | None
    status_callback: str | None
    status_callback_events: list[str]
    created: datetime
    status: str = "queued"
    started: datetime | None = None

    def resource(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": None,
            "api_version": API_VERSION, "caller_name": None, "date_created": _rfc2822(self.created),
            "date_updated": _rfc2822(self.started or self.created), "direction": "outbound-api",
            "duration": None, "end_time": None, "forwarded_from": None, "from": self.from_,
            "from_formatted": self.from_, "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": None, "price": None, "price_unit": "USD", "queue_time": "0",
            "sid": self.sid, "start_time": _rfc2822(self.started), "status": self.status,
            "to": self.to, "to_formatted": self.to, "trunk_sid": None, "uri": f"{uri}.json",
            "subresource_uris": {"notifications": f"{uri}/Notifications.json",
                                 "recordings": f"{uri}/Recordings.json"},
        }


@dataclass
class RecordedRequest:
    method: str
    path: str
    status: int
    params: dict[str, list[str]] = field(default_factory=dict)
    # When the fake answered (time.time()), so a benchmark can tell when the last send landed.
    at: float = field(default_factory=time.time)


class TwilioFake(FakeServer):
    """Twilio's REST API on a local port; tell it the accounts (SID → auth token) it accepts.

    Numbers in `invalid_numbers` answer 21211, `unsubscribed_numbers` (replied STOP) 21610 and
    `landline_numbers` 21614 for SMS. `message_rate` / `call_rate` are creations per second per
    account; over them the fake answers 429 (20429) and counts `violations`.

    `fail_next` and `throttle_next` apply to the next creations (POST); `fail_lists` to the
    next reads of a list or a record. `on_accept(n)`, if set, runs once a creation is stored and
    before it is answered, with the number accepted so far: a test kills a worker there, as if
    the worker died with Twilio's answer on its way.
    """

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        latency_ms: float = 0,
        message_rate: float | None = None,
        call_rate: float | None = None,
        invalid_numbers: Iterable[str] = (),
        unsubscribed_numbers: Iterable[str] = (),
        landline_numbers: Iterable[str] = (),
    ) -> None:
        super().__init__(latency_ms)
        self.message_rate = message_rate
        self.call_rate = call_rate
        self.invalid_numbers = set(invalid_numbers)
        self.unsubscribed_numbers = set(unsubscribed_numbers)
        self.landline_numbers = set(landline_numbers)
        self.messages: list[SentMessage] = []
        self.calls: list[PlacedCall] = []
        self.requests: list[RecordedRequest] = []
        self.on_accept: Callable[[int], None] | None = None
        self._read_faults: deque[int] = deque()
        self._reads_failing: int | None = None
        self._accounts = dict(accounts or {})

    def add_account(self, account_sid: str, auth_token: str) -> None:
        with self.lock:
            self._accounts[account_sid] = auth_token

    def messages_to(self, number: str) -> list[SentMessage]:
        with self.lock:
            return [m for m in self.messages if m.to == number]

    def calls_to(self, number: str) -> list[PlacedCall]:
        with self.lock:
            return [c for c in self.calls if c.to == number]

    def age(self, elapsed: timedelta) -> None:
        """Let `elapsed` pass for everything accepted so far: its timestamps move that far back."""
        with self.lock:
            for message in self.messages:
                message.created -= elapsed
                message.sent = message.sent - elapsed if message.sent else None
            for call in self.calls:
                call.created -= elapsed
                call.started = call.started - elapsed if call.started else None

    def fail_lists(self, n: int | None = 1, status: int = 500) -> None:
        """Answer the next `n` reads (lists, fetches) with `status`; every read while n is None,
        until `recover_lists()`."""
        with self.lock:
            if n is None:
                self._reads_failing = status
            else:
                self._read_faults.extend([status] * n)

    def recover_lists(self) -> None:
        with self.lock:
            self._reads_failing = None
            self._read_faults.clear()

    def _read_fault(self) -> int | None:
        with self.lock:
            if self._read_faults:
                return self._read_faults.popleft()
            return self._reads_failing

    def _accepted(self, record: SentMessage | PlacedCall) -> None:
        with self.lock:
            if isinstance(record, SentMessage):
                self.messages.append(record)
            else:
                self.calls.append(record)
            accepted = len(self.messages) + len(self.calls)
        if self.on_accept is not None:
            self.on_accept(accepted)

    def handle(self, request: Request) -> Response:
        params = request.form if request.method == "POST" else request.args
        response = self._dispatch(request, params)
        with self.lock:
            self.requests.append(RecordedRequest(request.method, request.path, response.status_code,
                                                 params.to_dict(flat=False)))
        return response

    def _dispatch(self, request: Request, params: MultiDict[str, str]) -> Response:
        try:
            endpoint, args = _routes.bind_to_environ(request.environ).match()
        except HTTPException:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        auth = request.authorization
        with self.lock:
            known = auth is not None and self._accounts.get(auth.username or "") == auth.password
        if not known:
            return _error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'},
                          detail="Your AccountSid or AuthToken was incorrect.")
        if auth is None or auth.username != args["sid"]:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        creating = request.method == "POST"
        limit = {"messages": self.message_rate, "calls": self.call_rate}.get(endpoint) if creating else None
        if self.over_rate((args["sid"], endpoint), limit):
            return _error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
        if not creating:
            failing = self._read_fault()
            if failing is not None:
                return _fault(Fault(failing))
            if endpoint == "account":
                return self._account(args["sid"], auth.password or "")
            if endpoint in ("message", "call"):
                return self._fetch(endpoint, args["sid"], args["item"], request.path)
            return self._list(endpoint, args["sid"], params)
        fault = self.take_fault()
        if fault is not None and not fault.after_delivery:
            return _fault(fault)
        create = self._create_message if endpoint == "messages" else self._create_call
        response = create(args["sid"], params)
        if fault is not None and response.status_code == 201:
            return _fault(fault)
        return response

    def _account(self, sid: str, token: str) -> Response:
        base = f"/{API_VERSION}/Accounts/{sid}"
        return _json(200, {
            "auth_token": token, "date_created": _rfc2822(datetime(2024, 4, 1, tzinfo=UTC)),
            "date_updated": _rfc2822(datetime(2024, 4, 1, tzinfo=UTC)), "friendly_name": "Mimamori test",
            "owner_account_sid": sid, "sid": sid, "status": "active", "type": "Full",
            "subresource_uris": {"messages": f"{base}/Messages.json", "calls": f"{base}/Calls.json"},
            "uri": f"{base}.json",
        })

    def _create_message(self, account_sid: str, params: MultiDict[str, str]) -> Response:
        to, from_, body = params.get("To", ""), params.get("From", ""), params.get("Body", "")
        callback = params.get("StatusCallback")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not params.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not params.get("MediaUrl"):
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if callback is not None and not _URL.match(callback):
            return _error(400, 21609, "The StatusCallback URL is not a valid URL.")
        refused = self._refused(to)
        if refused is not None:
            return refused
        if to in self.landline_numbers:
            return _error(400, 21614, f"'To' number {to} is not a valid mobile number")
        message = SentMessage(_sid("SM"), account_sid, to, from_, body, callback, datetime.now(UTC))
        created = message.resource()
        message.status, message.sent = "sent", message.created
        self._accepted(message)
        return _json(201, created)

    def _create_call(self, account_sid: str, params: MultiDict[str, str]) -> Response:
        to, from_ = params.get("To", ""), params.get("From", "")
        url, twiml, callback = params.get("Url"), params.get("Twiml"), params.get("StatusCallback")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not url and not twiml and not params.get("ApplicationSid"):
            return _error(400, 21205, "Url parameter is required.")
        if url is not None and not _URL.match(url):
            return _error(400, 21205, "Url is not a valid URL.")
        if callback is not None and not _URL.match(callback):
            return _error(400, 21609, "The StatusCallback URL is not a valid URL.")
        refused = self._refused(to)
        if refused is not None:
            return refused
        call = PlacedCall(_sid("CA"), account_sid, to, from_, url, twiml, callback,
                          params.getlist("StatusCallbackEvent"), datetime.now(UTC))
        created = call.resource()
        call.status, call.started = "ringing", call.created
        self._accepted(call)
        return _json(201, created)

    def _refused(self, to: str) -> Response | None:
        if not _E164.match(to) or to in self.invalid_numbers:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.unsubscribed_numbers:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def _fetch(self, kind: str, account_sid: str, item: str, path: str) -> Response:
        with self.lock:
            records: list[Any] = self.messages if kind == "message" else self.calls
            found = next((r for r in records if r.sid == item and r.account_sid == account_sid), None)
        if found is None:
            return _error(404, 20404, f"The requested resource {path} was not found")
        return _json(200, found.resource())

    def _list(self, kind: str, account_sid: str, params: MultiDict[str, str]) -> Response:
        """A page of the account's messages or calls, filtered and newest first, as Twilio lists:
        messages by To, From and DateSent (sorted by DateSent; unsent ones first), calls by To,
        From, Status, ParentCallSid, StartTime and EndTime (sorted by DateUpdated). A date
        filter never matches a record without that date. Pages follow each other by PageToken
        (`PA` + the SID a page ends with, `PB` + the SID the next page back begins with); Page
        only echoes what the client says."""
        try:
            if kind == "messages":
                filters = [_date_filter(params, "DateSent", lambda m: m.sent)]
            else:
                filters = [_date_filter(params, "StartTime", lambda c: c.started),
                           _date_filter(params, "EndTime", lambda c: None)]
            size = int(params.get("PageSize", 50))
            page = int(params.get("Page", 0))
        except ValueError as exc:
            return _error(400, 20001, f"Invalid parameter: {exc}")
        if not 1 <= size <= 1000 or page < 0:
            return _error(400, 20001, "PageSize must be between 1 and 1000")
        fields = {"To": "to", "From": "from_"}
        if kind == "calls":
            fields.update(Status="status", ParentCallSid="parent_call_sid")
        with self.lock:
            records: list[Any] = list(self.messages if kind == "messages" else self.calls)
        order = list(enumerate(records))

        def newest_first(item: tuple[int, Any]) -> tuple[datetime, int]:
            number, record = item
            if kind == "messages":
                moment = record.sent or datetime.max.replace(tzinfo=UTC)
            else:
                moment = record.started or record.created
            return moment, number

        matching = [r for _, r in sorted(order, key=newest_first, reverse=True)
                    if r.account_sid == account_sid
                    and all(params.get(name) in (None, getattr(r, attribute, None))
                            for name, attribute in fields.items())
                    and all(keep(r) for keep in filters)]
        token = params.get("PageToken")
        sids = [r.sid for r in matching]
        if token is None:
            start = 0
        elif token[:2] in ("PA", "PB") and token[2:] in sids:
            at = sids.index(token[2:])
            start = at + 1 if token.startswith("PA") else max(at - size, 0)
        else:
            return _error(400, 20001, f"Invalid PageToken: {token}")
        items = matching[start:start + size]
        kept = [(k, v) for k, v in params.items(multi=True) if k not in ("PageSize", "Page", "PageToken")]
        base = f"/{API_VERSION}/Accounts/{account_sid}/{kind.capitalize()}.json"

        def page_uri(number: int, page_token: str | None = None) -> str:
            extra = [("PageToken", page_token)] if page_token else []
            return f"{base}?{urlencode([*kept, ('PageSize', size), ('Page', number), *extra])}"

        more = start + size < len(matching)
        return _json(200, {
            kind: [r.resource() for r in items], "end": start + max(len(items) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, f"PA{items[-1].sid}") if more and items else None,
            "page": page, "page_size": size,
            "previous_page_uri": page_uri(page - 1, f"PB{items[0].sid}") if start and items else None,
            "start": start, "uri": page_uri(page, token),
        })


def _date_filter(params: MultiDict[str, str], name: str,
                 moment: Callable[[Any], datetime | None]) -> Callable[[Any], bool]:
    bounds = _date_bounds(params, name)
    if bounds is None:
        return lambda record: True
    low, high = bounds
    return lambda record: (when := moment(record)) is not None and low <= when <= high


def _date_bounds(params: MultiDict[str, str], name: str) -> tuple[datetime, datetime] | None:
    """Twilio's `DateSent>=` arrives as the key `DateSent>` (the `=` separates the value): inclusive."""
    low, high = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    exact, after, before = params.get(name), params.get(f"{name}>"), params.get(f"{name}<")
    if exact is None and after is None and before is None:
        return None
    if exact is not None:
        low, high = _day_start(exact), _day_start(exact) + timedelta(days=1, microseconds=-1)
    if after is not None:
        low = max(low, _instant(after, end=False))
    if before is not None:
        high = min(high, _instant(before, end=True))
    return low, high


def _day_start(value: str) -> datetime:
    day = date.fromisoformat(value[:10])
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _instant(value: str, end: bool) -> datetime:
    if len(value) == 10:
        return _day_start(value) + (timedelta(days=1, microseconds=-1) if end else timedelta())
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), status=status,
                        content_type="application/json")
    response.headers["Twilio-Request-Id"] = _sid("RQ")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None,
           detail: str | None = None) -> Response:
    payload: dict[str, Any] = {"code": code, "message": message,
                               "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    if detail is not None:
        payload["detail"] = detail
    return _json(status, payload, headers)


def _fault(fault: Fault) -> Response:
    if fault.status == 429:
        return _error(429, 20429, "Too Many Requests", {"Retry-After": f"{fault.retry_after:g}"})
    if fault.status == 503:
        return _error(503, 20503, "Service Unavailable")
    return _error(fault.status, 20500, "An internal server error has occurred")


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a webhook POST of form `params` to `url`, as Twilio computes it."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def message_status(message: SentMessage, status: str, error_code: int | None = None) -> dict[str, str]:
    """The form Twilio posts to a message's StatusCallback (sent, delivered, undelivered, failed)."""
    params = {"MessageSid": message.sid, "SmsSid": message.sid, "MessageStatus": status,
              "SmsStatus": status, "AccountSid": message.account_sid, "From": message.from_,
              "To": message.to, "ApiVersion": API_VERSION}
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


def call_status(call: PlacedCall, status: str, *, answered_by: str | None = None,
                duration: int | None = None, sequence: int = 0) -> dict[str, str]:
    """The form Twilio posts to a call's StatusCallback, or to its Url when the call is answered.

    `status` is a CallStatus (initiated, ringing, in-progress, completed, busy, no-answer,
    failed, canceled); `answered_by` (human, machine_start, ...) comes with machine detection.
    """
    params = {"CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_, "To": call.to,
              "CallStatus": status, "Direction": "outbound-api", "ApiVersion": API_VERSION,
              "CallbackSource": "call-progress-events", "SequenceNumber": str(sequence),
              "Timestamp": format_datetime(datetime.now(UTC))}
    if answered_by is not None:
        params["AnsweredBy"] = answered_by
    if duration is not None:
        params["CallDuration"] = params["Duration"] = str(duration)
    return params


def gather_digits(call: PlacedCall, digits: str) -> dict[str, str]:
    """The form Twilio posts to a <Gather> action URL after the callee pressed `digits`."""
    return {"CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_, "To": call.to,
            "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": API_VERSION,
            "Digits": digits, "FinishedOnKey": ""}


def inbound_sms(from_: str, to: str, body: str, account_sid: str) -> dict[str, str]:
    """The form Twilio posts to a number's messaging webhook when someone texts it."""
    sid = _sid("SM")
    return {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": account_sid,
            "From": from_, "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1",
            "SmsStatus": "received", "ApiVersion": API_VERSION}
