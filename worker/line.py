"""The LINE channel: a check goes out as one multicast per batch of up to 500 users (line-bot-sdk v3)."""

from __future__ import annotations

import json
import threading

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    ApiResponse,
    ButtonsTemplate,
    Configuration,
    MessagingApi,
    MulticastRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TemplateMessage,
    TextMessage,
)
from linebot.v3.messaging.models import Message as LineMessage

from worker.channels import Batch, ChannelCredentials, Message, Recipient, SendResult, SendStatus
from worker.ratelimit import retry_after_seconds

MAX_MULTICAST = 500
# A buttons template holds at most 160 characters of text; longer checks go out as plain text.
_BUTTONS_TEXT_MAX = 160

# Connections kept per host: a send job has up to this many requests in flight.
POOL_SIZE = 32

_clients: dict[tuple[str, str], ApiClient] = {}
_clients_lock = threading.Lock()


def _messaging_api(host: str, token: str) -> MessagingApi:
    """A MessagingApi on one shared ApiClient per (host, token), so connections are reused."""
    with _clients_lock:
        client = _clients.get((host, token))
        if client is None:
            configuration = Configuration(host=host, access_token=token)
            configuration.connection_pool_maxsize = POOL_SIZE
            client = _clients[(host, token)] = ApiClient(configuration)
    return MessagingApi(client)


def check_message(message: Message) -> LineMessage:
    """The LINE message for `message`: an OK postback button (and quick reply) when it asks for one."""
    if message.answer_data is None:
        return TextMessage(text=message.text)
    action = PostbackAction(label=message.answer_label, data=message.answer_data,
                            display_text=message.answer_label)
    quick_reply = QuickReply(items=[QuickReplyItem(action=action)])
    if len(message.text) > _BUTTONS_TEXT_MAX:
        return TextMessage(text=message.text, quick_reply=quick_reply)
    return TemplateMessage(alt_text=message.text, quick_reply=quick_reply,
                           template=ButtonsTemplate(text=message.text, actions=[action]))


class LineAdapter:
    """Sends batches through the Messaging API at `api_base_url` (LINE_API_BASE_URL)."""

    name = "line"

    def __init__(self, api_base_url: str, timeout: tuple[float, float] = (5, 30)) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout

    def send(self, credentials: ChannelCredentials, batch: Batch) -> list[SendResult]:
        """One request for the whole batch: push for one user, multicast for up to 500.

        `batch.retry_key` (a UUID) goes out as X-Line-Retry-Key, so sending the same batch again
        after a timeout or 5xx never delivers twice: LINE answers 409 and that counts as sent.
        """
        if len(batch.recipients) > MAX_MULTICAST:
            raise ValueError(f"a LINE batch holds at most {MAX_MULTICAST} recipients")
        if not batch.recipients:
            return []
        token = credentials.line_channel_access_token
        if not token:
            return _all(batch.recipients, "failed", error="LINE channel access token is not configured")
        api = _messaging_api(self.api_base_url, token)
        messages = [check_message(batch.message)]
        users = [r.address for r in batch.recipients]
        try:
            response: ApiResponse
            if len(users) == 1:
                response = api.push_message_with_http_info(
                    PushMessageRequest(to=users[0], messages=messages),
                    x_line_retry_key=batch.retry_key, _request_timeout=self.timeout)
            else:
                response = api.multicast_with_http_info(
                    MulticastRequest(to=users, messages=messages),
                    x_line_retry_key=batch.retry_key, _request_timeout=self.timeout)
        except ApiException as exc:
            return _from_error(batch.recipients, exc)
        except urllib3.exceptions.HTTPError as exc:
            return _all(batch.recipients, "retry", error=f"LINE unreachable: {type(exc).__name__}")
        return _all(batch.recipients, "sent", ref=response.headers.get("x-line-request-id"))


def _all(recipients: list[Recipient], status: SendStatus, ref: str | None = None,
         error: str | None = None, retry_after: float | None = None) -> list[SendResult]:
    return [SendResult(r.delivery_id, status, provider_ref=ref, error=error, retry_after=retry_after)
            for r in recipients]


def _from_error(recipients: list[Recipient], exc: ApiException) -> list[SendResult]:
    headers = exc.headers or {}
    status = exc.status or 0
    if status == 409 and headers.get("x-line-accepted-request-id"):
        return _all(recipients, "sent", ref=headers["x-line-accepted-request-id"])
    error = _describe(status, exc.body)
    if status == 429:
        wait = retry_after_seconds(headers.get("Retry-After"))
        return _all(recipients, "retry", error=error, retry_after=wait)
    if status == 0 or status >= 500:
        return _all(recipients, "retry", error=error)
    return _all(recipients, "failed", error=error)


def _describe(status: int, body: object) -> str:
    """LINE's own error message and the properties it names; never our request or token."""
    try:
        payload = json.loads(body) if isinstance(body, (str, bytes)) else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    parts = [str(payload.get("message", ""))]
    parts += [f"{d.get('property')}: {d.get('message')}" for d in payload.get("details") or []
              if isinstance(d, dict)]
    text = "; ".join(p for p in parts if p)
    return f"LINE {status}: {text}"[:300] if text else f"LINE {status}"


def bot_info(host: str, token: str, timeout: tuple[float, float] = (5, 10)) -> dict[str, str | None]:
    """The channel's bot (for a "test connection" button); raises ApiException when LINE refuses."""
    info = _messaging_api(host.rstrip("/"), token).get_bot_info(_request_timeout=timeout)
    return {"user_id": info.user_id, "basic_id": info.basic_id, "display_name": info.display_name,
            "picture_url": info.picture_url}


def reply(host: str, token: str, reply_token: str, text: str,
          timeout: tuple[float, float] = (5, 10)) -> bool:
    """Answer a webhook event with `text`; False when LINE refuses it for good.

    A reply token works once and only for about a minute, so a refused reply is dropped; throttling,
    server errors and network errors raise, so the job is retried while the token may still work.
    """
    try:
        _messaging_api(host.rstrip("/"), token).reply_message(
            ReplyMessageRequest(reply_token=reply_token, messages=[TextMessage(text=text)]),
            _request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 429 or (exc.status or 0) >= 500:
            raise
        return False
    return True
