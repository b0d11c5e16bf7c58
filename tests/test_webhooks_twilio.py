"""The Twilio webhooks: SMS replies, the voice call's TwiML and keypad, and delivery status callbacks."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from mimamori.extensions import db
from tenants import messages
from tenants.models import Delivery, InboundMessage, WebhookEvent
from tenants.tenancy import all_tenants
from tests.fakes.twilio import call_status, gather_digits, inbound_sms, message_status
from tests.fixtures.engine import tokyo
from tests.webhooks_support import (
    DAY1,
    NO_QUIET_HOURS,
    TWILIO_FROM,
    TWILIO_SID,
    add_resident,
    credentials,
    daily_policy,
    post_twilio,
    rows,
    run_clock,
    twilio_url,
    work,
)

RESIDENT_PHONE = "+819012345678"  # resident_body's 090-1234-5678
CONTACT_PHONE = "+818012345678"  # resident_body's contact


@pytest.fixture
def twilio(fakes):
    return fakes[1]


@pytest.fixture
def city(make_tenant):
    """武蔵野市 with LINE and Twilio and a daily 09:00 policy; residents are added per test."""
    tenant = make_tenant("musashino", **credentials(), **NO_QUIET_HOURS)
    return tenant, daily_policy(tenant.api)


def resident(city, channels, **fields):
    tenant, policy = city
    return add_resident(tenant.api, policy["id"], channels=channels, **fields)


def checks_of(tenant):
    return tenant.api.get("/api/v1/checks").get_json()["items"]


def twiml(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.get_data(as_text=True))


def text_back(client, tenant, sender, body):
    """The resident or contact texts the tenant's number."""
    return post_twilio(client, twilio_url(tenant.slug, "sms"),
                       inbound_sms(sender, TWILIO_FROM, body, TWILIO_SID))


def count(app, model):
    with app.app_context(), all_tenants():
        return db.session.scalar(select(func.count()).select_from(model))


