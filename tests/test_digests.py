"""The つながり group digest: who in the group has not answered, on LINE, once, by name only, and
the leader's 「見に行きます」 from it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mimamori.extensions import db
from tenants.models import Delivery, GroupDigest
from tenants.tenancy import bind_tenant
from tests.fakes.line import postback_event, user_id
from tests.fakes.twilio import gather_digits, inbound_sms
from tests.fixtures.engine import at_once, tokyo
from tests.webhooks_support import (
    DAY1,
    TWILIO_FROM,
    TWILIO_SID,
    add_resident,
    credentials,
    daily_policy,
    ok_button_data,
    post_line,
    post_twilio,
    rows,
    run_clock,
    twilio_url,
    work,
)

DAY2 = "2030-04-02"
LEADER, HANAKO, JIRO_LINE, GORO, OUTSIDER = (user_id(n) for n in (1, 2, 4, 5, 9))


def make_group(tenant, policy_id, **group):
    """つながりサロン中町: a LINE leader who answers, and members on LINE, SMS and voice."""
    people = {
        "leader": add_resident(tenant.api, policy_id, name="佐藤 一郎", name_kana="サトウ イチロウ",
                               line_user_id=LEADER, phone="090-1000-0001"),
        "hanako": add_resident(tenant.api, policy_id, name="山田 花子", name_kana="ヤマダ ハナコ",
                               line_user_id=HANAKO, phone="090-1000-0002"),
        "sms_silent": add_resident(tenant.api, policy_id, name="鈴木 次郎", name_kana="スズキ ジロウ",
                                   channels=["sms"], phone="090-1000-0003"),
        "sms_answers": add_resident(tenant.api, policy_id, name="田中 三郎",
                                    name_kana="タナカ サブロウ", channels=["sms"],
                                    phone="090-1000-0004"),
        "line_silent": add_resident(tenant.api, policy_id, name="高橋 四郎",
                                    name_kana="タカハシ シロウ", line_user_id=JIRO_LINE,
                                    phone="090-1000-0005"),
        "voice_silent": add_resident(tenant.api, policy_id, name="伊藤 五子", name_kana="イトウ イツコ",
                                     channels=["voice"], phone="090-1000-0006"),
        "voice_answers": add_resident(tenant.api, policy_id, name="渡辺 六郎",
                                      name_kana="ワタナベ ロクロウ", channels=["voice"],
                                      phone="090-1000-0007"),
        "not_opted_in": add_resident(tenant.api, policy_id, name="小林 七海", name_kana="コバヤシ ナナミ",
                                     line_user_id=GORO, phone="090-1000-0008"),
    }
    add_resident(tenant.api, policy_id, name="外部 八郎", line_user_id=OUTSIDER, phone="090-1000-0009")
    members = [p["id"] for p in people.values()]
    response = tenant.api.post("/api/v1/groups", {
        "name": "つながりサロン中町", "leader_resident_id": people["leader"]["id"],
        "member_ids": members, "digest_enabled": True,
        "digest_member_ids": [people["hanako"]["id"], people["line_silent"]["id"]], **group})
    assert response.status_code == 201, response.get_json()
    return response.get_json(), people


@pytest.fixture
def salon(make_tenant):
    """武蔵野市 with LINE and Twilio, a daily 09:00 check (window 60 minutes) and the group."""
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    group, people = make_group(tenant, policy["id"])
    return tenant, group, people


def morning(clean_app, client, tenant, fakes):
    """The 09:00 checks go out; the leader and 山田 answer on LINE, 田中 by SMS, 渡辺 on the call."""
    line, twilio = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    for person in (LEADER, HANAKO):
        [check] = line.delivered_to(person)
        assert post_line(client, tenant.slug, [postback_event(person, ok_button_data(check))]
                         ).status_code == 200
    assert post_twilio(client, twilio_url(tenant.slug, "sms"), inbound_sms(
        "+819010000004", TWILIO_FROM, "はい", TWILIO_SID)).status_code == 200
    [call] = twilio.calls_to("+819010000007")
    assert post_twilio(client, call.url, gather_digits(call, "1")).status_code == 200
    run_clock(clean_app, tokyo(f"{DAY1} 10:00"))  # the others' checks are missed: incidents open
    work(clean_app)


def digests_sent(line):
    """Per LINE user, the digest messages they received."""
    found = {}
    for person in (LEADER, HANAKO, JIRO_LINE, GORO, OUTSIDER):
        found[person] = [m for m in line.delivered_to(person) if "まだ応答のない方" in _text(m)]
    return found


def _text(message):
    return message["template"]["text"] if message["type"] == "template" else message["text"]


def test_digest_lists_who_has_not_answered_on_any_channel(clean_app, client, salon, fakes):
    """23 hours after the check, do the leader and opted-in members get one LINE message naming
    the silent members — SMS, voice and LINE alike — by name, never by number?"""
    tenant, group, _ = salon
    line, _ = fakes
    morning(clean_app, client, tenant, fakes)
    assert run_clock(clean_app, tokyo(f"{DAY2} 07:59")).digests == 0

    assert run_clock(clean_app, tokyo(f"{DAY2} 08:00")).digests == 3
    work(clean_app)

    sent = digests_sent(line)
    assert [len(sent[p]) for p in (LEADER, HANAKO, JIRO_LINE, GORO, OUTSIDER)] == [1, 1, 1, 0, 0]
    text = _text(sent[HANAKO][0])
    assert text.startswith("【つながりサロン中町】4月1日 9:00の安否確認に、まだ応答のない方がいます。")
    # Kana order, whether their check went by voice, LINE or SMS, opted in or not; those who
    # answered by LINE, SMS or keypad are not named.
    assert "・伊藤 五子さん\n・小林 七海さん\n・鈴木 次郎さん\n・高橋 四郎さん\n" in text
    for absent in ("山田", "田中", "渡辺", "佐藤", "090", "+81"):
        assert absent not in text
    leader_copy = sent[LEADER][0]
    assert ok_button_data(leader_copy) == f"digest:{group['id']}:2030-04-01T00:00Z"
    assert "quickReply" not in sent[HANAKO][0] and sent[HANAKO][0]["type"] == "text"
    assert run_clock(clean_app, tokyo(f"{DAY2} 08:05")).digests == 0


def test_the_leader_goes_to_see_from_the_digest(clean_app, client, salon, fakes):
    """Does the leader's 「見に行きます」 acknowledge the listed residents' incidents in the
    leader's name, and the group's view show it?"""
    tenant, group, people = salon
    line, _ = fakes
    morning(clean_app, client, tenant, fakes)
    run_clock(clean_app, tokyo(f"{DAY2} 08:00"))
    work(clean_app)
    [leader_copy] = digests_sent(line)[LEADER]
    event = postback_event(LEADER, ok_button_data(leader_copy))

    assert post_line(client, tenant.slug, [event]).status_code == 200

    listed = {people[k]["id"] for k in ("voice_silent", "not_opted_in", "sms_silent", "line_silent")}
    everyone = tenant.api.get("/api/v1/incidents").get_json()["items"]
    incidents = [i for i in everyone if i["resident_id"] in listed]
    assert len(incidents) == 4 and {i["status"] for i in incidents} == {"acknowledged"}
    # Someone outside the group who did not answer either is not the leader's to acknowledge.
    assert [i["status"] for i in everyone if i["resident_id"] not in listed] == ["open"]
    assert all(any(e["kind"] == "acknowledgement" and e["detail"].startswith("佐藤 一郎さんが対応します")
                   for e in i["timeline"]) for i in incidents)
    work(clean_app)
    [reply] = line.replied(event["replyToken"])
    assert ("伊藤 五子さん、小林 七海さん、鈴木 次郎さん、高橋 四郎さんの未確認案件に、"
            "佐藤 一郎さんが見に行くと記録しました") in reply["text"]
    [digest] = tenant.api.get(f"/api/v1/groups/{group['id']}/digests").get_json()["items"]
    assert digest["acknowledged_by"] == "佐藤 一郎" and digest["recipients"] == 3
    assert [(p["name"], p["channel"], p["incident_status"]) for p in digest["unanswered"]] == [
        ("伊藤 五子", "voice", "acknowledged"), ("小林 七海", "line", "acknowledged"),
        ("鈴木 次郎", "sms", "acknowledged"), ("高橋 四郎", "line", "acknowledged")]
    assert {p["resident_id"] for p in digest["unanswered"]} == listed


def test_only_the_leader_can_acknowledge_from_a_digest(clean_app, client, salon, fakes):
    """A member (or anyone) sending the leader's postback data changes nothing."""
    tenant, group, _ = salon
    line, _ = fakes
    morning(clean_app, client, tenant, fakes)
    run_clock(clean_app, tokyo(f"{DAY2} 08:00"))
    work(clean_app)
    data = f"digest:{group['id']}:2030-04-01T00:00Z"
    event = postback_event(HANAKO, data)
    assert post_line(client, tenant.slug, [event, postback_event(OUTSIDER, data),
                                           postback_event(LEADER, f"digest:{group['id']}:nope")]
                     ).status_code == 200
    incidents = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert {i["status"] for i in incidents} == {"open"}
    work(clean_app)
    assert "グループリーダー" in line.replied(event["replyToken"])[0]["text"]


