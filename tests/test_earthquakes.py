"""Earthquake rounds from JMA seismic reports (気象庁防災情報XML): subscription, hold, corrections,
cancellations, duplicates, aftershocks, and the bad input the issue names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mimamori.extensions import db
from tenants.models import EarthquakeTrigger, JmaReport, Round
from tenants.tenancy import all_tenants
from tests.factories import created, resident_body
from tests.fixtures.engine import at_once, tokyo

SAMPLES = Path(__file__).parent / "data" / "jma"
DAY = "2030-04-01"  # the samples' earthquake: 10:15 JST, 震度速報 at 10:17, 震源・震度 at 10:21


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def aftershock(event_id: str, reported: str) -> bytes:
    """The 震度速報 sample as another earthquake (EventID) reported at `reported` (HH:MM)."""
    return (sample("vxse51_tama_5minus.xml").decode()
            .replace("<EventID>20300401101530</EventID>", f"<EventID>{event_id}</EventID>")
            .replace("<ReportDateTime>2030-04-01T10:17:00+09:00</ReportDateTime>",
                     f"<ReportDateTime>{DAY}T{reported}:00+09:00</ReportDateTime>").encode())


def post_report(api, document: bytes):
    return api.post("/api/v1/earthquakes/jma", data=document, content_type="application/xml")


@pytest.fixture
def city(make_tenant, operator):
    """武蔵野市 (sandbox channel) with three residents, subscribed as `subscribe(...)` says."""
    tenant = make_tenant()
    for index in range(3):
        created(tenant.api.post("/api/v1/residents", resident_body(
            name=f"住民 {index}", phone=f"090-4000-{index:04d}")))

    def subscribe(**earthquake):
        response = operator.patch(f"/api/v1/tenants/{tenant.id}", {"earthquake": earthquake})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["earthquake"]

    return tenant, subscribe


def rounds_of(tenant):
    return tenant.api.get("/api/v1/rounds").get_json()["items"]


def triggers_of(tenant):
    return tenant.api.get("/api/v1/earthquakes/triggers").get_json()["items"]


def recorded(app):
    """How many reports and triggers the platform holds (every tenant)."""
    with app.app_context(), all_tenants():
        return (db.session.scalar(select(func.count()).select_from(JmaReport)),
                db.session.scalar(select(func.count()).select_from(EarthquakeTrigger)))


def test_operators_set_the_subscription_and_the_tenant_reads_it(city, operator):
    """Can an operator subscribe a tenant by municipality and area codes, and the tenant read it?"""
    tenant, subscribe = city
    settings = subscribe(city_codes=["13203"], area_codes=["351", "351"], min_intensity="震度５強")
    assert settings == {"city_codes": ["13203"], "area_codes": ["351"], "min_intensity": "5+",
                        "hold_minutes": 10, "fold_minutes": 60}
    changed = operator.patch(f"/api/v1/tenants/{tenant.id}", {"earthquake": {"hold_minutes": 0}})
    assert changed.get_json()["earthquake"] == {**settings, "hold_minutes": 0}
    assert tenant.api.get("/api/v1/earthquakes/settings").get_json() == {**settings,
                                                                         "hold_minutes": 0}
    bad = operator.patch(f"/api/v1/tenants/{tenant.id}", {"earthquake": {
        "city_codes": ["1320300"], "area_codes": ["35"], "min_intensity": "8"}})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]["earthquake"]) == {"city_codes", "area_codes",
                                                            "min_intensity"}
    assert tenant.api.patch(f"/api/v1/tenants/{tenant.id}",
                            {"earthquake": {"hold_minutes": 1}}).status_code == 403


def test_shindo_sokuhou_starts_one_round_after_the_hold(clean_app, engine, city, operator):
    """A 震度速報 of 5弱 in 東京都多摩東部 (351): is the whole tenant asked, once, 10 minutes later?"""
    tenant, subscribe = city
    subscribe(area_codes=["351"])

    answer = post_report(operator, sample("vxse51_tama_5minus.xml"))

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["result"], body["title"], body["max_intensity"]) == ("triggered", "震度速報", "5-")
    [touched] = body["triggers"]
    assert touched["tenant_id"] == tenant.id and touched["fire_at"].startswith("2030-04-01T01:27")
    assert engine.run(tokyo(f"{DAY} 10:26")).earthquake_rounds == 0
    assert rounds_of(tenant) == []
    assert engine.run(tokyo(f"{DAY} 10:27")).earthquake_rounds == 1
    assert engine.run(tokyo(f"{DAY} 10:28")).earthquake_rounds == 0
    [round_] = rounds_of(tenant)
    assert round_["trigger"] == "earthquake" and round_["targeted"] == 3
    assert round_["message"] == "東京都多摩東部で震度5弱の地震がありました。ご無事ですか?"
    [trigger] = triggers_of(tenant)
    assert trigger["status"] == "fired" and trigger["round_id"] == round_["id"]
    checks = tenant.api.get("/api/v1/checks").get_json()["items"]
    assert len(checks) == 3 and {c["status"] for c in checks} == {"sent"}


def test_municipality_code_matches_the_city_in_a_shindo_report(engine, city, operator):
    """Subscribed by JIS code 13203 only: does the 震源・震度に関する情報 (City 1320300) trigger it,
    while the area-only 震度速報 does not?"""
    tenant, subscribe = city
    subscribe(city_codes=["13203"])
    assert post_report(operator, sample("vxse51_tama_5minus.xml")).get_json()["result"] == (
        "no_subscribed_area")
    body = post_report(operator, sample("vxse53_musashino_5minus.xml")).get_json()
    assert body["result"] == "triggered"
    [trigger] = triggers_of(tenant)
    assert (trigger["area_name"], trigger["max_intensity"]) == ("武蔵野市", "5-")
    assert trigger["fire_at"].startswith("2030-04-01T01:31")  # 10:21 + 10 minutes
    engine.run(tokyo(f"{DAY} 10:31"))
    assert rounds_of(tenant)[0]["message"].startswith("武蔵野市で震度5弱")


def test_a_correction_below_the_threshold_before_the_hold_ends_starts_no_round(
        clean_app, engine, city, operator, caplog):
    """A 訂正 lowering 武蔵野市 to 4 two minutes after the 5弱 report: no round, and logged."""
    tenant, subscribe = city
    subscribe(city_codes=["13203"])
    post_report(operator, sample("vxse53_musashino_5minus.xml"))

    with caplog.at_level(logging.INFO, logger="api.earthquakes"):
        body = post_report(operator, sample("vxse53_musashino_correction_4.xml")).get_json()

    assert (body["result"], body["info_type"], body["max_intensity"]) == ("cancelled", "訂正", "4")
    assert engine.run(tokyo(f"{DAY} 10:45")).earthquake_rounds == 0
    assert rounds_of(tenant) == []
    [trigger] = triggers_of(tenant)
    assert (trigger["status"], trigger["cancel_reason"], trigger["max_intensity"]) == (
        "cancelled", "lowered", "4")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("jma_report")]
    assert any("result=cancelled" in line and "info_type=訂正" in line
               and "event_id=20300401101530" in line for line in lines)


def test_jma_cancellation_calls_the_round_off(engine, city, operator):
    """JMA withdraws the 震度速報 (取消) during the hold: is no round started?"""
    tenant, subscribe = city
    subscribe(area_codes=["351"])
    post_report(operator, sample("vxse51_tama_5minus.xml"))
    body = post_report(operator, sample("vxse51_cancel.xml")).get_json()
    assert (body["result"], body["info_type"]) == ("cancelled", "取消")
    assert engine.run(tokyo(f"{DAY} 10:30")).earthquake_rounds == 0
    assert triggers_of(tenant)[0]["cancel_reason"] == "jma_cancelled"


def test_a_duplicate_report_has_no_second_effect(clean_app, engine, city, operator):
    """The same 震度速報 posted twice, then the 震源・震度 report of the same quake: one trigger,
    one round."""
    tenant, subscribe = city
    subscribe(area_codes=["351"], city_codes=["13203"])
    assert post_report(operator, sample("vxse51_tama_5minus.xml")).get_json()["result"] == "triggered"
    again = post_report(operator, sample("vxse51_tama_5minus.xml"))
    assert again.status_code == 200 and again.get_json()["result"] == "duplicate"
    assert post_report(operator, sample("vxse53_musashino_5minus.xml")).get_json()["result"] == (
        "updated")
    assert recorded(clean_app) == (2, 1)
    engine.run(tokyo(f"{DAY} 10:27"))
    post_report(operator, sample("vxse51_tama_5minus.xml"))
    engine.run(tokyo(f"{DAY} 10:40"))
    assert len(rounds_of(tenant)) == 1
    assert len(tenant.api.get("/api/v1/checks").get_json()["items"]) == 3


def test_an_aftershock_within_the_fold_window_joins_the_round(engine, city, operator):
    """An aftershock 35 minutes later joins the first round; one 2 hours later starts another."""
    tenant, subscribe = city
    subscribe(area_codes=["351"], fold_minutes=60)
    post_report(operator, sample("vxse51_tama_5minus.xml"))
    engine.run(tokyo(f"{DAY} 10:27"))
    [first] = rounds_of(tenant)

    assert post_report(operator, aftershock("20300401105000", "10:52")).get_json()["result"] == (
        "triggered")
    assert engine.run(tokyo(f"{DAY} 11:02")).earthquake_rounds == 0

    assert [r["id"] for r in rounds_of(tenant)] == [first["id"]]
    folded = next(t for t in triggers_of(tenant) if t["event_id"] == "20300401105000")
    assert (folded["status"], folded["round_id"]) == ("folded", first["id"])
    post_report(operator, aftershock("20300401123000", "12:32"))
    assert engine.run(tokyo(f"{DAY} 12:42")).earthquake_rounds == 1
    assert len(rounds_of(tenant)) == 2


def test_two_clocks_at_the_end_of_the_hold_start_one_round(clean_app, engine, city, operator):
    """Two schedulers tick at 10:27 at once, with the quake and an aftershock both due: one round."""
    tenant, subscribe = city
    subscribe(area_codes=["351"], hold_minutes=10)
    post_report(operator, sample("vxse51_tama_5minus.xml"))
    post_report(operator, aftershock("20300401101700", "10:17"))
    at_once(lambda: engine.tick(tokyo(f"{DAY} 10:27")))
    with clean_app.app_context(), all_tenants():
        assert db.session.scalar(select(func.count()).select_from(Round)) == 1
    assert sorted(t["status"] for t in triggers_of(tenant)) == ["fired", "folded"]


def test_below_the_threshold_nothing_is_recorded(engine, city, operator):
    """A tenant whose threshold is 5強 is not asked after a 5弱."""
    tenant, subscribe = city
    subscribe(area_codes=["351"], min_intensity="5+")
    body = post_report(operator, sample("vxse51_tama_5minus.xml")).get_json()
    assert body["result"] == "below_threshold" and body["triggers"][0]["trigger_id"] is None
    engine.run(tokyo(f"{DAY} 10:30"))
    assert triggers_of(tenant) == [] and rounds_of(tenant) == []


def test_a_report_for_an_area_nobody_covers_triggers_nothing(clean_app, engine, city, operator):
    """Only 宮城県北部 (220) subscribed: a Tokyo quake answers 200 and starts nothing."""
    tenant, subscribe = city
    subscribe(area_codes=["220"])
    answer = post_report(operator, sample("vxse51_tama_5minus.xml"))
    assert answer.status_code == 200
    assert (answer.get_json()["result"], answer.get_json()["triggers"]) == ("no_subscribed_area", [])
    engine.run(tokyo(f"{DAY} 10:30"))
    assert recorded(clean_app) == (1, 0) and rounds_of(tenant) == []


def test_drills_are_logged_and_ignored(clean_app, engine, city, operator, caplog):
    """A 訓練 震度速報 for the tenant's own area: recorded, logged, no round."""
    tenant, subscribe = city
    subscribe(area_codes=["351"])
    with caplog.at_level(logging.INFO, logger="api.earthquakes"):
        body = post_report(operator, sample("vxse51_drill.xml")).get_json()
    assert (body["result"], body["status"]) == ("drill", "訓練")
    engine.run(tokyo(f"{DAY} 14:30"))
    assert triggers_of(tenant) == [] and rounds_of(tenant) == []
    assert any("result=drill" in r.getMessage() for r in caplog.records)


