"""The voice channel: Twilio calls that play a check through TwiML and take keypad 1 as the answer."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from worker.channels import Batch, ChannelCredentials, Message, Recipient, SendResult
from worker.sms import find_created, send_each

LANGUAGE = "ja-JP"
# Twilio's default voice ("man") cannot speak Japanese; Amazon Polly's Mizuki can.
VOICE = "Polly.Mizuki"
# "completed" carries the final CallStatus (completed, busy, no-answer, failed); "answered" tells
# the engine someone picked up, before or without pressing anything.
STATUS_CALLBACK_EVENTS = ("answered", "completed")


class VoiceAdapter:
    """Calls each recipient; the call fetches its TwiML from `Message.gather_url`."""

    name = "voice"

    def __init__(self, api_base_url: str) -> None:
        self.api_base_url = api_base_url

    def send(self, credentials: ChannelCredentials, batch: Batch) -> list[SendResult]:
        message = batch.message
        if message.gather_url is None:
            raise ValueError("a voice message needs gather_url, the TwiML the call fetches")

        def create(client: Client, from_number: str, recipient: Recipient) -> str:
            call = client.calls.create(to=recipient.address, from_=from_number, url=message.gather_url,
                                       status_callback=message.callback_url,
                                       status_callback_event=list(STATUS_CALLBACK_EVENTS))
            return str(call.sid)

        return send_each(self.api_base_url, credentials, batch, create)

    def find_sent(self, credentials: ChannelCredentials, recipient: Recipient, message: Message,
                  since: datetime, until: datetime, taken: Collection[str]) -> str | None:
        """The call this attempt placed to `recipient`: Twilio's call records do not show the
        TwiML URL, so it is the oldest of the window that no other delivery recorded."""
        return find_created(self.api_base_url, credentials, "calls", recipient.address, since,
                            until, taken)


def _ask_for_one(text: str, action_url: str, prompt: str) -> str:
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=action_url, method="POST", timeout=10)
    # Said twice inside <Gather>: pressing 1 interrupts it, and a slow listener hears it again.
    gather.say(f"{text} {prompt}", language=LANGUAGE, voice=VOICE, loop=2)
    response.say("ボタンの操作が確認できませんでした。失礼いたします。", language=LANGUAGE, voice=VOICE)
    return str(response)


def check_twiml(text: str, action_url: str) -> str:
    """The 安否確認 call: `text`, then "press 1 if you are well"; the digit is posted to `action_url`."""
    return _ask_for_one(text, action_url, "お元気でしたら 1 を押してください。")


def contact_alert_twiml(text: str, action_url: str) -> str:
    """The call to an emergency contact (緊急連絡先): pressing 1 means "I will go and see"."""
    return _ask_for_one(text, action_url, "様子を見に行っていただける場合は 1 を押してください。")


def thanks_twiml(text: str) -> str:
    """What the caller hears after pressing 1, then the call ends."""
    response = VoiceResponse()
    response.say(text, language=LANGUAGE, voice=VOICE)
    response.hangup()
    return str(response)
