"""The round view's data: the tally by group and by area, who has not answered (with their
vulnerability notes), and one action that starts the normal alert chain for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenants.models import Delivery
from tests.factories import chain_body, created, policy_body, resident_body
from tests.webhooks_support import rows


@pytest.fixture
def round_(tenant):
    """A round to five residents in two areas and a community group; 佐藤 has answered."""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    bare = created(tenant.api.post("/api/v1/check-policies", policy_body(None, name="通知なし")))
    area1 = created(tenant.api.post("/api/v1/groups", {"name": "中町一丁目", "kind": "area"}))
    area2 = created(tenant.api.post("/api/v1/groups", {"name": "中町二丁目", "kind": "area"}))
    salon = created(tenant.api.post("/api/v1/groups", {"name": "つながりサロン"}))

    def person(name, policy_id, groups, notes=None, phone="090-5000-0000"):
        return created(tenant.api.post("/api/v1/residents", {**resident_body(
            name=name, check_policy_id=policy_id, group_ids=[g["id"] for g in groups],
            phone=phone), **({"notes": notes} if notes else {})}))

    people = {
        "yamada": person("山田 花子", policy["id"], [area1, salon], notes="車椅子を使用。2階に寝室。",
                         phone="090-5000-0001"),
        "sato": person("佐藤 一郎", policy["id"], [area1], phone="090-5000-0002"),
        "suzuki": person("鈴木 次郎", None, [area2], notes="難聴: 電話は長めに鳴らす",
                         phone="090-5000-0003"),
        "takahashi": person("高橋 四郎", bare["id"], [], phone="090-5000-0004"),
        "ito": person("伊藤 五子", policy["id"], [salon], phone="090-5000-0005"),
    }
    started = created(tenant.api.post("/api/v1/rounds", {"message": "地震がありました。ご無事ですか?"}))
    checks = tenant.api.get("/api/v1/checks?limit=100").get_json()["items"]
    sato = next(c for c in checks if c["resident_id"] == people["sato"]["id"])
    assert tenant.api.post(f"/api/v1/checks/{sato['id']}/answer", {}).status_code == 200
    return tenant, started, people, {"area1": area1, "area2": area2, "salon": salon}


def test_breakdown_by_group_and_area_with_who_is_missing(round_):
    """Does the breakdown count per area and group, and list the silent with their notes?"""
    tenant, started, _, groups = round_

    body = tenant.api.get(f"/api/v1/rounds/{started['id']}/breakdown").get_json()

    assert (body["round"]["targeted"], body["round"]["answered"]) == (5, 1)
    assert [(a["name"], a["targeted"], a["answered"], a["pending"]) for a in body["areas"]] == [
        ("中町一丁目", 2, 1, 1), ("中町二丁目", 1, 0, 1)]
    assert [(g["name"], g["kind"], g["targeted"], g["pending"]) for g in body["groups"]] == [
        ("つながりサロン", "community", 2, 2)]
    assert body["without_area"] == {"targeted": 2, "answered": 0, "pending": 2, "missed": 0,
                                    "failed": 0}
    missing = {p["name"]: p for p in body["unanswered"]}
    assert set(missing) == {"山田 花子", "鈴木 次郎", "高橋 四郎", "伊藤 五子"}
    assert missing["山田 花子"]["notes"] == "車椅子を使用。2階に寝室。"
    assert missing["山田 花子"]["group_ids"] == sorted([groups["area1"]["id"], groups["salon"]["id"]])
    assert missing["鈴木 次郎"]["notes"] == "難聴: 電話は長めに鳴らす"
    assert missing["鈴木 次郎"]["phone"] == "+819050000003"
    assert missing["高橋 四郎"]["incident_id"] is None and body["next"] is None


def test_the_missing_list_pages(round_):
    """With limit=3 the fourth silent resident is on the next page."""
    tenant, started, _, _ = round_
    path = f"/api/v1/rounds/{started['id']}/breakdown"
    first = tenant.api.get(f"{path}?limit=3").get_json()
    second = tenant.api.get(f"{path}?limit=3&cursor={first['next']}").get_json()
    names = [p["name"] for p in first["unanswered"] + second["unanswered"]]
    assert len(first["unanswered"]) == 3 and second["next"] is None
    assert sorted(names) == sorted(["山田 花子", "鈴木 次郎", "高橋 四郎", "伊藤 五子"])
    assert tenant.api.get(f"{path}?cursor=nonsense").status_code == 422


def test_escalate_starts_each_residents_own_chain_once(clean_app, engine, round_):
    """One action opens an incident per silent resident on their own policy's chain — or says
    there is none — and pressing it again opens nothing more."""
    tenant, started, people, _ = round_
    path = f"/api/v1/rounds/{started['id']}/escalate"

    first = tenant.api.post(path, {})

    assert first.status_code == 200, first.get_json()
    assert (first.get_json()["unanswered"], first.get_json()["opened"]) == (4, 4)
    again = tenant.api.post(path, {}).get_json()
    assert (again["opened"], again["incident_ids"]) == (0, [])
    incidents = {i["resident_id"]: i for i in tenant.api.get("/api/v1/incidents").get_json()["items"]}
    assert set(incidents) == {people[k]["id"] for k in ("yamada", "suzuki", "takahashi", "ito")}
    for key in ("suzuki", "takahashi"):  # no policy; a policy without a chain
        timeline = incidents[people[key]["id"]]["timeline"]
        assert [e["kind"] for e in timeline] == ["opened", "chain"]
        assert timeline[1]["detail"] == "通知順序が設定されていません"
    assert "一斉安否確認に応答がない" in incidents[people["yamada"]["id"]]["timeline"][0]["detail"]

    engine.run(datetime.now(UTC) + timedelta(minutes=1))  # the chains' first steps fall due

    alerted = {d.recipient_id for d in rows(clean_app, tenant.id, Delivery,
                                            Delivery.purpose == "alert")}
    assert alerted == {people["yamada"]["id"], people["ito"]["id"]}  # step 1: the resident, by voice
    yamada = tenant.api.get(f"/api/v1/incidents/{incidents[people['yamada']['id']]['id']}").get_json()
    assert "step" in [e["kind"] for e in yamada["timeline"]]
    breakdown = tenant.api.get(f"/api/v1/rounds/{started['id']}/breakdown").get_json()
    assert {p["incident_status"] for p in breakdown["unanswered"]} == {"open"}


def test_an_answer_after_escalation_resolves_the_incident(round_):
    """The resident answers the round after staff escalated: is the incident resolved as safe?"""
    tenant, started, people, _ = round_
    tenant.api.post(f"/api/v1/rounds/{started['id']}/escalate", {})
    checks = tenant.api.get(f"/api/v1/checks?resident_id={people['ito']['id']}").get_json()["items"]
    assert tenant.api.post(f"/api/v1/checks/{checks[0]['id']}/answer", {}).status_code == 200
    [incident] = tenant.api.get(f"/api/v1/incidents?resident_id={people['ito']['id']}"
                                ).get_json()["items"]
    assert (incident["status"], incident["outcome"]) == ("resolved", "safe")


def test_another_tenants_round_is_not_found(round_, make_tenant):
    """Can another tenant read the breakdown or escalate the round?"""
    _, started, _, _ = round_
    other = make_tenant("mitaka", "三鷹市")
    assert other.api.get(f"/api/v1/rounds/{started['id']}/breakdown").status_code == 404
    assert other.api.post(f"/api/v1/rounds/{started['id']}/escalate", {}).status_code == 404
