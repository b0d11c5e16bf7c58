"""The check engine on a sandbox tenant: schedules become checks, silence becomes incidents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mimamori.extensions import db
from tenants.models import Check, Delivery, Resident
from tenants.services import checks as check_service
from tenants.tenancy import all_tenants, bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fixtures.engine import at_once, tokyo

DAY1 = "2030-04-01"  # far enough ahead that residents created now precede every occurrence


@pytest.fixture
def setup(tenant):
    """A daily 09:00 policy (reminder 30 min, window 60 min) with the standard chain."""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(
        chain["id"], starts_on=DAY1)))

    def resident(**fields):
        return created(tenant.api.post("/api/v1/residents", resident_body(
            check_policy_id=policy["id"], **fields)))

    return tenant, policy, resident


def _checks(api, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.get(f"/api/v1/checks?{query}").get_json()["items"]


def _deliveries(app, tenant_id):
    with app.app_context(), bind_tenant(tenant_id):
        return [(d.purpose, d.recipient_type, d.channel, d.status) for d in db.session.scalars(
            select(Delivery).order_by(Delivery.id))]


def test_due_check_is_created_once_and_sent(clean_app, engine, setup):
    """At 09:00 does each resident get exactly one check, however many ticks run?"""
    tenant, _, resident = setup
    person = resident()
    assert engine.tick(tokyo(f"{DAY1} 08:59")).checks_created == 0
    assert engine.run(tokyo(f"{DAY1} 09:00")).checks_created == 1
    engine.run(tokyo(f"{DAY1} 09:00:30"))
    engine.run(tokyo(f"{DAY1} 09:01"))
    [check] = _checks(tenant.api, resident_id=person["id"])
    assert check["status"] == "sent"
    assert check["scheduled_at"].startswith("2030-04-01T00:00:00")
    assert _deliveries(clean_app, tenant.id) == [("check", "resident", "sms", "sent")]


def test_line_first_when_linked(clean_app, engine, setup):
    """Does a resident with a linked LINE account get the check on LINE?"""
    tenant, _, resident = setup
    resident(line_user_id="U" + "1" * 32)
    engine.run(tokyo(f"{DAY1} 09:00"))
    assert _deliveries(clean_app, tenant.id) == [("check", "resident", "line", "sent")]


def test_reminder_then_missed_then_chain(clean_app, engine, setup):
    """Unanswered: a reminder at +30, missed at +60, then each chain step at its time."""
    tenant, _, resident = setup
    person = resident()
    engine.run(tokyo(f"{DAY1} 09:00"))
    assert engine.run(tokyo(f"{DAY1} 09:29")).reminders == 0
    assert engine.run(tokyo(f"{DAY1} 09:30")).reminders == 1
    assert engine.run(tokyo(f"{DAY1} 09:45")).reminders == 0
    assert engine.run(tokyo(f"{DAY1} 10:00")).missed == 1
    [check] = _checks(tenant.api, resident_id=person["id"])
    assert check["status"] == "missed"
    [incident] = tenant.api.get("/api/v1/incidents?status=open").get_json()["items"]
    assert incident["check_id"] == check["id"]
    # Step 0 (after 0 min: the resident by voice) fired in the same tick as the window closed.
    assert ("alert", "resident", "voice", "sent") in _deliveries(clean_app, tenant.id)
    engine.run(tokyo(f"{DAY1} 10:29"))
    assert not any(d[1] == "contact" for d in _deliveries(clean_app, tenant.id))
    engine.run(tokyo(f"{DAY1} 10:30"))  # step 1: contacts of priority 1 by SMS
    assert ("alert", "contact", "sms", "sent") in _deliveries(clean_app, tenant.id)
    engine.run(tokyo(f"{DAY1} 11:30"))  # steps 2 and 3: all contacts; staff (nobody on duty)
    incident = tenant.api.get(f"/api/v1/incidents/{incident['id']}").get_json()
    kinds = [e["kind"] for e in incident["timeline"]]
    assert kinds.count("step") == 4 and "skip" in kinds and "escalation" in kinds
    assert incident["escalated"] is True and incident["status"] == "open"
    assert engine.run(tokyo(f"{DAY1} 12:30")).steps_deliveries == 0  # the chain has ended


def test_answer_stops_everything(clean_app, engine, setup):
    """An answer before the reminder: no reminder, no incident."""
    tenant, _, resident = setup
    person = resident()
    engine.tick(tokyo(f"{DAY1} 09:00"))
    with clean_app.app_context(), bind_tenant(tenant.id):
        check = check_service.open_check_for(person["id"])
        assert check_service.answer(check, "sms", tokyo(f"{DAY1} 09:05"))
        assert not check_service.answer(check, "sms", tokyo(f"{DAY1} 09:06"))
        db.session.commit()
    engine.work()
    report = engine.run(tokyo(f"{DAY1} 10:30"))
    assert report.reminders == 0 and report.missed == 0
    [check] = _checks(tenant.api)
    assert check["status"] == "answered" and check["answered_via"] == "sms"
    assert tenant.api.get("/api/v1/incidents").get_json()["items"] == []
    # The queued check delivery was cancelled, not sent after the answer.
    assert _deliveries(clean_app, tenant.id) == [("check", "resident", "sms", "canceled")]


def test_late_answer_resolves_incident_as_safe(clean_app, engine, setup):
    """An answer after the window: the open incident is resolved `safe`, the chain stops."""
    tenant, _, resident = setup
    resident()
    engine.run(tokyo(f"{DAY1} 09:00"))
    engine.run(tokyo(f"{DAY1} 10:00"))
    with clean_app.app_context(), bind_tenant(tenant.id):
        check = db.session.scalar(select(Check))
        check_service.answer(check, "voice", tokyo(f"{DAY1} 10:10"))
        db.session.commit()
    assert engine.run(tokyo(f"{DAY1} 10:30")).steps_deliveries == 0
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert incident["status"] == "resolved" and incident["outcome"] == "safe"
    assert "answer" in [e["kind"] for e in incident["timeline"]]
    assert _checks(tenant.api)[0]["status"] == "answered"


def test_acknowledge_and_resolve_through_the_api(engine, setup):
    """Staff acknowledge (the chain stops) and then record the outcome."""
    tenant, _, resident = setup
    resident()
    engine.run(tokyo(f"{DAY1} 09:00"))
    engine.run(tokyo(f"{DAY1} 10:00"))
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    path = f"/api/v1/incidents/{incident['id']}"
    ack = tenant.api.post(f"{path}/acknowledge", {"by": "北町 民生委員", "note": "訪問します"})
    assert ack.status_code == 200 and ack.get_json()["status"] == "acknowledged"
    assert engine.run(tokyo(f"{DAY1} 12:00")).steps_deliveries == 0
    bad = tenant.api.post(f"{path}/resolve", {"outcome": "fine"})
    assert bad.status_code == 422 and "outcome" in bad.get_json()["errors"]
    done = tenant.api.post(f"{path}/resolve", {"outcome": "hospitalised", "note": "救急搬送"})
    assert done.status_code == 200 and done.get_json()["outcome"] == "hospitalised"
    assert tenant.api.post(f"{path}/resolve", {"outcome": "safe"}).status_code == 409
    note = tenant.api.post(f"{path}/notes", {"note": "家族に連絡済み"})
    assert "家族に連絡済み" in [e["detail"] for e in note.get_json()["timeline"]]


def test_paused_resident_gets_no_check(engine, setup):
    """A resident paused until 04-03 gets no checks on 04-01 and 04-02, and one on 04-03."""
    tenant, _, resident = setup
    person = resident()
    with_pause = tenant.api.post(f"/api/v1/residents/{person['id']}/pause",
                                 {"from": "2030-03-31", "until": "2030-04-03", "reason": "旅行"})
    assert with_pause.status_code == 200, with_pause.get_json()
    for day in ("2030-04-01", "2030-04-02"):
        assert engine.run(tokyo(f"{day} 09:00")).checks_created == 0
    assert engine.run(tokyo("2030-04-03 09:00")).checks_created == 1


def test_downtime_collapses_into_one_check(engine, setup):
    """After three days down, is one check sent at once (not three), with a fresh window?"""
    tenant, _, resident = setup
    resident()
    engine.run(tokyo(f"{DAY1} 09:00"))
    report = engine.run(tokyo("2030-04-04 15:00"))
    assert report.checks_created == 1
    newest = _checks(tenant.api)[-1]
    assert newest["scheduled_at"].startswith("2030-04-04T00:00")
    assert newest["window_ends_at"].startswith("2030-04-04T07:00")  # 15:00 JST + 60 min
    assert newest["status"] == "sent"


def test_new_resident_waits_for_the_next_occurrence(clean_app, engine, setup):
    """Is someone registered after today's check time spared that check until tomorrow?"""
    tenant, _, resident = setup
    person = resident()
    with clean_app.app_context(), all_tenants():
        # As if staff had registered them at 11:00 on DAY1, after that morning's check.
        db.session.execute(update(Resident).values(policy_assigned_at=tokyo(f"{DAY1} 11:00")))
        db.session.commit()
    assert engine.tick(tokyo(f"{DAY1} 12:00")).checks_created == 0
    assert engine.tick(tokyo("2030-04-02 09:00")).checks_created == 1
    assert _checks(tenant.api, resident_id=person["id"])[0]["scheduled_at"].startswith("2030-04-02")


