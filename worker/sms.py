"""The SMS channel: one Twilio message per recipient, through the official client (twilio 9)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from worker.channels import Batch, ChannelCredentials, Recipient, SendResult
from worker.ratelimit import retry_after_seconds

# The number can never be reached this way: invalid (21211, 21217 for calls), replied STOP (21610),
# unreachable or not a mobile (21612, 21614, 21635). The engine falls back to the next channel.
BLOCKED_CODES = frozenset({21211, 21217, 21610, 21612, 21614, 21635})


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
                                error=f"Twilio unreachable: {type(exc).__name__}")
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
    if exc.status == 429 or exc.status >= 500:
        return SendResult(recipient.delivery_id, "retry", error=error, retry_after=retry_after)
    return SendResult(recipient.delivery_id, "failed", error=error)


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
