"""Hostile input to the LINE and Twilio webhooks: a 4xx (or 200 for a LINE event we cannot use),
never a 5xx, and nothing changes.

The examples first, then generated payloads (hypothesis), signed and unsigned, at every webhook:
each is one the providers would never send, or names nothing that exists (a check, an incident,
a delivery), so the database must be exactly as it was after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from mimamori.extensions import db
from tenants.models import WebhookEvent
from tenants.tenancy import all_tenants
from tests.fakes.line import postback_event, signed_webhook, text_message_event, user_id
from tests.fixtures.engine import tokyo
from tests.webhooks_support import (
    DAY1,
    LINE_SECRET,
    PUBLIC_BASE_URL,
    TWILIO_TOKEN,
    add_resident,
    credentials,
    daily_policy,
    ok_button_data,
    post_line,
    run_clock,
    work,
)

RESIDENT = user_id(1)
RESIDENT_PHONE = "+819012345678"
STATE_TABLES = ("residents", "contacts", "checks", "deliveries", "incidents", "incident_events",
                "webhook_events", "inbound_messages", "link_attempts")


@pytest.fixture
def city(make_tenant, clean_app, fakes):
    """武蔵野市 with LINE and Twilio, a resident on LINE whose 09:00 check went out."""
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    person = add_resident(tenant.api, policy["id"], line_user_id=RESIDENT)
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [sent] = fakes[0].delivered_to(RESIDENT)
    return tenant, person, ok_button_data(sent)


@pytest.fixture
def before(city, client) -> dict[str, list[tuple]]:
    """The rows as they were before the hostile requests."""
    return state(client.application)


def state(app) -> dict[str, list[tuple]]:
    """Every row a webhook could change, as the database holds it."""
    with app.app_context(), all_tenants():
        return {table: [tuple(row) for row in db.session.execute(
            text(f"SELECT * FROM {table} ORDER BY id"))] for table in STATE_TABLES}


def post_signed_line(client, slug: str, body: bytes):
    return client.post(f"/webhooks/line/{slug}", data=body, content_type="application/json",
                       headers={"X-Line-Signature": line_signature(body)})


def line_signature(body: bytes) -> str:
    return base64.b64encode(hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()).decode()


def post_signed_twilio(client, path: str, form: MultiDict):
    """A POST to `path` signed as Twilio signs it, whatever the form holds (repeated fields too)."""
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signed})


@pytest.mark.parametrize("path", ["/webhooks/line/mu%00sashino", "/webhooks/line/%00",
                                  "/webhooks/twilio/mu%00sashino/sms",
                                  "/webhooks/twilio/%ff%fe/voice",
                                  "/webhooks/twilio/" + "a" * 5000 + "/status"])
def test_odd_bytes_in_the_slug_are_not_found(client, city, path):
    """A stranger puts NUL or non-UTF-8 bytes in the tenant slug (no signature needed): 404?"""
    before = state(client.application)
    response = client.post(path, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert state(client.application) == before


@pytest.mark.parametrize("data", ["ack:2147483648", "ack:999999999999999999", "ack:-1", "ack:0",
                                  "digest:2147483648:2030-04-01", "digest:99999999999999999:x",
                                  "answer:" + "9" * 300, "answer:\x00", "ack:1\x00"])
def test_postback_with_out_of_range_ids_changes_nothing(client, city, data):
    """A signed postback naming an id no row can have (above 2^31−1): ignored, not a 500?"""
    tenant, _, _ = city
    before = state(client.application)
    assert post_line(client, tenant.slug, [postback_event(RESIDENT, data)]).status_code == 200
    assert state(client.application) == before


@pytest.mark.parametrize("field,value", [
    ("userId", "U\x00" + "0" * 31), ("userId", "U" + "0" * 500), ("userId", ["U1"]),
    ("webhookEventId", "01\x00"), ("webhookEventId", {"a": 1}), ("type", [[["message"]]]),
    ("source", "user"), ("message", "text"), ("text", "はい\x00"), ("text", "\ud800"),
    ("text", "1" * 100_000), ("replyToken", "\x00")])
def test_events_with_unusable_fields_are_ignored(client, city, field, value):
    """A signed event with NUL bytes, lone surrogates, wrong types or absurd lengths: 200 and
    nothing changes (LINE would otherwise redeliver it)?"""
    tenant, _, _ = city
    event = text_message_event(RESIDENT, "はい")
    if field == "userId":
        event["source"]["userId"] = value
    elif field == "text":
        event["message"]["text"] = value
    else:
        event[field] = value
    before = state(client.application)
    body = json.dumps({"destination": user_id(0xB07), "events": [event]}).encode()  # \ud800 escaped
    assert post_signed_line(client, tenant.slug, body).status_code == 200
    assert state(client.application) == before


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                  b'{"events": [{"type": ' + b"[" * 900 + b"]" * 900 + b"}]}",
                                  b"\xff\xfe", b'{"events": "\x00"}', b"null", b"1e999999"])
def test_deep_or_malformed_json_is_a_bad_request_or_ignored(client, city, body):
    """A signed body nested 100,000 deep, or not JSON at all: 400 (or 200 ignoring it), no 500?"""
    tenant, _, _ = city
    before = state(client.application)
    assert post_signed_line(client, tenant.slug, body).status_code in (200, 400)
    assert state(client.application) == before


@pytest.mark.parametrize("path,size", [("/webhooks/line/musashino", 17 * 1024 * 1024),
                                       ("/webhooks/twilio/musashino/sms", 100 * 1024),
                                       ("/webhooks/twilio/musashino/status", 40 * 1024 * 1024)])
def test_huge_bodies_are_refused(client, city, path, size):
    """A body larger than the provider ever sends (no signature needed to send one): 413?"""
    before = state(client.application)
    response = client.post(path, data=b"x" * size, content_type="application/json")
    assert response.status_code == 413
    assert state(client.application) == before


def test_twenty_thousand_taps_in_one_webhook_answer_once(client, city):
    """A signed webhook of 20,000 taps (more parameters than PostgreSQL takes in one statement):
    is the check answered once, every tap claimed, and the redelivery of it all without effect?"""
    tenant, person, data = city
    events = [postback_event(RESIDENT, data) for _ in range(20_000)]
    body, _ = signed_webhook(LINE_SECRET, events)

    assert post_signed_line(client, tenant.slug, body).status_code == 200

    [check] = tenant.api.get(f"/api/v1/checks?resident_id={person['id']}").get_json()["items"]
    assert check["status"] == "answered"
    with client.application.app_context(), all_tenants():
        assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 20_000
    before = state(client.application)
    assert post_signed_line(client, tenant.slug, body).status_code == 200
    assert state(client.application) == before


@pytest.mark.parametrize("form", [
    MultiDict({"MessageSid": "SM\x00", "From": RESIDENT_PHONE, "Body": "1"}),
    MultiDict({"MessageSid": "SM" + "0" * 32, "From": RESIDENT_PHONE + "\x00", "Body": "1"}),
    MultiDict({"MessageSid": "SM" + "0" * 32, "From": RESIDENT_PHONE, "Body": "元気\x00"}),
    MultiDict({"MessageSid": "SM" + "0" * 5000, "From": RESIDENT_PHONE, "Body": "1"}),
    MultiDict({"From": RESIDENT_PHONE, "Body": "1"}),
    MultiDict([("MessageSid", "SM" + "0" * 32), ("MessageSid", "SM" + "1" * 32),
               ("From", RESIDENT_PHONE), ("Body", "1")]),
    MultiDict([("MessageSid", "SM" + "0" * 32), ("From", RESIDENT_PHONE),
               ("From", "+818012345678"), ("Body", "1")]),
])
def test_sms_forms_with_odd_fields_change_nothing(client, city, form):
    """A signed SMS webhook with NUL bytes, a missing or repeated field, an absurd SID: 400?"""
    before = state(client.application)
    response = post_signed_twilio(client, "/webhooks/twilio/musashino/sms", form)
    assert response.status_code == 400
    assert state(client.application) == before


@pytest.mark.parametrize("query", ["delivery=2147483648", "delivery=99999999999999999999",
                                   "delivery=-1", "delivery=%00", "delivery=1&delivery=2"])
@pytest.mark.parametrize("kind", ["voice", "status"])
def test_twilio_callbacks_for_ids_no_row_can_have(client, city, kind, query):
    """A signed voice or status callback for a delivery id above 2^31−1: not a 500?"""
    path = f"/webhooks/twilio/musashino/{kind}?{query}"
    form = MultiDict({"CallSid": "CA" + "0" * 32, "CallStatus": "completed", "Digits": "1",
                      "MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"})
    before = state(client.application)
    response = post_signed_twilio(client, path, form)
    assert response.status_code in ((200, 400) if kind == "voice" else (400, 404))
    assert state(client.application) == before


def test_unsigned_query_strings_of_odd_bytes_are_refused(client, city):
    """Twilio's signature covers the URL: a query string that is not UTF-8 is a 403, not a 500?"""
    before = state(client.application)
    response = client.post("/webhooks/twilio/musashino/sms", data={"MessageSid": "SM1"},
                           headers={"X-Twilio-Signature": "x"},
                           environ_overrides={"QUERY_STRING": "x=\xff\xfe%00"})
    assert response.status_code == 403
    assert state(client.application) == before