def test_sms_yes_from_the_resident_answers(clean_app, client, city, twilio):
    """The resident replies 「はい」 to the SMS check: is it answered and are they thanked?"""
    tenant, _ = city
    resident(city, ["sms", "voice"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    assert len(twilio.messages_to(RESIDENT_PHONE)) == 1

    reply = twiml(text_back(client, tenant, RESIDENT_PHONE, "はい"))

    assert [m.text for m in reply.iter("Message")] == [messages.THANKS]
    [check] = checks_of(tenant)
    assert check["status"] == "answered" and check["answered_via"] == "sms"


def test_late_sms_answer_resolves_the_incident_as_safe(clean_app, client, city, twilio):
    """An answer after the window closed: is the open incident resolved `safe` and the chain over?"""
    tenant, _ = city
    resident(city, ["sms"])
    for at in ("09:00", "10:00"):
        run_clock(clean_app, tokyo(f"{DAY1} {at}"))
        work(clean_app)
    [incident] = tenant.api.get("/api/v1/incidents?status=open").get_json()["items"]

    text_back(client, tenant, RESIDENT_PHONE, "OK")

    incident = tenant.api.get(f"/api/v1/incidents/{incident['id']}").get_json()
    assert incident["status"] == "resolved" and incident["outcome"] == "safe"
    assert "answer" in [e["kind"] for e in incident["timeline"]]
    assert run_clock(clean_app, tokyo(f"{DAY1} 11:30")).steps_deliveries == 0


def test_sms_1_from_the_contact_acknowledges(clean_app, client, city, twilio):
    """The relative told by SMS replies 1: is the incident acknowledged and the chain stopped?"""
    tenant, _ = city
    resident(city, ["sms"])
    for at in ("09:00", "10:00", "10:30"):  # check, window closes, step 2 texts the contact
        run_clock(clean_app, tokyo(f"{DAY1} {at}"))
        work(clean_app)
    assert len(twilio.messages_to(CONTACT_PHONE)) == 1

    reply = twiml(text_back(client, tenant, CONTACT_PHONE, "1"))

    assert [m.text for m in reply.iter("Message")] == [messages.ACK_THANKS]
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "山田 太郎"
    assert run_clock(clean_app, tokyo(f"{DAY1} 11:30")).steps_deliveries == 0
    work(clean_app)
    assert len(twilio.messages_to(CONTACT_PHONE)) == 1


def test_other_text_from_the_resident_is_kept_for_staff(clean_app, client, city, twilio):
    """A resident texts something else: is it kept for staff and answered automatically?"""
    tenant, _ = city
    person = resident(city, ["sms"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))

    reply = twiml(text_back(client, tenant, RESIDENT_PHONE, "足が痛いです"))

    assert [m.text for m in reply.iter("Message")] == [messages.AUTO_REPLY]
    [kept] = rows(clean_app, tenant.id, InboundMessage)
    assert (kept.resident_id, kept.channel, kept.sender, kept.body) == (
        person["id"], "sms", RESIDENT_PHONE, "足が痛いです")
    assert [c["status"] for c in checks_of(tenant)] == ["sent"]


def test_unknown_number_gets_an_empty_answer(clean_app, client, city, caplog):
    """A text from a number we do not know: nothing stored or replied, one log line without it?"""
    tenant, _ = city
    resident(city, ["sms"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    caplog.set_level(logging.INFO, logger="api.webhooks")

    reply = twiml(text_back(client, tenant, "+819099998888", "はい"))

    assert reply.tag == "Response" and list(reply) == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "api.webhooks"]
    assert "result=unknown_sender" in line
    assert "9099998888" not in line and "はい" not in line
    assert count(clean_app, InboundMessage) == 0 and count(clean_app, WebhookEvent) == 0
    assert [c["status"] for c in checks_of(tenant)] == ["sent"]


def test_redelivered_sms_has_no_second_effect(clean_app, client, city):
    """Twilio retries the same inbound SMS: is it kept once?"""
    tenant, _ = city
    resident(city, ["sms"])
    params = inbound_sms(RESIDENT_PHONE, TWILIO_FROM, "ありがとう", TWILIO_SID)
    for _ in range(2):
        assert post_twilio(client, twilio_url(tenant.slug, "sms"), params).status_code == 200
    assert count(clean_app, InboundMessage) == 1


def test_signature_is_checked_against_the_public_url(clean_app, client, city, make_tenant):
    """Does only a request signed for our public URL with the tenant's token get through?"""
    tenant, _ = city
    resident(city, ["sms"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    url = twilio_url(tenant.slug, "sms")
    params = inbound_sms(RESIDENT_PHONE, TWILIO_FROM, "はい", TWILIO_SID)

    assert post_twilio(client, url, params, token="someone-elses-token").status_code == 403
    assert client.post(f"/webhooks/twilio/{tenant.slug}/sms", data=params).status_code == 403
    # Signed for the address the request reached (the proxy's), not the one Twilio was given.
    assert post_twilio(client, f"http://localhost/webhooks/twilio/{tenant.slug}/sms",
                       params).status_code == 403
    assert [c["status"] for c in checks_of(tenant)] == ["sent"]
    assert count(clean_app, WebhookEvent) == 0

    # Behind the proxy the request arrives on another host; the public URL's signature is valid.
    response = post_twilio(client, url, params)
    assert response.status_code == 200 and checks_of(tenant)[0]["status"] == "answered"


def test_unknown_tenant_or_tenant_without_twilio_is_not_found(client, city, make_tenant):
    """A slug we do not have, or a tenant without Twilio: 404 on every Twilio webhook?"""
    make_tenant("demo", "デモ市")
    for slug in ("nowhere", "demo"):
        for kind in ("sms", "voice", "status"):
            response = post_twilio(client, twilio_url(slug, kind, "delivery=1"), {"CallSid": "CA1"})
            assert response.status_code == 404


def placed_call(clean_app, city, twilio, channels=("voice",)):
    """The resident's 09:00 check call, as Twilio placed it."""
    resident(city, list(channels))
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [call] = twilio.calls_to(RESIDENT_PHONE)
    return call


def test_voice_call_asks_for_1_in_japanese(clean_app, client, city, twilio):
    """When the resident picks up, does the call say the check in Japanese and gather one digit?"""
    call = placed_call(clean_app, city, twilio)

    document = twiml(post_twilio(client, call.url, call_status(call, "in-progress")))

    [gather] = document.iter("Gather")
    assert gather.get("numDigits") == "1" and gather.get("action") == call.url
    says = list(gather.iter("Say"))
    assert says and all(s.get("language") == "ja-JP" for s in says)
    assert "見守りサービス" in says[0].text


def test_pressing_1_answers_the_check(clean_app, client, city, twilio):
    """The resident presses 1: is the check answered by voice, with thanks before hanging up?"""
    tenant, _ = city
    call = placed_call(clean_app, city, twilio)

    document = twiml(post_twilio(client, call.url, gather_digits(call, "1")))

    assert [s.text for s in document.iter("Say")] == [messages.THANKS]
    assert document.find("Hangup") is not None
    [check] = checks_of(tenant)
    assert check["status"] == "answered" and check["answered_via"] == "voice"


def test_another_key_asks_once_more_then_says_goodbye(clean_app, client, city, twilio):
    """The resident presses 2, then 3: asked once more, then a goodbye, and nothing answered?"""
    tenant, _ = city
    call = placed_call(clean_app, city, twilio)

    again = twiml(post_twilio(client, call.url, gather_digits(call, "2")))
    [gather] = again.iter("Gather")
    second = twiml(post_twilio(client, gather.get("action"), gather_digits(call, "3")))

    assert second.find("Gather") is None and second.find("Hangup") is not None
    assert [c["status"] for c in checks_of(tenant)] == ["sent"]


def test_unknown_call_is_ended_politely(clean_app, client, city):
    """A TwiML request for a delivery we do not have: a goodbye, and nothing changes?"""
    tenant, _ = city
    document = twiml(post_twilio(client, twilio_url(tenant.slug, "voice", "delivery=999"),
                                 {"CallSid": "CA" + "0" * 32, "Digits": "1"}))
    assert document.find("Gather") is None and document.find("Hangup") is not None
    assert count(clean_app, WebhookEvent) == 0


def test_status_never_moves_backwards(clean_app, client, city, twilio):
    """`delivered`, then a late `sent`, then `delivered` again: does the delivery stay delivered?"""
    tenant, _ = city
    resident(city, ["sms"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [sms] = twilio.messages_to(RESIDENT_PHONE)

    for status in ("delivered", "sent", "delivered"):
        response = post_twilio(client, sms.status_callback, message_status(sms, status))
        assert response.status_code == 204

    [delivery] = rows(clean_app, tenant.id, Delivery)
    assert delivery.status == "delivered" and delivery.provider_ref == sms.sid
    assert count(clean_app, WebhookEvent) == 2  # (sid, delivered) once, (sid, sent) once


def test_undelivered_sms_falls_back_to_a_call(clean_app, client, city, twilio):
    """The SMS check cannot be delivered: does the resident get a call instead, at once?"""
    tenant, _ = city
    resident(city, ["sms", "voice"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [sms] = twilio.messages_to(RESIDENT_PHONE)

    post_twilio(client, sms.status_callback, message_status(sms, "undelivered", error_code=30003))
    work(clean_app)

    assert [(d.channel, d.status) for d in rows(clean_app, tenant.id, Delivery)] == [
        ("sms", "failed"), ("voice", "sent")]
    assert len(twilio.calls_to(RESIDENT_PHONE)) == 1


def test_busy_check_call_is_retried_per_policy(clean_app, client, city, twilio):
    """Busy, no answer, busy: called 1 + voice_retries times, then the check fails to an incident?"""
    tenant, _ = city
    call = placed_call(clean_app, city, twilio)
    outcomes = ["busy", "no-answer", "busy"]

    for minute, outcome in zip(("09:11", "09:22", None), outcomes, strict=True):
        post_twilio(client, call.status_callback, call_status(call, outcome))
        [delivery] = rows(clean_app, tenant.id, Delivery)
        if minute is None:
            break
        assert delivery.status == "retry" and delivery.not_before is not None
        # A late report of the finished attempt must not undo the retry.
        post_twilio(client, call.status_callback, call_status(call, "ringing"))
        assert rows(clean_app, tenant.id, Delivery)[0].status == "retry"
        run_clock(clean_app, tokyo(f"{DAY1} {minute}"))
        work(clean_app)
        call = twilio.calls_to(RESIDENT_PHONE)[-1]

    assert len(twilio.calls_to(RESIDENT_PHONE)) == 3  # the policy's default: 2 retries
    assert (delivery.status, delivery.attempts) == ("busy", 3)
    [check] = checks_of(tenant)
    assert check["status"] == "failed"
    [incident] = tenant.api.get("/api/v1/incidents?status=open").get_json()["items"]
    assert incident["check_id"] == check["id"]


def test_contact_pressing_1_on_the_alert_call_acknowledges(clean_app, client, city, twilio):
    """The contact is called about the resident and presses 1: acknowledged, timeline says so?"""
    tenant, _ = city
    resident(city, ["sms"], contacts=[{"name": "民生 委員", "relation": "welfare_commissioner",
                                        "phone": CONTACT_PHONE, "channels": ["voice"],
                                        "priority": 1}])
    for at in ("09:00", "10:00", "10:30", "11:00"):
        run_clock(clean_app, tokyo(f"{DAY1} {at}"))
        work(clean_app)
    # Step 2 texted their phone as it says; step 3 uses the contact's own channel: a call.
    [call] = twilio.calls_to(CONTACT_PHONE)

    prompt = twiml(post_twilio(client, call.url, call_status(call, "in-progress")))
    assert "見に行" in "".join(s.text for s in prompt.iter("Say"))
    post_twilio(client, call.status_callback, call_status(call, "in-progress"))
    document = twiml(post_twilio(client, call.url, gather_digits(call, "1")))

    assert [s.text for s in document.iter("Say")] == [messages.ACK_THANKS]
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "民生 委員"
    details = [e["detail"] for e in incident["timeline"] if e["kind"] == "delivery"]
    assert "電話: 届きました" in details and "電話: 応答がありました" in details
