"""The LINE webhook: signed events from residents and contacts answer checks, link, block, reach staff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import pytest
from sqlalchemy import func, select

from mimamori.extensions import db
from tenants import messages
from tenants.models import Delivery, InboundMessage, Resident, WebhookEvent
from tenants.tenancy import all_tenants
from tests.fakes.line import (
    follow_event,
    postback_event,
    signed_webhook,
    text_message_event,
    unfollow_event,
    user_id,
)
from tests.fixtures.engine import tokyo
from tests.webhooks_support import (
    DAY1,
    LINE_SECRET,
    add_resident,
    credentials,
    daily_policy,
    ok_button_data,
    post_line,
    queued_calls,
    rows,
    run_clock,
    work,
)

RESIDENT = user_id(1)
CONTACT = user_id(2)
STRANGER = user_id(9)


@pytest.fixture
def city(make_tenant):
    """武蔵野市 with LINE and Twilio, a daily 09:00 policy and a resident linked to LINE."""
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    person = add_resident(tenant.api, policy["id"], line_user_id=RESIDENT)
    return tenant, policy, person


def checks_of(tenant, person):
    return tenant.api.get(f"/api/v1/checks?resident_id={person['id']}").get_json()["items"]


def reply_jobs(app):
    """The replies queued: (tenant id, reply token, text), one job per webhook holding them all."""
    return [(args[0], token, text) for name, args in queued_calls(app)
            if name == "worker.jobs.send_line_replies" for token, text in args[1]]


def webhook_events(app):
    with app.app_context(), all_tenants():
        return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def test_ok_button_answers_the_check(clean_app, client, city, fakes):
    """Does tapping 元気です on the LINE check answer it, and is the resident thanked?"""
    tenant, _, person = city
    line, _ = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [sent] = line.delivered_to(RESIDENT)
    event = postback_event(RESIDENT, ok_button_data(sent))

    response = post_line(client, tenant.slug, [event])

    assert response.status_code == 200 and response.get_json() == {}
    [check] = checks_of(tenant, person)
    assert check["status"] == "answered" and check["answered_via"] == "line"
    work(clean_app)
    assert line.replied(event["replyToken"]) == [{"type": "text", "text": messages.THANKS}]


def test_a_webhook_of_taps_is_logged_as_counts(clean_app, client, city, fakes, caplog):
    """Several OK taps in one webhook (a double tap, a tap for nobody): one line of counts, a
    warning for the stranger, and no LINE user ids in the log?"""
    tenant, _, person = city
    line, _ = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [sent] = line.delivered_to(RESIDENT)
    data = ok_button_data(sent)
    stranger = user_id(0x5EC)
    caplog.set_level(logging.INFO, logger="api.webhooks")

    assert post_line(client, tenant.slug, [postback_event(RESIDENT, data), postback_event(RESIDENT, data),
                                           postback_event(stranger, data)]).status_code == 200

    logged = [r for r in caplog.records if r.name == "api.webhooks"]
    assert [(r.levelno, r.webhook["result"]) for r in logged] == [
        (logging.WARNING, "unknown_check"), (logging.INFO, "taps")]
    assert (logged[1].webhook["answered"], logged[1].webhook["already_answered"]) == (1, 1)
    assert not any(RESIDENT in r.getMessage() or stranger in r.getMessage() for r in logged)
    assert [c["status"] for c in checks_of(tenant, person)] == ["answered"]


def test_redelivered_answer_has_no_second_effect(clean_app, client, city, fakes):
    """LINE redelivers the late OK tap: is the incident resolved once, with one timeline entry?"""
    tenant, _, person = city
    line, _ = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    run_clock(clean_app, tokyo(f"{DAY1} 10:00"))  # the window closes: missed, incident opens
    [sent] = line.delivered_to(RESIDENT)
    event = postback_event(RESIDENT, ok_button_data(sent))

    assert post_line(client, tenant.slug, [event]).status_code == 200
    [check] = checks_of(tenant, person)
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert incident["status"] == "resolved" and incident["outcome"] == "safe"
    assert [e["kind"] for e in incident["timeline"]].count("answer") == 1

    redelivery = {**event, "deliveryContext": {"isRedelivery": True}}
    assert post_line(client, tenant.slug, [redelivery]).status_code == 200

    assert checks_of(tenant, person) == [check]
    assert tenant.api.get(f"/api/v1/incidents/{incident['id']}").get_json() == incident
    assert len(reply_jobs(clean_app)) == 1
    assert webhook_events(clean_app) == 1


@pytest.mark.parametrize("how", ["wrong secret", "no signature", "tampered body"])
def test_unsigned_events_are_refused(clean_app, client, city, how):
    """Can anyone but LINE answer a resident's check by posting to the webhook?"""
    tenant, _, person = city
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    data = messages.answer_data("2030-04-01T00:00Z")
    body_secret = "not-the-secret" if how == "wrong secret" else LINE_SECRET
    body, signature = signed_webhook(body_secret, [postback_event(RESIDENT, data)])
    headers = {} if how == "no signature" else {"X-Line-Signature": signature}
    if how == "tampered body":
        body = body.replace(RESIDENT.encode(), user_id(3).encode())

    response = client.post(f"/webhooks/line/{tenant.slug}", data=body,
                           content_type="application/json", headers=headers)

    assert response.status_code == 403
    assert [c["status"] for c in checks_of(tenant, person)] == ["sent"]
    assert webhook_events(clean_app) == 0 and reply_jobs(clean_app) == []


