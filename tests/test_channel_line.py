"""The LINE adapter through line-bot-sdk against the fake Messaging API, over real HTTP."""

from __future__ import annotations

import uuid

import pytest
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.webhooks import FollowEvent, MessageEvent, PostbackEvent, UnfollowEvent

from tests.fakes.line import (
    MULTICAST,
    PUSH,
    LineFake,
    follow_event,
    postback_event,
    signed_webhook,
    text_message_event,
    unfollow_event,
    user_id,
)
from worker.channels import Batch, ChannelCredentials, Message, Recipient
from worker.line import MAX_MULTICAST, LineAdapter, bot_info

TOKEN = "line-channel-token-0123456789"
CREDENTIALS = ChannelCredentials("musashino", line_channel_access_token=TOKEN)
CHECK = Message("おはようございます。お元気ですか?", answer_data="check=42")


@pytest.fixture
def line(line_fake: LineFake) -> LineFake:
    line_fake.add_channel(TOKEN)
    return line_fake


def batch(users: list[str], message: Message = CHECK, first_id: int = 1) -> Batch:
    recipients = [Recipient(first_id + i, u) for i, u in enumerate(users)]
    return Batch(message, recipients, retry_key=str(uuid.uuid4()))


def ok_postbacks(message: dict) -> list[str]:
    """The postback data of every button and quick reply of one LINE message object."""
    actions = [i["action"] for i in message.get("quickReply", {}).get("items", [])]
    actions += message.get("template", {}).get("actions", [])
    return [a["data"] for a in actions if a["type"] == "postback"]


def test_twelve_hundred_residents_get_one_check_each(line):
    """Does a round to 1,200 residents, split into batches of 500, make 3 requests and reach everyone once?"""
    users = [user_id(n) for n in range(1200)]
    adapter = LineAdapter(line.url)
    results = []
    for start in range(0, len(users), MAX_MULTICAST):
        results += adapter.send(CREDENTIALS, batch(users[start:start + MAX_MULTICAST], first_id=start))

    assert len(line.accepted(MULTICAST)) == 3
    assert [r.delivery_id for r in results] == list(range(1200))
    assert {r.status for r in results} == {"sent"}
    for user in users:
        received = line.delivered_to(user)
        assert len(received) == 1
        assert ok_postbacks(received[0]) == ["check=42", "check=42"]
        assert received[0]["template"]["actions"][0]["label"] == "元気です"


def test_a_batch_over_the_multicast_limit_is_refused(line):
    """Does the adapter refuse 501 recipients instead of letting LINE reject the whole request?"""
    with pytest.raises(ValueError):
        LineAdapter(line.url).send(CREDENTIALS, batch([user_id(n) for n in range(MAX_MULTICAST + 1)]))
    assert line.requests == []


def test_a_retried_batch_is_not_delivered_twice(line):
    """LINE delivered but the answer was lost: does a retry with the same key count as sent, once?"""
    users = [user_id(n) for n in range(3)]
    same = batch(users)
    adapter = LineAdapter(line.url)
    line.fail_next(1, status=500, after_delivery=True)

    first = adapter.send(CREDENTIALS, same)
    again = adapter.send(CREDENTIALS, same)

    assert {r.status for r in first} == {"retry"}
    assert {r.status for r in again} == {"sent"}
    assert [r.status for r in line.requests] == [500, 409]
    accepted_id = again[0].provider_ref
    assert accepted_id
    for user in users:
        assert len(line.delivered_to(user)) == 1


def test_a_timed_out_send_retried_with_its_key_reaches_each_user_once():
    """The request timed out on our side but LINE went on: does the retry deliver nothing new?"""
    with LineFake([TOKEN], latency_ms=300) as slow:
        users = [user_id(n) for n in range(2)]
        same = batch(users)
        timed_out = LineAdapter(slow.url, timeout=(1, 0.05)).send(CREDENTIALS, same)
        retried = LineAdapter(slow.url).send(CREDENTIALS, same)

        assert {r.status for r in timed_out} == {"retry"}
        assert {r.status for r in retried} == {"sent"}
        assert all(len(slow.delivered_to(u)) == 1 for u in users)