def test_residents_without_an_incident_yet_are_named_in_the_reply(clean_app, client, make_tenant,
                                                                   fakes):
    """With a 24-hour response window there is no incident at 23 hours: does the leader's tap
    record nothing and say so?"""
    line, _ = fakes
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api, response_window_minutes=24 * 60)
    make_group(tenant, policy["id"])
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    run_clock(clean_app, tokyo(f"{DAY2} 08:00"))
    work(clean_app)
    [leader_copy] = digests_sent(line)[LEADER]
    event = postback_event(LEADER, ok_button_data(leader_copy))
    assert post_line(client, tenant.slug, [event]).status_code == 200
    assert tenant.api.get("/api/v1/incidents").get_json()["items"] == []
    work(clean_app)
    reply = line.replied(event["replyToken"])[0]["text"]
    assert "まだ未確認案件になっていないため、記録していません" in reply
    assert "鈴木 次郎さん" in reply and "佐藤 一郎さん" in reply  # the leader did not answer either
    assert "見に行くと記録しました" not in reply


def test_nobody_unanswered_sends_no_digest(clean_app, client, make_tenant, fakes):
    """Everyone answered: is no digest sent?"""
    line, _ = fakes
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    leader = add_resident(tenant.api, policy["id"], name="佐藤 一郎", line_user_id=LEADER)
    member = add_resident(tenant.api, policy["id"], name="山田 花子", line_user_id=HANAKO,
                          phone="090-1000-0002")
    tenant.api.post("/api/v1/groups", {"name": "つながり", "leader_resident_id": leader["id"],
                                       "member_ids": [leader["id"], member["id"]],
                                       "digest_enabled": True, "digest_member_ids": [member["id"]]})
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    for person in (LEADER, HANAKO):
        [check] = line.delivered_to(person)
        post_line(client, tenant.slug, [postback_event(person, ok_button_data(check))])
    run_clock(clean_app, tokyo(f"{DAY2} 08:00"))
    work(clean_app)
    assert digests_sent(line)[LEADER] == [] and digests_sent(line)[HANAKO] == []
    assert rows(clean_app, tenant.id, Delivery, Delivery.purpose == "digest") == []


