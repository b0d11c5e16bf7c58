"""The SMS and voice adapters through the twilio client against the fake REST API, and their TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from twilio.request_validator import RequestValidator

from tests.fakes.twilio import TwilioFake, gather_digits, signature
from worker.channels import Batch, ChannelCredentials, LookupUnavailable, Message, Recipient
from worker.sms import SmsAdapter, twilio_client
from worker.voice import VoiceAdapter, check_twiml, contact_alert_twiml, thanks_twiml

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-SECRET"
FROM = "+815012345678"
CREDENTIALS = ChannelCredentials("musashino", twilio_account_sid=SID, twilio_auth_token=TOKEN,
                                 twilio_from_number=FROM)
SMS = Message("武蔵野市の見守りです。お元気でしたら 1 または はい と返信してください。",
              callback_url="https://mimamori.example.jp/webhooks/twilio/musashino/status")
CALL = Message("見守り", gather_url="https://mimamori.example.jp/webhooks/twilio/musashino/voice?check=42",
               callback_url="https://mimamori.example.jp/webhooks/twilio/musashino/status")


@pytest.fixture
def twilio(twilio_fake: TwilioFake) -> TwilioFake:
    twilio_fake.add_account(SID, TOKEN)
    return twilio_fake


def to(*numbers: str) -> list[Recipient]:
    return [Recipient(i + 1, n) for i, n in enumerate(numbers)]


def test_sms_is_sent_with_its_status_callback(twilio):
    """Is the check texted as written, with Twilio told where to report its delivery?"""
    [result] = SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819012345678")))

    [sent] = twilio.messages_to("+819012345678")
    assert result.status == "sent"
    assert result.provider_ref == sent.sid
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert (sent.from_, sent.body, sent.status_callback) == (FROM, SMS.text, SMS.callback_url)


@pytest.mark.parametrize("kind", ["invalid_numbers", "unsubscribed_numbers", "landline_numbers"])
def test_unreachable_numbers_are_blocked(twilio, kind):
    """A wrong number, one that replied STOP, or a landline: is it blocked so the engine falls back?"""
    getattr(twilio, kind).add("+819000000000")
    results = SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819000000000", "+819012345678")))

    assert [r.status for r in results] == ["blocked", "sent"]
    assert TOKEN not in (results[0].error or "")
    assert "+819000000000" not in (results[0].error or "")


def test_server_error_is_retried_and_the_rest_of_the_batch_waits(twilio):
    """After Twilio's 500, are this and the remaining recipients retried later, not hammered now?"""
    twilio.fail_next(1, status=500)
    results = SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819012345678", "+819012345679")))

    assert [r.status for r in results] == ["retry", "retry"]
    assert len(twilio.requests) == 1
    assert twilio.messages == []


def test_throttled_sms_waits_as_twilio_asked(twilio):
    """When Twilio answers 429 with Retry-After, does the retry carry that wait?"""
    twilio.throttle_next(1, retry_after=5)
    [result] = SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819012345678")))
    assert (result.status, result.retry_after) == ("retry", 5.0)


def test_wrong_auth_token_fails_without_leaking_it(twilio):
    """With a rotated auth token, is the send failed and the token kept out of the error?"""
    stale = ChannelCredentials("musashino", twilio_account_sid=SID, twilio_auth_token="stale-SECRET",
                               twilio_from_number=FROM)
    [result] = SmsAdapter(twilio.url).send(stale, Batch(SMS, to("+819012345678")))

    assert result.status == "failed"
    assert "20003" in (result.error or "")
    assert "stale-SECRET" not in (result.error or "")


def test_unreachable_twilio_is_retried():
    """If Twilio cannot be reached at all, is the message kept for a retry?"""
    [result] = SmsAdapter("http://127.0.0.1:1").send(CREDENTIALS, Batch(SMS, to("+819012345678")))
    assert result.status == "retry"