# Generated payloads

FUZZ = settings(max_examples=250, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Text as an attacker writes it: NUL and other control bytes, lone surrogates, odd scripts.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
form_text = st.text(st.characters(codec="utf-8"), max_size=40)  # what a form can carry
header_text = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60)
huge_number = st.one_of(st.integers(min_value=2**31, max_value=10**40), st.integers(max_value=0))
bad_id_text = st.one_of(huge_number.map(str), any_text.filter(lambda t: not t.isdigit()),
                        st.integers(min_value=1, max_value=300).map(lambda n: "9" * n))
# Unusable values for one field of a LINE event: never a string LINE would send there.
unusable = st.one_of(
    st.none(), st.booleans(), huge_number, st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    any_text.map(lambda t: t + "\x00"), st.just("\ud800"),
    st.integers(min_value=5001, max_value=20000).map(lambda n: "あ" * n))
# Postback data that names nothing: ids out of range, occurrences of no check, unknown verbs.
dead_postback = st.one_of(
    bad_id_text.map(lambda v: f"ack:{v}"), huge_number.map(lambda v: f"digest:{v}:2030-04-01"),
    bad_id_text.map(lambda v: f"digest:{v}"), any_text.map(lambda v: f"answer:{v}x"),
    any_text.filter(lambda t: not t.startswith(("answer:", "ack:", "digest:"))))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=15)


