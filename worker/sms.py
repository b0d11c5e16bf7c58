"""The SMS channel: one Twilio message per recipient, through the official client (twilio 9)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from worker.channels import (
    Batch,
    ChannelCredentials,
    LookupUnavailable,
    Message,
    Recipient,
    SendResult,
)
from worker.ratelimit import retry_after_seconds

# The number can never be reached this way: invalid (21211, 21217 for calls), replied STOP (21610),
# unreachable or not a mobile (21612, 21614, 21635). The engine falls back to the next channel.
BLOCKED_CODES = frozenset({21211, 21217, 21610, 21612, 21614, 21635})
# Twilio lists the newest first, 50 to a page; a person gets a few of our messages a day, so a
# look-up reads a page or two. Records this much older than the window end the search (Twilio
# sorts messages by DateSent, which can trail DateCreated while a message is queued).
LOOKUP_PAGE_SIZE = 50
LOOKUP_MAX_RECORDS = 500
LOOKUP_SORT_SLACK = timedelta(hours=1)


class _HttpClient(TwilioHttpClient):
    """Remembers each thread's last Retry-After, which TwilioRestException does not carry."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._last = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._last.retry_after = None
        response = super().request(*args, **kwargs)
        self._last.retry_after = retry_after_seconds((response.headers or {}).get("Retry-After"))
        return response

    def last_retry_after(self) -> float | None:
        return getattr(self._last, "retry_after", None)


# One connection pool for every account; the timeout keeps a stalled Twilio from holding a worker.
_http_client = _HttpClient(timeout=15)
_clients: dict[tuple[str, str, str], Client] = {}
_clients_lock = threading.Lock()


def twilio_client(api_base_url: str, account_sid: str, auth_token: str) -> Client:
    """The official client for one account, sending to `api_base_url` (TWILIO_API_BASE_URL)."""
    key = (api_base_url.rstrip("/"), account_sid, auth_token)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = Client(account_sid, auth_token, http_client=_http_client)
            # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite every URL's host.
            client.edge = client.region = None
            client.api.base_url = key[0]
            # The SDK loads its API modules on first use: now, not inside a paced send's slot.
            client.messages, client.calls  # noqa: B018
            _clients[key] = client
    return client


def send_each(api_base_url: str, credentials: ChannelCredentials, batch: Batch,
              create: Callable[[Client, str, Recipient], str]) -> list[SendResult]:
    """`create(client, from_number, recipient)` per recipient (it returns the SID), as SendResults.

    After a transient error (429, 5xx, unreachable) the rest of the batch is not attempted:
    they come back as `retry` with the same wait, so Twilio is not hammered while it struggles.
    """
    sid, token, from_number = (credentials.twilio_account_sid, credentials.twilio_auth_token,
                               credentials.twilio_from_number)
    if not (sid and token and from_number):
        return [SendResult(r.delivery_id, "failed", error="Twilio credentials are not configured")
                for r in batch.recipients]
    client = twilio_client(api_base_url, sid, token)
    results: list[SendResult] = []
    deferred: SendResult | None = None
    for recipient in batch.recipients:
        if deferred is not None:
            results.append(SendResult(recipient.delivery_id, "retry", error=deferred.error,
                                      retry_after=deferred.retry_after))
            continue
        try:
            ref = create(client, from_number, recipient)
        except TwilioRestException as exc:
            result = _from_error(recipient, exc, _http_client.last_retry_after())
        except requests.RequestException as exc:
            result = SendResult(recipient.delivery_id, "retry",
                                error=f"Twilio unreachable: {type(exc).__name__}",
                                uncertain=_may_have_arrived(exc))
        else:
            result = SendResult(recipient.delivery_id, "sent", provider_ref=ref)
        if result.status == "retry":
            deferred = result
        results.append(result)
    return results


def _from_error(recipient: Recipient, exc: TwilioRestException, retry_after: float | None) -> SendResult:
    # Twilio's message repeats the phone number; the code says it all (twilio.com/docs/errors/<code>).
    error = f"Twilio {exc.status} error {exc.code}"
    if exc.code in BLOCKED_CODES:
        return SendResult(recipient.delivery_id, "blocked", error=error)
    if exc.status == 429:  # refused before anything was created
        return SendResult(recipient.delivery_id, "retry", error=error, retry_after=retry_after)
    if exc.status >= 500:  # Twilio may have created the message or call before it failed
        return SendResult(recipient.delivery_id, "retry", error=error, retry_after=retry_after,
                          uncertain=True)
    return SendResult(recipient.delivery_id, "failed", error=error)


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """Whether a failed request may have reached Twilio: only a connection never made did not."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(exc, requests.ConnectionError) or not isinstance(
        reason, NewConnectionError)


def find_created(api_base_url: str, credentials: ChannelCredentials, kind: str, to: str,
                 since: datetime, until: datetime, taken: Collection[str],
                 matches: Callable[[Any], bool] = lambda record: True) -> str | None:
    """The SID of the oldest message or call (`kind`) from the tenant's number to `to` that
    Twilio created between `since` and `until`, is not in `taken` and `matches`; None if none.

    Listed by To and From only: DateSent and StartTime are empty while Twilio still queues a
    message or call, so filtering on them could miss the very one searched for."""
    sid, token, from_number = (credentials.twilio_account_sid, credentials.twilio_auth_token,
                               credentials.twilio_from_number)
    if not (sid and token and from_number):
        return None
    client = twilio_client(api_base_url, sid, token)
    listing = client.messages if kind == "messages" else client.calls
    found = None
    try:
        for record in listing.stream(to=to, from_=from_number, page_size=LOOKUP_PAGE_SIZE,
                                     limit=LOOKUP_MAX_RECORDS):
            created = record.date_created
            if created is None:
                continue
            if created < since - LOOKUP_SORT_SLACK:
                break
            if since <= created <= until and record.sid not in taken and matches(record):
                found = record.sid  # the listing is newest first: keep the oldest
    except (TwilioException, requests.RequestException) as exc:
        raise LookupUnavailable(f"Twilio could not list {kind}: {_describe(exc)}") from exc
    return found


def _describe(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        return f"{exc.status} error {exc.code}"
    response = exc.args[1] if isinstance(exc, TwilioException) and len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    return f"HTTP {status}" if status else type(exc).__name__


class SmsAdapter:
    """Texts `Message.text` (which says to reply 1 or はい) with status callbacks to `callback_url`."""

    name = "sms"

    def __init__(self, api_base_url: str) -> None:
        self.api_base_url = api_base_url

    def send(self, credentials: ChannelCredentials, batch: Batch) -> list[SendResult]:
        message = batch.message

        def create(client: Client, from_number: str, recipient: Recipient) -> str:
            created = client.messages.create(to=recipient.address, from_=from_number, body=message.text,
                                             status_callback=message.callback_url)
            return str(created.sid)

        return send_each(self.api_base_url, credentials, batch, create)

    def find_sent(self, credentials: ChannelCredentials, recipient: Recipient, message: Message,
                  since: datetime, until: datetime, taken: Collection[str]) -> str | None:
        """The message this text to `recipient` made, told apart from others by its body."""
        return find_created(self.api_base_url, credentials, "messages", recipient.address, since,
                            until, taken, lambda record: record.body == message.text)