def test_a_replayed_old_report_is_not_acted_on(engine, city, operator):
    """A 5弱 report from hours before it reached us (a replay) starts no round."""
    tenant, subscribe = city
    subscribe(area_codes=["351"])
    old = sample("vxse51_tama_5minus.xml").replace(b"2030-04-01T10:17:00+09:00",
                                                    b"2020-04-01T10:17:00+09:00")
    assert post_report(operator, old).get_json()["result"] == "stale"
    assert triggers_of(tenant) == []


@pytest.mark.parametrize("document", [
    sample("malformed.xml"),
    b"<html><body>Service Unavailable</body></html>",
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Report>&a;</Report>',
    sample("vxse51_tama_5minus.xml").replace(b"<EventID>20300401101530</EventID>", b""),
    b"",
], ids=["cut-off", "not-jma", "entity", "no-event-id", "empty"])
def test_malformed_xml_is_refused(clean_app, city, operator, document, caplog):
    """Is a document we cannot read answered 400 problem+json, logged, and nothing recorded?"""
    _, subscribe = city
    subscribe(area_codes=["351"])
    with caplog.at_level(logging.WARNING, logger="api.earthquakes"):
        answer = post_report(operator, document)
    assert answer.status_code == 400
    assert answer.content_type == "application/problem+json"
    assert "body" in answer.get_json()["errors"]
    assert recorded(clean_app) == (0, 0)
    assert any("result=malformed" in r.getMessage() for r in caplog.records)