def test_sent_messages_can_be_found_again_through_the_sdk(twilio):
    """Can a reconcile pass list today's messages to one number (To, DateSent>=) with the SDK?"""
    adapter = SmsAdapter(twilio.url)
    adapter.send(CREDENTIALS, Batch(SMS, to("+819012345678", "+819012345679", "+819012345678")))
    client = twilio_client(twilio.url, SID, TOKEN)

    today = client.messages.list(to="+819012345678", date_sent_after=datetime.now(UTC) - timedelta(hours=1),
                                 page_size=1)
    tomorrow = client.messages.list(date_sent_after=datetime.now(UTC) + timedelta(days=1))

    assert sorted(m.sid for m in today) == sorted(m.sid for m in twilio.messages_to("+819012345678"))
    assert tomorrow == []


def test_voice_call_fetches_the_gather_twiml(twilio):
    """Is the call placed to fetch our TwiML, with its progress reported to our status URL?"""
    [result] = VoiceAdapter(twilio.url).send(CREDENTIALS, Batch(CALL, to("+819012345678")))

    [call] = twilio.calls_to("+819012345678")
    assert result.status == "sent"
    assert result.provider_ref == call.sid and call.sid.startswith("CA")
    assert (call.from_, call.url, call.status_callback) == (FROM, CALL.gather_url, CALL.callback_url)
    assert "completed" in call.status_callback_events


def test_voice_call_to_an_invalid_number_is_blocked(twilio):
    """Is a call to a number that cannot exist blocked, like an SMS would be?"""
    [result] = VoiceAdapter(twilio.url).send(CREDENTIALS, Batch(CALL, to("0312345678")))
    assert result.status == "blocked"