def test_unreachable_resident_fails_and_opens_incident(engine, setup):
    """A resident with no working channel: check `failed` and an incident at once."""
    tenant, _, resident = setup
    resident(phone=None, channels=["line"])  # LINE not linked yet
    report = engine.run(tokyo(f"{DAY1} 09:00"))
    assert report.checks_failed == 1
    assert _checks(tenant.api)[0]["status"] == "failed"
    [incident] = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert incident["status"] == "open"


def test_voice_waits_for_quiet_hours_to_end(clean_app, engine, tenant):
    """Is a 22:00 voice check held until 08:00?"""
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(
        schedule={"freq": "daily", "time": "22:00"}, starts_on=DAY1,
        reminder_after_minutes=None, response_window_minutes=720)))
    created(tenant.api.post("/api/v1/residents", resident_body(
        check_policy_id=policy["id"], channels=["voice"])))
    engine.run(tokyo(f"{DAY1} 22:00"))
    assert _deliveries(clean_app, tenant.id) == [("check", "resident", "voice", "queued")]
    engine.run(tokyo("2030-04-02 07:59"))
    assert _deliveries(clean_app, tenant.id)[0][3] == "queued"
    engine.run(tokyo("2030-04-02 08:00"))
    assert _deliveries(clean_app, tenant.id)[0][3] == "sent"