@st.composite
def unusable_event(draw: st.DrawFn) -> Any:
    """A LINE event from the resident (or anyone): a text LINE could not have sent, or a postback
    that names nothing, maybe with other fields LINE could not have sent either."""
    sender = draw(st.sampled_from([RESIDENT, user_id(0x5EC)]))
    if draw(st.booleans()):
        event = postback_event(sender, draw(dead_postback))
    else:
        event = text_message_event(sender, draw(unusable))
    for field in draw(st.lists(st.sampled_from(["userId", "webhookEventId", "type", "source",
                                                "message", "postback", "replyToken"]), max_size=2)):
        value = draw(unusable.filter(lambda v: v is not None))  # no replyToken is a valid event
        if field == "userId":
            event["source"]["userId"] = value
        else:
            event[field] = value
    return event


def line_body(events: Any) -> bytes:
    return json.dumps({"destination": user_id(0xB07), "events": events}).encode()


@st.composite
def signed_line_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["events", "junk events", "any json", "deep", "bytes"]))
    if kind == "events":
        return line_body(draw(st.lists(unusable_event(), min_size=1, max_size=5)))
    if kind == "junk events":
        return line_body(draw(st.lists(json_values, max_size=5)))
    if kind == "any json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=200_000))
        return b'{"events": ' + b"[" * depth + b"]" * depth + b"}"
    return draw(st.binary(max_size=200))