def test_only_operators_post_reports(clean_app, client, city, operator):
    """Without a token, or with a tenant's, is a report refused and nothing recorded?"""
    tenant, subscribe = city
    subscribe(area_codes=["351"])
    document = sample("vxse51_tama_5minus.xml")
    anonymous = client.post("/api/v1/earthquakes/jma", data=document, content_type="application/xml")
    assert anonymous.status_code == 401
    assert post_report(tenant.api, document).status_code == 403
    assert operator.get("/api/v1/earthquakes/settings").status_code == 403
    assert recorded(clean_app) == (0, 0)
    json_body = operator.post("/api/v1/earthquakes/jma", {"xml": "..."})
    assert json_body.status_code == 415


def test_another_tenant_never_sees_the_trigger(make_tenant, operator, engine):
    """Two cities: a Tokyo quake reaches only the subscribed one, and its triggers are its own."""
    tokyo_city = make_tenant("musashino", "武蔵野市")
    other = make_tenant("sendai", "仙台市")
    operator.patch(f"/api/v1/tenants/{tokyo_city.id}", {"earthquake": {"area_codes": ["351"]}})
    operator.patch(f"/api/v1/tenants/{other.id}", {"earthquake": {"area_codes": ["222"]}})
    post_report(operator, sample("vxse51_tama_5minus.xml"))
    assert len(triggers_of(tokyo_city)) == 1
    assert triggers_of(other) == []
