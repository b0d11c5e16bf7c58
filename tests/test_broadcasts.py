"""Broadcasts: staff send information to a group or everyone, each person on their own channel,
and see how many it reached."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tenants.models import Delivery
from tests.factories import created, resident_body
from tests.fakes.line import user_id
from tests.webhooks_support import (
    NO_QUIET_HOURS,
    add_resident,
    credentials,
    post_twilio,
    rows,
    work,
)

NOTICE = "10月5日(土)10時から中町集会所で防災訓練があります。\nお誘い合わせのうえご参加ください。"
LINE_PERSON = user_id(3)


@pytest.fixture
def town(make_tenant):
    """武蔵野市 with LINE and Twilio; a group whose members are reached on LINE, SMS and voice,
    one member nothing can reach, and a resident outside the group."""
    tenant = make_tenant("musashino", **credentials(), **NO_QUIET_HOURS)
    members = [
        add_resident(tenant.api, None, name="山田 花子", line_user_id=LINE_PERSON,
                     phone="090-2000-0001"),
        add_resident(tenant.api, None, name="鈴木 次郎", channels=["sms"], phone="090-2000-0002"),
        add_resident(tenant.api, None, name="伊藤 五子", channels=["voice"], phone="090-2000-0003"),
        add_resident(tenant.api, None, name="高橋 四郎", channels=["line"], phone=None),
    ]
    add_resident(tenant.api, None, name="外部 八郎", channels=["sms"], phone="090-2000-0009")
    group = created(tenant.api.post("/api/v1/groups", {
        "name": "中町一丁目", "kind": "area", "member_ids": [m["id"] for m in members]}))
    return tenant, group


def test_a_group_broadcast_reaches_each_member_on_their_own_channel(clean_app, client, town, fakes):
    """Does an event notice go to each member by LINE, SMS or a call — with no answer button —
    and the counts follow the deliveries?"""
    tenant, group = town
    line, twilio = fakes

    response = tenant.api.post("/api/v1/broadcasts", {"group_id": group["id"], "message": NOTICE})

    body = created(response)
    assert (body["targeted"], body["unreachable"], body["pending"], body["sent"]) == (4, 1, 3, 0)
    work(clean_app)
    counts = tenant.api.get(f"/api/v1/broadcasts/{body['id']}").get_json()
    assert (counts["targeted"], counts["sent"], counts["pending"], counts["failed"]) == (4, 3, 0, 0)
    assert counts["channels"] == {"line": 1, "sms": 1, "voice": 1}
    [message] = line.delivered_to(LINE_PERSON)
    assert message == {"type": "text", "text": f"【武蔵野市からのお知らせ】\n{NOTICE}"}
    [sms] = twilio.messages_to("+819020000002")
    assert sms.body == f"【武蔵野市からのお知らせ】{NOTICE}"
    assert twilio.messages_to("+819020000009") == []  # not in the group
    [call] = twilio.calls_to("+819020000003")
    document = ET.fromstring(post_twilio(client, call.url, {
        "CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_, "To": call.to,
        "CallStatus": "in-progress"}).get_data(as_text=True))
    assert document.find("Gather") is None and document.find("Hangup") is not None
    spoken = document.find("Say").text
    assert spoken.count("防災訓練があります") == 2 and "1 を押して" not in spoken
    listed = tenant.api.get("/api/v1/broadcasts").get_json()
    assert [b["id"] for b in listed["items"]] == [body["id"]] and listed["next"] is None


def test_a_failed_channel_falls_back_and_counts_once(clean_app, make_tenant, fakes):
    """An SMS to a landline fails: does the broadcast go by call instead, counted once as sent —
    for a second broadcast too?"""
    _, twilio = fakes
    twilio.landline_numbers.add("+81320000005")
    tenant = make_tenant("musashino", **credentials(), **NO_QUIET_HOURS)
    add_resident(tenant.api, None, name="固定 一郎", channels=["sms", "voice"], phone="03-2000-0005")
    add_resident(tenant.api, None, name="携帯 二郎", channels=["sms", "voice"], phone="090-2000-0006")
    first = created(tenant.api.post("/api/v1/broadcasts", {"message": "台風が接近しています。"}))
    work(clean_app)
    second = created(tenant.api.post("/api/v1/broadcasts", {"message": "避難所を開設しました。"}))
    work(clean_app)
    for broadcast in (first, second):
        counts = tenant.api.get(f"/api/v1/broadcasts/{broadcast['id']}").get_json()
        assert (counts["targeted"], counts["sent"], counts["failed"]) == (2, 2, 0)
        assert counts["channels"] == {"sms": 1, "voice": 1}
    calls = twilio.calls_to("+81320000005")
    assert len(calls) == 2
    fallbacks = rows(clean_app, tenant.id, Delivery, Delivery.channel == "voice")
    assert [(d.broadcast_id, d.body) for d in fallbacks] == [
        (first["id"], "武蔵野市からのお知らせです。台風が接近しています。"),
        (second["id"], "武蔵野市からのお知らせです。避難所を開設しました。")]


def test_a_fallback_call_waits_for_quiet_hours(clean_app, make_tenant, fakes):
    """An SMS to a landline fails in the middle of the night: is the call that replaces it held
    until quiet hours end, instead of ringing at once?"""
    _, twilio = fakes
    twilio.landline_numbers.add("+81320000005")
    local = datetime.now(ZoneInfo("Asia/Tokyo"))
    around_now = {"start": (local - timedelta(hours=1)).strftime("%H:%M"),
                  "end": (local + timedelta(hours=1)).strftime("%H:%M")}
    tenant = make_tenant("musashino", **credentials(), quiet_hours=around_now)
    add_resident(tenant.api, None, name="固定 一郎", channels=["sms", "voice"], phone="03-2000-0005")
    broadcast = created(tenant.api.post("/api/v1/broadcasts", {"message": "台風が接近しています。"}))
    work(clean_app)
    assert twilio.calls_to("+81320000005") == []
    [call] = rows(clean_app, tenant.id, Delivery, Delivery.channel == "voice")
    assert (call.broadcast_id, call.status, call.enqueued_at) == (broadcast["id"], "queued", None)
    assert call.not_before.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") == around_now["end"]


def test_a_broadcast_to_everyone_on_the_sandbox(clean_app, engine, tenant):
    """group_id null reaches every resident, paused ones too (it is information, not a check)."""
    people = [created(tenant.api.post("/api/v1/residents", resident_body(
        name=f"住民 {i}", phone=f"090-3000-{i:04d}"))) for i in range(3)]
    tenant.api.post(f"/api/v1/residents/{people[0]['id']}/pause",
                    {"until": "2099-01-01", "reason": "入院"})
    body = created(tenant.api.post("/api/v1/broadcasts", {"group_id": None, "message": "お知らせ"}))
    assert body["targeted"] == 3 and body["statuses"] == {"queued": 3}
    engine.work()
    assert tenant.api.get(f"/api/v1/broadcasts/{body['id']}").get_json()["statuses"] == {"sent": 3}


@pytest.mark.parametrize(("payload", "field"), [
    ({"message": "あ" * 501}, "message"),
    ({"message": "   \n  "}, "message"),
    ({}, "message"),
    ({"group_id": 999, "message": "お知らせ"}, "group_id"),
    ({"group_id": "1", "message": "お知らせ"}, "group_id"),
])
def test_bad_broadcasts_name_the_field(clean_app, tenant, payload, field):
    """Too long for an SMS, blank, or an unknown group: 422 naming the field, nothing sent."""
    response = tenant.api.post("/api/v1/broadcasts", payload)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert rows(clean_app, tenant.id, Delivery) == []


def test_another_tenants_group_and_broadcasts_are_not_found(make_tenant, operator):
    """A group or broadcast id of another tenant is unknown here; operators cannot broadcast."""
    mine, theirs = make_tenant("musashino"), make_tenant("mitaka", "三鷹市")
    group = created(theirs.api.post("/api/v1/groups", {"name": "三鷹の会"}))
    sent = created(theirs.api.post("/api/v1/broadcasts", {"message": "三鷹のお知らせ"}))
    assert mine.api.post("/api/v1/broadcasts", {"group_id": group["id"], "message": "x"}
                         ).status_code == 422
    assert mine.api.get(f"/api/v1/broadcasts/{sent['id']}").status_code == 404
    assert mine.api.get("/api/v1/broadcasts").get_json()["items"] == []
    assert operator.post("/api/v1/broadcasts", {"message": "x"}).status_code == 403