def test_a_disabled_digest_sends_nothing(clean_app, client, make_tenant, fakes):
    """A group without the digest: nothing at 23 hours."""
    line, _ = fakes
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    make_group(tenant, policy["id"], digest_enabled=False)
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    assert run_clock(clean_app, tokyo(f"{DAY2} 08:00")).digests == 0
    work(clean_app)
    assert digests_sent(line)[LEADER] == []


def test_two_clocks_send_one_digest(clean_app, client, salon, fakes):
    """Two schedulers at 08:00 at once: one digest, one message per person."""
    tenant, _, _ = salon
    line, _ = fakes
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    at_once(lambda: run_clock(clean_app, tokyo(f"{DAY2} 08:00")))
    work(clean_app)
    with clean_app.app_context(), bind_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(GroupDigest)) == 1
        assert db.session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.purpose == "digest")) == 3
    assert [len(m) for m in digests_sent(line).values()] == [1, 1, 1, 0, 0]


def test_digest_settings_through_the_group_api(salon):
    """Are the delay and the opted-in members kept, and a non-member refused by name?"""
    tenant, group, people = salon
    assert (group["digest_enabled"], group["digest_after_minutes"]) == (True, 23 * 60)
    assert group["digest_member_ids"] == sorted([people["hanako"]["id"], people["line_silent"]["id"]])
    path = f"/api/v1/groups/{group['id']}"
    changed = tenant.api.patch(path, {"digest_after_minutes": 120,
                                      "digest_member_ids": [people["hanako"]["id"]]})
    assert changed.status_code == 200
    assert changed.get_json()["digest_member_ids"] == [people["hanako"]["id"]]
    assert changed.get_json()["digest_after_minutes"] == 120
    outsider = tenant.api.post("/api/v1/residents", {"name": "外 九郎"}).get_json()
    bad = tenant.api.patch(path, {"digest_member_ids": [outsider["id"]], "digest_after_minutes": 0})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"digest_after_minutes"}
    bad = tenant.api.patch(path, {"digest_member_ids": [outsider["id"]]})
    assert bad.status_code == 422 and "digest_member_ids" in bad.get_json()["errors"]


def test_an_outside_leader_gets_the_digest_and_goes_to_see(clean_app, client, make_tenant, fakes):
    """A welfare commissioner who leads the group without being a resident: do they get the
    digest with 「見に行きます」 and can they acknowledge from it?"""
    line, _ = fakes
    commissioner = user_id(10)
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    member = add_resident(tenant.api, policy["id"], name="山田 花子", channels=["sms"])
    group = tenant.api.post("/api/v1/groups", {
        "name": "北町見守り", "leader_name": "北村 民生委員", "leader_line_user_id": commissioner,
        "member_ids": [member["id"]], "digest_enabled": True, "digest_after_minutes": 120}
    ).get_json()
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    run_clock(clean_app, tokyo(f"{DAY1} 10:00"))
    run_clock(clean_app, tokyo(f"{DAY1} 11:00"))
    work(clean_app)
    [digest] = [m for m in line.delivered_to(commissioner) if "まだ応答のない方" in _text(m)]
    assert ok_button_data(digest) == f"digest:{group['id']}:2030-04-01T00:00Z"
    event = postback_event(commissioner, ok_button_data(digest))
    assert post_line(client, tenant.slug, [event]).status_code == 200
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert (incident["status"], incident["acknowledged_by"]) == ("acknowledged", "北村 民生委員")