def test_unknown_tenant_or_tenant_without_line_is_not_found(client, make_tenant):
    """Is a webhook for a slug we do not have, or a tenant without LINE, answered 404?"""
    make_tenant("demo", "デモ市")  # the sandbox: no LINE channel
    assert post_line(client, "nowhere", []).status_code == 404
    assert post_line(client, "demo", []).status_code == 404


def test_verify_call_with_no_events_is_ok(client, city):
    """Does the console's "Verify" button (a signed webhook with no events) succeed?"""
    tenant, _, _ = city
    response = post_line(client, tenant.slug, [])
    assert response.status_code == 200 and response.get_json() == {}


def test_signed_body_that_is_not_a_webhook_is_a_bad_request(client, city):
    """A correctly signed body without `events`: is it refused as malformed?"""
    tenant, _, _ = city
    for body in (b"not json", b'{"destination": "U0"}'):
        signature = base64.b64encode(hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest())
        response = client.post(f"/webhooks/line/{tenant.slug}", data=body,
                               content_type="application/json",
                               headers={"X-Line-Signature": signature.decode()})
        assert response.status_code == 400


def test_link_code_links_the_resident(clean_app, client, city, fakes):
    """A resident sends the 6-digit code from the city (typed in full-width): are they linked?"""
    tenant, policy, _ = city
    line, _ = fakes
    newcomer = add_resident(tenant.api, policy["id"], name="佐藤 一郎", phone="090-2222-3333")
    assert newcomer["line_linked"] is False
    typed = newcomer["link_code"][:3] + " " + newcomer["link_code"][3:]
    full_width = typed.translate(str.maketrans("0123456789 ", "０１２３４５６７８９　"))
    event = text_message_event(user_id(5), full_width)

    assert post_line(client, tenant.slug, [event]).status_code == 200

    assert tenant.api.get(f"/api/v1/residents/{newcomer['id']}").get_json()["line_linked"] is True
    work(clean_app)
    assert line.replied(event["replyToken"]) == [{"type": "text", "text": messages.LINKED}]
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    assert len(line.delivered_to(user_id(5))) == 1  # the check now goes out on LINE


def test_wrong_code_from_a_stranger_links_nobody(clean_app, client, city):
    """Does a code nobody was given link anyone, or store what the stranger wrote?"""
    tenant, _, _ = city
    assert post_line(client, tenant.slug, [text_message_event(STRANGER, "000000")]).status_code == 200
    assert rows(clean_app, tenant.id, Resident, Resident.line_user_id == STRANGER) == []
    assert rows(clean_app, tenant.id, InboundMessage) == []
    assert [args[2] for args in reply_jobs(clean_app)] == [messages.LINK_CODE_WRONG]


def test_unfollow_blocks_and_the_check_goes_by_sms(clean_app, client, city, fakes):
    """A resident blocks the account after the LINE check: is the check re-sent by SMS at once?"""
    tenant, _, person = city
    _, twilio = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)

    assert post_line(client, tenant.slug, [unfollow_event(RESIDENT)]).status_code == 200

    [resident] = rows(clean_app, tenant.id, Resident)
    assert resident.line_blocked is True
    check_deliveries = [(d.channel, d.status) for d in rows(clean_app, tenant.id, Delivery)]
    assert check_deliveries == [("line", "blocked"), ("sms", "queued")]
    work(clean_app)
    assert len(twilio.messages_to(person["phone"])) == 1


