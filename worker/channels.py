"""The one small interface every channel adapter (line, sms, voice, sandbox) implements.

The engine writes a `deliveries` row for every attempt before it calls an adapter and updates it
from the `SendResult` afterwards, so adapters never touch the database themselves.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

SendStatus = Literal["sent", "failed", "blocked", "retry"]


@dataclass(frozen=True)
class ChannelCredentials:
    """What an adapter needs of a tenant, decrypted; never logged."""

    tenant_slug: str
    line_channel_access_token: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None


@dataclass(frozen=True)
class Message:
    """The same content for every recipient of a batch (so LINE can multicast it).

    `answer_data` is the postback data of LINE's OK button; SMS and voice say how to answer in
    `text` and `voice_text`. `callback_url` is where Twilio posts status callbacks; `gather_url`
    is the TwiML URL a voice call fetches.
    """

    text: str
    answer_data: str | None = None
    answer_label: str = "元気です"
    voice_text: str | None = None
    callback_url: str | None = None
    gather_url: str | None = None


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    address: str  # a LINE user id, or a phone number in E.164


@dataclass(frozen=True)
class SendResult:
    """What happened to one recipient.

    `sent`: accepted by the provider (`provider_ref` is the message or call SID / request id).
    `blocked`: this address can never be reached this way (LINE unfollow, invalid number):
    the engine falls back to the next channel. `failed`: a permanent error for this attempt.
    `retry`: a transient error (5xx, 429, timeout); `retry_after` seconds when the provider said.
    `uncertain`: the request may have reached the provider before it failed (a 5xx, a reply that
    never came), so it may have been sent: it is looked up before it is tried again.
    """

    delivery_id: int
    status: SendStatus
    provider_ref: str | None = None
    error: str | None = None
    retry_after: float | None = None
    uncertain: bool = False


@dataclass(frozen=True)
class Batch:
    """Recipients sharing one message; `retry_key` is stored on their deliveries before sending."""

    message: Message
    recipients: list[Recipient] = field(default_factory=list)
    retry_key: str | None = None


class ChannelAdapter(Protocol):
    name: str

    def send(self, credentials: ChannelCredentials, batch: Batch) -> list[SendResult]:
        """Send one batch and report every recipient; raise nothing for provider errors."""
        ...


class LookupUnavailable(Exception):
    """The provider could not say what it sent (5xx, 429, timeout, unreachable)."""


@runtime_checkable
class FindsSent(Protocol):
    """An adapter whose provider has no idempotency key (Twilio) but lists what it accepted."""

    def find_sent(self, credentials: ChannelCredentials, recipient: Recipient, message: Message,
                  since: datetime, until: datetime, taken: Collection[str]) -> str | None:
        """The reference of the oldest message or call this `message` to `recipient` made
        between `since` and `until`, leaving out references in `taken` (other deliveries');
        None when there is none. Raises `LookupUnavailable` when the provider cannot say."""
        ...