@FUZZ
@given(body=signed_line_body())
def test_signed_line_webhooks_with_hostile_events(client, before, body):
    """Signed LINE webhooks of unusable events, junk, deep or broken JSON: 200 or 400, no change?"""
    response = client.post("/webhooks/line/musashino", data=body, content_type="application/json",
                           headers={"X-Line-Signature": line_signature(body)})
    assert response.status_code in (200, 400)
    assert state(client.application) == before


@FUZZ
@given(slug=st.one_of(st.just("musashino"), any_text), body=st.binary(max_size=300),
       signature=st.one_of(st.none(), header_text))
def test_unsigned_line_webhooks(client, before, slug, body, signature):
    """Anyone's POST to a LINE webhook URL of any slug, body and signature: a 4xx, no change?"""
    headers = {} if signature is None else {"X-Line-Signature": signature}
    response = client.post(f"/webhooks/line/{quote(slug, safe='', errors='surrogatepass')}",
                           data=body, content_type="application/json", headers=headers)
    assert 400 <= response.status_code < 500
    assert state(client.application) == before


TWILIO_NAMES = ["MessageSid", "CallSid", "From", "Body", "Digits", "MessageStatus", "CallStatus",
                "ErrorCode", "To", "AccountSid"]


@st.composite
def twilio_request(draw: st.DrawFn) -> tuple[str, MultiDict]:
    """A callback URL naming no delivery a row can have (or none), and a form of Twilio's field
    names (repeated, missing, NUL bytes, absurd lengths) whose sender is nobody we know."""
    kind = draw(st.sampled_from(["sms", "voice", "status"]))
    query = draw(st.lists(bad_id_text, max_size=2))
    path = f"/webhooks/twilio/musashino/{kind}"
    if query:
        path += "?" + "&".join(f"delivery={quote(value, safe='')}" for value in query)
    pairs = draw(st.lists(st.tuples(st.sampled_from(TWILIO_NAMES), st.one_of(
        form_text, form_text.map(lambda t: t + "\x00"),
        st.integers(min_value=1, max_value=5000).map(lambda n: "1" * n))), max_size=8))
    return path, MultiDict(pairs)


@FUZZ
@given(request=twilio_request())
def test_signed_twilio_webhooks_with_hostile_forms(client, before, request):
    """Signed Twilio callbacks with odd forms and ids: never a 5xx, and nothing changes?"""
    path, form = request
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, form)
    response = client.post(path, data=form, headers={"X-Twilio-Signature": signed})
    assert response.status_code < 500
    assert state(client.application) == before


@FUZZ
@given(slug=st.one_of(st.just("musashino"), any_text),
       kind=st.sampled_from(["sms", "voice", "status"]), body=st.binary(max_size=300),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data",
                                     "multipart/form-data; boundary=x", "text/plain"]),
       signature=st.one_of(st.none(), header_text))
def test_unsigned_twilio_webhooks(client, before, slug, kind, body, content_type, signature):
    """Anyone's POST to a Twilio webhook URL of any slug, body and signature: a 4xx, no change?"""
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    path = f"/webhooks/twilio/{quote(slug, safe='', errors='surrogatepass')}/{kind}"
    response = client.post(path, data=body, content_type=content_type, headers=headers)
    assert 400 <= response.status_code < 500
    assert state(client.application) == before