def parse(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    return root


def test_check_twiml_asks_for_one_in_japanese():
    """Does the call say the check in Japanese and post a single digit to our action URL?"""
    action = "https://mimamori.example.jp/webhooks/twilio/musashino/voice?check=42&step=answer"
    root = parse(check_twiml("武蔵野市の見守りです。", action))

    gather = root.find("Gather")
    assert gather is not None
    assert (gather.get("numDigits"), gather.get("action"), gather.get("method")) == ("1", action, "POST")
    say = gather.find("Say")
    assert say is not None and say.get("language") == "ja-JP"
    assert say.text and say.text.startswith("武蔵野市の見守りです。") and "1 を押してください" in say.text
    assert [s.get("language") for s in root.findall("Say")] == ["ja-JP"], "a goodbye when nothing is pressed"


def test_contact_alert_twiml_asks_the_contact_to_acknowledge():
    """Is a relative asked to press 1 to say they will go and see?"""
    root = parse(contact_alert_twiml("山田 花子さんから応答がありません。", "https://x.example/ack"))
    say = root.find("Gather/Say")
    assert say is not None and say.text and "様子を見に行" in say.text and "1 を押して" in say.text
    assert root.find("Gather").get("action") == "https://x.example/ack"  # type: ignore[union-attr]


def test_thanks_twiml_says_thanks_and_hangs_up():
    """After pressing 1, does the caller hear the thanks and the call end?"""
    root = parse(thanks_twiml("ありがとうございました。"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == "ありがとうございました。"


def test_signed_gather_callback_validates_with_twilio_rules(twilio):
    """Does a keypad callback built by the fake carry a signature Twilio's validator accepts?"""
    VoiceAdapter(twilio.url).send(CREDENTIALS, Batch(CALL, to("+819012345678")))
    params = gather_digits(twilio.calls[0], "1")
    url = "https://mimamori.example.jp/webhooks/twilio/musashino/voice?check=42&step=answer"

    assert RequestValidator(TOKEN).validate(url, params, signature(TOKEN, url, params))
    assert not RequestValidator("other").validate(url, params, signature(TOKEN, url, params))
    assert params["Digits"] == "1" and params["CallSid"] == twilio.calls[0].sid


def test_a_long_listing_is_read_page_by_page_newest_first(twilio):
    """Does the SDK read 120 messages to one number in pages of 50, each once, newest first,
    following the fake's PageToken links?"""
    adapter = SmsAdapter(twilio.url)
    adapter.send(CREDENTIALS, Batch(SMS, to(*["+819012345678"] * 120)))
    client = twilio_client(twilio.url, SID, TOKEN)

    listed = list(client.messages.stream(to="+819012345678", from_=FROM, page_size=50))
    pages = [r for r in twilio.requests if r.method == "GET"]

    assert [m.sid for m in listed] == [m.sid for m in reversed(twilio.messages)]
    assert len(pages) == 3
    assert all(p.params.get("PageToken", ["PA"])[0].startswith("PA") for p in pages)
    assert client.messages.list(to="+819099999999") == []


def test_calls_are_filtered_as_twilio_filters_them(twilio):
    """Can calls be listed by To, Status and StartTime, and is a date filter that matches no
    call an empty list rather than everything?"""
    adapter = VoiceAdapter(twilio.url)
    adapter.send(CREDENTIALS, Batch(CALL, to("+819012345678", "+819012345679")))
    client = twilio_client(twilio.url, SID, TOKEN)
    now = datetime.now(UTC)

    [one] = client.calls.list(to="+819012345679", status="ringing",
                              start_time_after=now - timedelta(minutes=1))
    assert one.sid == twilio.calls_to("+819012345679")[0].sid
    assert client.calls.list(status="completed") == []
    assert client.calls.list(start_time_before=now - timedelta(days=1)) == []
    assert len(client.calls.list(from_=FROM)) == 2


def test_finding_a_sent_message_tells_same_number_messages_apart(twilio):
    """Looking up what an attempt sent: is the SMS matched by its text and the call by the
    window, leaving out what other deliveries already recorded?"""
    sms, voice = SmsAdapter(twilio.url), VoiceAdapter(twilio.url)
    since = datetime.now(UTC) - timedelta(seconds=5)
    other = Message("別のお知らせです。", callback_url=SMS.callback_url)
    sms.send(CREDENTIALS, Batch(other, to("+819012345678")))
    sms.send(CREDENTIALS, Batch(SMS, to("+819012345678")))
    voice.send(CREDENTIALS, Batch(CALL, to("+819012345678", "+819012345678")))
    until = datetime.now(UTC) + timedelta(seconds=5)
    recipient = Recipient(1, "+819012345678")
    first_call, second_call = twilio.calls_to("+819012345678")

    assert sms.find_sent(CREDENTIALS, recipient, SMS, since, until, ()) == twilio.messages[1].sid
    assert sms.find_sent(CREDENTIALS, recipient, SMS, until, until + timedelta(hours=1), ()) is None
    assert voice.find_sent(CREDENTIALS, recipient, CALL, since, until, ()) == first_call.sid
    assert voice.find_sent(CREDENTIALS, recipient, CALL, since, until,
                           {first_call.sid}) == second_call.sid


def test_a_lookup_twilio_cannot_answer_says_so(twilio):
    """When Twilio answers 500 to a listing, is that told apart from "nothing was sent"?"""
    SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819012345678")))
    twilio.fail_lists(1, status=500)
    now = datetime.now(UTC)

    with pytest.raises(LookupUnavailable):
        SmsAdapter(twilio.url).find_sent(CREDENTIALS, Recipient(1, "+819012345678"), SMS,
                                         now - timedelta(minutes=1), now, ())
    assert SmsAdapter(twilio.url).find_sent(CREDENTIALS, Recipient(1, "+819012345678"), SMS,
                                            now - timedelta(minutes=1), now, ()) is not None


def test_a_500_after_twilio_accepted_is_marked_as_maybe_sent(twilio):
    """Twilio's 500 may come after it created the message; a 429 never does: is the first
    marked uncertain (looked up before a retry) and the second not?"""
    twilio.fail_next(1, status=500, after_delivery=True)
    [failed] = SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819012345678")))
    twilio.throttle_next(1, retry_after=1)
    [throttled] = SmsAdapter(twilio.url).send(CREDENTIALS, Batch(SMS, to("+819012345679")))
    [unreachable] = SmsAdapter("http://127.0.0.1:1").send(CREDENTIALS, Batch(SMS, to("+819012345678")))

    assert (failed.status, failed.uncertain) == ("retry", True)
    assert (throttled.status, throttled.uncertain) == ("retry", False)
    assert (unreachable.status, unreachable.uncertain) == ("retry", False)
