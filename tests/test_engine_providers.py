"""The engine against LINE and Twilio fakes: batching, provider failures, crashes — never doubled."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from mimamori.extensions import db
from tenants.models import Check, Delivery, Resident
from tenants.services.deliveries import cancel_pending
from tenants.tenancy import bind_tenant
from tenants.types import utcnow
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fakes.line import MULTICAST, user_id
from tests.fixtures.engine import at_once, tokyo
from tests.webhooks_support import NO_QUIET_HOURS
from worker import dispatch

DAY1 = "2030-04-01"
LINE_TOKEN = "line-channel-access-token"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token"
FROM = "+815012345678"


@pytest.fixture
def provider_tenant(clean_app, make_tenant, line_fake, twilio_fake):
    """A tenant with real-looking LINE and Twilio credentials, pointed at the fakes."""
    line_fake.add_channel(LINE_TOKEN)
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    saved = {k: clean_app.config[k] for k in ("LINE_API_BASE_URL", "TWILIO_API_BASE_URL")}
    clean_app.config.update(LINE_API_BASE_URL=line_fake.url, TWILIO_API_BASE_URL=twilio_fake.url)
    tenant = make_tenant(
        "hachioji", "八王子市",
        line={"channel_secret": "secret", "channel_access_token": LINE_TOKEN},
        twilio={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": FROM},
        **NO_QUIET_HOURS)
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(
        chain["id"], starts_on=DAY1)))
    yield tenant, policy["id"]
    clean_app.config.update(saved)


def _line_residents(app, tenant_id, policy_id, count):
    with app.app_context(), bind_tenant(tenant_id):
        db.session.execute(insert(Resident), [
            {"tenant_id": tenant_id, "name": f"住民 {n}", "line_user_id": user_id(n),
             "channels": ["line", "sms"], "phone": f"+8190{n:08d}", "check_policy_id": policy_id,
             "link_code": f"{n:06d}", "policy_assigned_at": tokyo("2030-03-01 00:00")}
            for n in range(1, count + 1)])
        db.session.commit()


def _statuses(app, tenant_id):
    with app.app_context(), bind_tenant(tenant_id):
        return [(d.channel, d.status) for d in db.session.scalars(select(Delivery).order_by(Delivery.id))]


def test_a_morning_round_goes_out_by_multicast(clean_app, engine, provider_tenant, line_fake):
    """1,200 LINE residents: three multicast requests, each person one check with an OK button."""
    tenant, policy_id = provider_tenant
    _line_residents(clean_app, tenant.id, policy_id, 1200)
    engine.run(tokyo(f"{DAY1} 09:00"))
    assert len(line_fake.accepted(MULTICAST)) == 3
    for n in (1, 600, 1200):
        [message] = line_fake.delivered_to(user_id(n))
        assert "answer:2030-04-01T00:00Z" in str(message)
    assert set(_statuses(clean_app, tenant.id)) == {("line", "sent")}
    assert line_fake.violations == 0


def test_line_errors_are_retried_without_doubling(clean_app, engine, provider_tenant, line_fake):
    """A 500 after LINE accepted, then a 429: each person still gets exactly one message."""
    tenant, policy_id = provider_tenant
    _line_residents(clean_app, tenant.id, policy_id, 3)
    line_fake.fail_next(1, status=500, after_delivery=True)
    line_fake.throttle_next(1, retry_after=1)
    engine.run(tokyo(f"{DAY1} 09:00"))
    assert all(len(line_fake.delivered_to(user_id(n))) == 1 for n in (1, 2, 3))
    assert set(_statuses(clean_app, tenant.id)) == {("line", "sent")}


def test_long_outage_is_left_to_the_clock(clean_app, engine, provider_tenant, line_fake):
    """LINE down through every in-place retry: the delivery waits and the clock sends it later."""
    tenant, policy_id = provider_tenant
    _line_residents(clean_app, tenant.id, policy_id, 2)
    line_fake.fail_next(3, status=503)
    engine.run(tokyo(f"{DAY1} 09:00"))
    assert set(_statuses(clean_app, tenant.id)) == {("line", "retry")}
    assert line_fake.delivered_to(user_id(1)) == []
    engine.run(tokyo(f"{DAY1} 09:05"))
    assert set(_statuses(clean_app, tenant.id)) == {("line", "sent")}
    assert len(line_fake.delivered_to(user_id(1))) == 1


def _crash_after_provider_call(app, tenant_id):
    """What a worker killed after the provider answered leaves: claimed rows, nothing recorded."""
    with app.app_context(), bind_tenant(tenant_id):
        from tenants.models import Tenant

        tenant = db.session.get(Tenant, tenant_id)
        claimed = list(db.session.scalars(select(Delivery).where(Delivery.status == "queued")))
        for delivery in claimed:
            delivery.status, delivery.attempts, delivery.attempted_at = "sending", 1, utcnow()
        db.session.commit()
        checks = {c.id: c for c in db.session.scalars(select(Check))}
        for batch in dispatch._batches(tenant, claimed, checks):
            dispatch.adapter_for(tenant, claimed[0].channel).send(dispatch.credentials(tenant), batch)
        db.session.rollback()  # the process died here


def test_killed_line_job_is_not_doubled(clean_app, engine, provider_tenant, line_fake):
    """A LINE job dies between the provider call and its commit: re-sent once, delivered once."""
    tenant, policy_id = provider_tenant
    _line_residents(clean_app, tenant.id, policy_id, 2)
    engine.tick(tokyo(f"{DAY1} 09:00"))
    _crash_after_provider_call(clean_app, tenant.id)
    engine.queue_clear()
    # The dead job's rows are taken back once its job could no longer be running.
    engine.run(tokyo(f"{DAY1} 09:15"))
    assert set(_statuses(clean_app, tenant.id)) == {("line", "sent")}
    assert [len(line_fake.delivered_to(user_id(n))) for n in (1, 2)] == [1, 1]


def test_killed_sms_job_is_not_doubled(clean_app, engine, provider_tenant, twilio_fake):
    """An SMS job dies after Twilio accepted: the clock finds the message instead of resending."""
    tenant, _ = provider_tenant
    created(tenant.api.post("/api/v1/residents", resident_body(
        check_policy_id=provider_tenant[1], channels=["sms"])))
    engine.tick(tokyo(f"{DAY1} 09:00"))
    _crash_after_provider_call(clean_app, tenant.id)
    engine.queue_clear()
    # The dead job's rows are taken back once its job could no longer be running.
    engine.run(tokyo(f"{DAY1} 09:15"))
    assert len(twilio_fake.messages_to("+819012345678")) == 1
    assert _statuses(clean_app, tenant.id) == [("sms", "sent")]


def test_landline_falls_back_to_voice(clean_app, engine, provider_tenant, twilio_fake):
    """SMS to a landline (固定電話) Twilio cannot text: the check goes out by voice instead."""
    tenant, policy_id = provider_tenant
    twilio_fake.landline_numbers.add("+81422123456")
    created(tenant.api.post("/api/v1/residents", resident_body(
        check_policy_id=policy_id, phone="0422-12-3456", channels=["sms", "voice"])))
    engine.run(tokyo(f"{DAY1} 09:00"))
    engine.work()
    assert _statuses(clean_app, tenant.id) == [("sms", "blocked"), ("voice", "sent")]
    [call] = twilio_fake.calls_to("+81422123456")
    assert "/webhooks/twilio/hachioji/voice?delivery=" in call.url
    assert tenant.api.get("/api/v1/checks").get_json()["items"][0]["channel"] == "voice"


def test_twilio_500_and_429_are_retried(clean_app, engine, provider_tenant, twilio_fake):
    """Twilio answers 500, then 429: the SMS goes out once."""
    tenant, policy_id = provider_tenant
    created(tenant.api.post("/api/v1/residents", resident_body(
        check_policy_id=policy_id, channels=["sms"])))
    twilio_fake.fail_next(1, status=500)
    twilio_fake.throttle_next(1, retry_after=1)
    engine.run(tokyo(f"{DAY1} 09:00"))
    assert len(twilio_fake.messages_to("+819012345678")) == 1
    assert _statuses(clean_app, tenant.id) == [("sms", "sent")]


def test_two_workers_share_the_queue_without_doubling(clean_app, engine, provider_tenant,
                                                      line_fake, twilio_fake):
    """Two workers drain the same morning at once: everyone gets exactly one message."""
    tenant, policy_id = provider_tenant
    _line_residents(clean_app, tenant.id, policy_id, 1100)
    for n in range(5):
        created(tenant.api.post("/api/v1/residents", resident_body(
            name=f"電話 {n}", phone=f"090-4000-{n:04d}", channels=["sms"],
            check_policy_id=policy_id, contacts=[])))
    engine.tick(tokyo(f"{DAY1} 09:00"))
    at_once(engine.work)
    assert all(len(line_fake.delivered_to(user_id(n))) == 1 for n in range(1, 1101))
    assert all(len(twilio_fake.messages_to(f"+819040000{n:03d}")) == 1 for n in range(5))
    assert {status for _, status in _statuses(clean_app, tenant.id)} == {"sent"}


def test_cancelled_before_sending_is_not_sent(clean_app, engine, provider_tenant, twilio_fake):
    """A delivery cancelled (the resident answered) before its job ran is not sent."""
    tenant, policy_id = provider_tenant
    created(tenant.api.post("/api/v1/residents", resident_body(
        check_policy_id=policy_id, channels=["sms"])))
    engine.tick(tokyo(f"{DAY1} 09:00"))
    with clean_app.app_context(), bind_tenant(tenant.id):
        cancel_pending(check_id=db.session.scalar(select(Check.id)), now=tokyo(f"{DAY1} 09:01"))
        db.session.commit()
    engine.work()
    assert twilio_fake.messages_to("+819012345678") == []