def test_throttled_send_is_retried_after_what_line_asked(line):
    """When LINE answers 429 with Retry-After, does the engine learn to wait that long?"""
    line.throttle_next(1, retry_after=7)
    results = LineAdapter(line.url).send(CREDENTIALS, batch([user_id(1), user_id(2)]))

    assert [(r.status, r.retry_after) for r in results] == [("retry", 7.0), ("retry", 7.0)]
    assert line.delivered_to(user_id(1)) == []


def test_exceeding_the_channel_rate_limit_is_a_retry_and_a_violation(line):
    """Does going over LINE's per-channel rate come back as retry (and show in the fake's count)?"""
    line.rate_limit = 2
    adapter = LineAdapter(line.url)
    statuses = [adapter.send(CREDENTIALS, batch([user_id(1), user_id(2)]))[0].status for _ in range(3)]

    assert statuses == ["sent", "sent", "retry"]
    assert line.violations == 1


def test_server_error_is_retried_and_the_retry_delivers(line):
    """After a 500 that delivered nothing, does the same batch go out on the retry?"""
    same = batch([user_id(1), user_id(2)])
    line.fail_next(1, status=500)
    adapter = LineAdapter(line.url)

    assert {r.status for r in adapter.send(CREDENTIALS, same)} == {"retry"}
    assert {r.status for r in adapter.send(CREDENTIALS, same)} == {"sent"}
    assert len(line.delivered_to(user_id(1))) == 1


def test_unreachable_line_is_retried():
    """If LINE cannot be reached at all, is the batch kept for a retry rather than failed?"""
    results = LineAdapter("http://127.0.0.1:1").send(CREDENTIALS, batch([user_id(1)]))
    assert results[0].status == "retry"
    assert "127.0.0.1" not in (results[0].error or "")


def test_wrong_token_fails_without_leaking_it(line):
    """With a revoked channel token, is the send failed, and is the token kept out of the error?"""
    secret = "revoked-token-SECRET-value"
    credentials = ChannelCredentials("musashino", line_channel_access_token=secret)
    results = LineAdapter(line.url).send(credentials, batch([user_id(1), user_id(2)]))

    assert {r.status for r in results} == {"failed"}
    for result in results:
        assert "401" in (result.error or "")
        assert secret not in (result.error or "")
        assert CHECK.text not in (result.error or "")


def test_a_long_check_still_carries_the_ok_button(line):
    """Is a check longer than a buttons template allows sent as text with the OK quick reply?"""
    long = Message("地震がありました。" * 20, answer_data="round=7", answer_label="無事です")
    results = LineAdapter(line.url).send(CREDENTIALS, batch([user_id(5)], long))

    assert results[0].status == "sent"
    assert line.accepted(PUSH), "a single recipient goes out as push"
    [received] = line.delivered_to(user_id(5))
    assert received["type"] == "text"
    assert ok_postbacks(received) == ["round=7"]
    assert received["quickReply"]["items"][0]["action"]["label"] == "無事です"


def test_a_notice_without_an_answer_is_plain_text(line):
    """Is a message that asks for no answer (a thank-you) sent without buttons?"""
    notice = Message("ご回答ありがとうございました。")
    LineAdapter(line.url).send(CREDENTIALS, batch([user_id(1), user_id(2)], notice))
    assert line.delivered_to(user_id(2)) == [{"type": "text", "text": "ご回答ありがとうございました。"}]


def test_connection_check_reads_the_bot(line):
    """Can the "test connection" button see which LINE account a token belongs to?"""
    info = bot_info(line.url, TOKEN)
    assert info["display_name"] == "見守りサービス"
    assert str(info["user_id"]).startswith("U")


def test_webhook_builders_match_what_the_sdk_parses():
    """Do the fake's signed webhooks parse with LINE's own SDK, and fail with another secret?"""
    events = [postback_event(user_id(1), "check=42"), follow_event(user_id(2)),
              unfollow_event(user_id(3)), text_message_event(user_id(4), "123456")]
    body, signature = signed_webhook("channel-secret", events)

    parsed = WebhookParser("channel-secret").parse(body.decode(), signature)

    assert [type(e) for e in parsed] == [PostbackEvent, FollowEvent, UnfollowEvent, MessageEvent]
    assert parsed[0].postback.data == "check=42"
    assert parsed[0].source.user_id == user_id(1)
    assert parsed[0].delivery_context.is_redelivery is False
    with pytest.raises(InvalidSignatureError):
        WebhookParser("another-secret").parse(body.decode(), signature)