def test_follow_again_unblocks_and_strangers_are_welcomed(clean_app, client, city):
    """Does re-adding the account unblock the resident, and is a new friend told how to link?"""
    tenant, _, _ = city
    post_line(client, tenant.slug, [unfollow_event(RESIDENT)])
    stranger = follow_event(STRANGER)

    post_line(client, tenant.slug, [follow_event(RESIDENT), stranger])

    [resident] = rows(clean_app, tenant.id, Resident)
    assert resident.line_blocked is False
    assert reply_jobs(clean_app) == [(tenant.id, stranger["replyToken"], messages.WELCOME)]


def test_other_text_is_kept_for_staff_with_an_automatic_reply(clean_app, client, city, fakes, caplog):
    """A resident writes something that is not an answer: do staff see it, and the resident a reply?"""
    tenant, _, person = city
    line, _ = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    event = text_message_event(RESIDENT, "今日は病院に行きます")
    caplog.set_level(logging.INFO, logger="api.webhooks")

    assert post_line(client, tenant.slug, [event]).status_code == 200
    [logged] = [r.getMessage() for r in caplog.records if r.name == "api.webhooks"]
    assert "result=stored" in logged and "病院" not in logged and RESIDENT not in logged

    [kept] = rows(clean_app, tenant.id, InboundMessage)
    assert (kept.resident_id, kept.channel, kept.body) == (person["id"], "line", "今日は病院に行きます")
    assert [c["status"] for c in checks_of(tenant, person)] == ["sent"]
    assert reply_jobs(clean_app) == [(tenant.id, event["replyToken"], messages.AUTO_REPLY)]
    work(clean_app)
    assert line.replied(event["replyToken"]) == [{"type": "text", "text": messages.AUTO_REPLY}]


def test_typed_answer_answers_the_check(clean_app, client, city):
    """Does typing 「はい」 instead of tapping the button answer the check too?"""
    tenant, _, person = city
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    post_line(client, tenant.slug, [text_message_event(RESIDENT, "はい")])
    [check] = checks_of(tenant, person)
    assert check["status"] == "answered" and check["answered_via"] == "line"


def test_postbacks_from_another_tenant_change_nothing(clean_app, client, make_tenant, city):
    """Can another city's resident, or a made-up occurrence, answer this city's check?"""
    tenant, _, person = city
    other = make_tenant("mitaka", "三鷹市", **credentials(other=True))
    other_person = add_resident(other.api, daily_policy(other.api)["id"], line_user_id=user_id(7))
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    occurrence = messages.answer_data("2030-04-01T00:00Z")

    post_line(client, tenant.slug, [postback_event(user_id(7), occurrence),
                                     postback_event(RESIDENT, messages.answer_data("2031-01-01T00:00Z")),
                                     postback_event(RESIDENT, "answer:round:1"),
                                     postback_event(RESIDENT, "ack:1")])
    assert post_line(client, other.slug, [postback_event(user_id(7), occurrence)]).status_code == 403

    assert [c["status"] for c in checks_of(tenant, person)] == ["sent"]
    assert [c["status"] for c in checks_of(other, other_person)] == ["sent"]
    assert webhook_events(clean_app) == 0 and reply_jobs(clean_app) == []


def test_contact_taps_i_will_go_and_the_chain_stops(clean_app, client, city, fakes):
    """A relative taps 見に行きます on the LINE alert: is the incident acknowledged in their name?"""
    tenant, policy, _ = city
    line, _ = fakes
    add_resident(tenant.api, policy["id"], name="鈴木 次郎", phone="090-4444-5555",
                 line_user_id=user_id(4), contacts=[
                     {"name": "鈴木 花子", "relation": "relative", "line_user_id": CONTACT,
                      "channels": ["line"], "priority": 1}])
    for at in ("09:00", "10:00", "10:30"):  # check, window closes, step 2 reaches the contacts
        run_clock(clean_app, tokyo(f"{DAY1} {at}"))
        work(clean_app)
    [alert] = line.delivered_to(CONTACT)
    incident_id = int(ok_button_data(alert).removeprefix("ack:"))

    post_line(client, tenant.slug, [postback_event(CONTACT, ok_button_data(alert))])

    incident = tenant.api.get(f"/api/v1/incidents/{incident_id}").get_json()
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "鈴木 花子"
    for at in ("11:00", "11:30"):  # steps 3 (every contact) and 4 would have followed
        run_clock(clean_app, tokyo(f"{DAY1} {at}"))
        work(clean_app)
    assert len(line.delivered_to(CONTACT)) == 1
    later = tenant.api.get(f"/api/v1/incidents/{incident_id}").get_json()
    assert [e["kind"] for e in later["timeline"]].count("step") == 2