def test_lost_queue_is_reconciled(clean_app, engine, setup, redis_url):
    """Redis is flushed between tick and worker: the next pass re-queues, nothing doubles."""
    import redis

    tenant, _, resident = setup
    resident()
    engine.tick(tokyo(f"{DAY1} 09:00"))
    redis.Redis.from_url(redis_url).flushdb()
    engine.work()
    assert _deliveries(clean_app, tenant.id) == [("check", "resident", "sms", "queued")]
    engine.run(tokyo(f"{DAY1} 09:01"))  # too soon to call it lost
    assert _deliveries(clean_app, tenant.id)[0][3] == "queued"
    engine.run(tokyo(f"{DAY1} 09:02"))
    engine.run(tokyo(f"{DAY1} 09:05"))
    assert _deliveries(clean_app, tenant.id) == [("check", "resident", "sms", "sent")]


def test_two_clocks_at_once_never_double(clean_app, engine, setup):
    """Two ticks racing at 09:00 and at window end: one check, one incident, one step each."""
    tenant, _, resident = setup
    for index in range(20):
        resident(name=f"住民 {index}", phone=f"090-2000-{index:04d}")

    at_once(lambda: engine.tick(tokyo(f"{DAY1} 09:00")))
    at_once(lambda: engine.tick(tokyo(f"{DAY1} 10:00")))
    with clean_app.app_context(), bind_tenant(tenant.id):
        assert db.session.scalar(select(func.count(Check.id))) == 20
        per_key = db.session.execute(select(Delivery.idempotency_key, func.count())
                                     .group_by(Delivery.idempotency_key)).all()
    assert all(count == 1 for _, count in per_key)
    assert len(tenant.api.get("/api/v1/incidents?limit=100").get_json()["items"]) == 20


def test_round_reaches_everyone_with_a_live_tally(clean_app, engine, setup):
    """An earthquake round goes to all residents at once and counts answers as they come."""
    tenant, _, resident = setup
    people = [resident(name=f"住民 {i}", phone=f"090-3000-{i:04d}") for i in range(3)]
    response = tenant.api.post("/api/v1/rounds", {"message": "地震がありました。ご無事ですか?"})
    body = created(response)
    assert body["targeted"] == 3 and body["pending"] == 3
    engine.work()
    with clean_app.app_context(), bind_tenant(tenant.id):
        check = db.session.scalar(select(Check).where(Check.resident_id == people[0]["id"]))
        check_service.answer(check, "sms", check.scheduled_at + timedelta(minutes=3))
        db.session.commit()
    tally = tenant.api.get(f"/api/v1/rounds/{body['id']}").get_json()
    assert (tally["targeted"], tally["answered"], tally["pending"]) == (3, 1, 2)
    assert all(d[3] == "sent" for d in _deliveries(clean_app, tenant.id))
    bad = tenant.api.post("/api/v1/rounds", {"group_id": 999, "message": "x"})
    assert bad.status_code == 422 and "group_id" in bad.get_json()["errors"]


def test_a_round_started_while_redis_is_down_goes_out_with_the_next_tick(clean_app, engine, tenant):
    """Redis cannot be reached when staff start a round: is the round still taken, and sent by
    the next tick once Redis answers again?"""
    from tenants.types import utcnow

    created(tenant.api.post("/api/v1/residents", resident_body(channels=["sms"])))
    saved = clean_app.config["REDIS_URL"]
    clean_app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        body = created(tenant.api.post("/api/v1/rounds", {"message": "地震がありました。ご無事ですか?"}))
    finally:
        clean_app.config["REDIS_URL"] = saved
    assert body["targeted"] == 1 and engine.queued_jobs() == 0
    assert _deliveries(clean_app, tenant.id) == [("round", "resident", "sms", "queued")]
    # Marked queued when written, the rows count as lost once STALE_AFTER has passed.
    engine.run(utcnow() + timedelta(minutes=3))
    assert _deliveries(clean_app, tenant.id) == [("round", "resident", "sms", "sent")]
