"""SMS and calls when a worker dies mid-send, Redis loses its queue or Twilio fails: each person
is texted or called exactly once, and nothing is left `sending`.

The worker is a real `mimamori worker` process, killed (SIGKILL) by the Twilio fake the moment
Twilio has accepted some of its messages and before the answer reaches it; Redis is then emptied
as a restart would, and the clock reconciles at a later `now`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import insert, select, update

from mimamori import metrics
from mimamori.extensions import db
from tenants.models import Contact, Delivery, Resident
from tenants.tenancy import all_tenants, bind_tenant
from tenants.types import utcnow
from tests.factories import created, policy_body
from tests.fakes.twilio import TwilioFake
from tests.fixtures.engine import tokyo
from tests.webhooks_support import NO_QUIET_HOURS
from worker.dispatch import LOOKUP_ATTEMPTS

MIMAMORI = shutil.which("mimamori", path=str(Path(sys.executable).parent))
DAY1 = "2030-04-01"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token"
FROM = "+815012345678"
RESIDENTS = 60
# How long after the crash the clock's pass comes: longer than a job may live.
RECONCILED_AFTER = timedelta(minutes=15)

pytestmark = pytest.mark.skipif(MIMAMORI is None, reason="the mimamori console script is not installed")


@pytest.fixture
def city(clean_app, make_tenant, twilio_fake):
    """A tenant on Twilio (pointed at the fake) whose account may place 50 calls a second."""
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    saved = clean_app.config["TWILIO_API_BASE_URL"]
    clean_app.config["TWILIO_API_BASE_URL"] = twilio_fake.url
    tenant = make_tenant(
        "tama", "多摩市", twilio={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN,
                                "from_number": FROM},
        twilio_calls_per_second=50, **NO_QUIET_HOURS)
    yield tenant
    clean_app.config["TWILIO_API_BASE_URL"] = saved


def phone(n: int) -> str:
    return f"+8190{n:08d}"


def contact_phone(n: int) -> str:
    return f"+8180{n:08d}"


def _people(app, tenant, channel: str, policy: dict[str, Any] | None = None,
            chain: dict[str, Any] | None = None) -> None:
    """RESIDENTS residents reached on `channel`, each with a contact texted by SMS."""
    policy_id = None
    if policy is not None:
        chain_id = created(tenant.api.post("/api/v1/alert-chains", chain))["id"] if chain else None
        policy_id = created(tenant.api.post("/api/v1/check-policies", policy_body(
            chain_id, starts_on=DAY1, **policy)))["id"]
    with app.app_context(), bind_tenant(tenant.id):
        ids = db.session.scalars(insert(Resident).returning(Resident.id), [
            {"tenant_id": tenant.id, "name": f"住民 {n}", "phone": phone(n), "channels": [channel],
             "check_policy_id": policy_id, "link_code": f"{n:06d}",
             "policy_assigned_at": tokyo("2030-03-01 00:00")}
            for n in range(1, RESIDENTS + 1)]).all()
        db.session.execute(insert(Contact), [
            {"tenant_id": tenant.id, "resident_id": resident_id, "name": f"家族 {n}",
             "phone": contact_phone(n), "channels": ["sms"], "priority": 1}
            for n, resident_id in enumerate(ids, 1)])
        db.session.commit()


def kill_worker_mid_send(app, twilio: TwilioFake, accepted: int) -> None:
    """Run `mimamori worker --burst` on the queue, and kill it the moment Twilio has accepted
    `accepted` more messages or calls; then lose Redis's contents, as a restart would."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY")}
    env.update(MIMAMORI_INSTANCE_PATH=app.instance_path, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               REDIS_URL=app.config["REDIS_URL"], TWILIO_API_BASE_URL=twilio.url,
               PUBLIC_BASE_URL=app.config["PUBLIC_BASE_URL"], METRICS_PORT="0")
    before = len(twilio.messages) + len(twilio.calls)
    worker = subprocess.Popen([MIMAMORI, "worker", "--burst"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(total: int) -> None:
        if total - before == accepted:
            worker.send_signal(signal.SIGKILL)

    twilio.on_accept = kill
    try:
        _, errors = worker.communicate(timeout=180)
    finally:
        twilio.on_accept = None
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == -signal.SIGKILL, errors.decode(errors="replace")[-2000:]
    redis.Redis.from_url(app.config["REDIS_URL"]).flushdb()
    _time_passes(app, twilio, RECONCILED_AFTER)


def _time_passes(app, twilio: TwilioFake, elapsed: timedelta) -> None:
    """Make the crash `elapsed` ago, without sleeping: at Twilio, and in the instants the dead
    worker wrote by its own (wall) clock. The clock's `now` is moved by the test itself."""
    twilio.age(elapsed)
    with app.app_context(), all_tenants():
        stamped = db.session.execute(select(Delivery.id, Delivery.attempted_at, Delivery.updated_at)
                                     .where(Delivery.status == "sending")).all()
        for delivery_id, attempted_at, updated_at in stamped:
            db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                attempted_at=attempted_at and attempted_at - elapsed, updated_at=updated_at - elapsed))
        db.session.commit()


def _statuses(app, tenant_id: int) -> Counter[str]:
    with app.app_context(), bind_tenant(tenant_id):
        return Counter(db.session.scalars(select(Delivery.status)))


def _received(twilio: TwilioFake, number: str, containing: str = "") -> int:
    return sum(containing in m.body for m in twilio.messages_to(number))


def test_an_sms_check_interrupted_mid_send_reaches_everyone_once(clean_app, engine, city,
                                                                  twilio_fake):
    """The worker dies after Twilio took 25 of 60 checks, Redis restarts: after the clock's
    pass, has every resident exactly one SMS?"""
    _people(clean_app, city, "sms", policy={"reminder_after_minutes": 0})
    engine.tick(tokyo(f"{DAY1} 09:00"))
    kill_worker_mid_send(clean_app, twilio_fake, accepted=25)
    assert 25 <= len(twilio_fake.messages) < RESIDENTS

    engine.run(tokyo(f"{DAY1} 09:20"))

    assert [len(twilio_fake.messages_to(phone(n))) for n in range(1, RESIDENTS + 1)] == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}


def test_a_voice_check_interrupted_mid_send_calls_everyone_once(clean_app, engine, city,
                                                                twilio_fake):
    """The same with calls: is every resident called exactly once?"""
    _people(clean_app, city, "voice", policy={"reminder_after_minutes": 0})
    engine.tick(tokyo(f"{DAY1} 09:00"))
    kill_worker_mid_send(clean_app, twilio_fake, accepted=30)

    engine.run(tokyo(f"{DAY1} 09:20"))

    assert [len(twilio_fake.calls_to(phone(n))) for n in range(1, RESIDENTS + 1)] == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}


def test_reminders_interrupted_mid_send_go_out_once(clean_app, engine, city, twilio_fake):
    """The reminder (再送) job dies half way: one check and one reminder per resident?"""
    _people(clean_app, city, "sms", policy={"reminder_after_minutes": 30,
                                            "response_window_minutes": 120})
    engine.run(tokyo(f"{DAY1} 09:00"))
    engine.tick(tokyo(f"{DAY1} 09:30"))
    kill_worker_mid_send(clean_app, twilio_fake, accepted=20)

    engine.run(tokyo(f"{DAY1} 09:50"))

    assert [len(twilio_fake.messages_to(phone(n))) for n in range(1, RESIDENTS + 1)] == [2] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": 2 * RESIDENTS}


def test_an_alert_step_interrupted_mid_send_tells_each_contact_once(clean_app, engine, city,
                                                                    twilio_fake):
    """Nobody answered; the job texting their contacts (緊急連絡先) dies half way: is each
    contact told exactly once?"""
    chain = {"name": "家族へ", "steps": [{"after_minutes": 0, "target": "contacts", "channel": "sms"}]}
    _people(clean_app, city, "sms", policy={"reminder_after_minutes": 0,
                                            "response_window_minutes": 60}, chain=chain)
    engine.run(tokyo(f"{DAY1} 09:00"))
    engine.tick(tokyo(f"{DAY1} 10:00"))
    kill_worker_mid_send(clean_app, twilio_fake, accepted=30)

    engine.run(tokyo(f"{DAY1} 10:20"))

    told = [len(twilio_fake.messages_to(contact_phone(n))) for n in range(1, RESIDENTS + 1)]
    assert told == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": 2 * RESIDENTS}


def test_a_round_interrupted_mid_send_reaches_everyone_once(clean_app, engine, city, twilio_fake):
    """An earthquake round (一斉安否確認) by SMS, its job killed half way: one message each?"""
    _people(clean_app, city, "sms")
    created(city.api.post("/api/v1/rounds", {"message": "地震がありました。ご無事ですか?"}))
    kill_worker_mid_send(clean_app, twilio_fake, accepted=25)

    engine.run(utcnow() + timedelta(minutes=20))

    assert [_received(twilio_fake, phone(n), "地震がありました") for n in range(1, RESIDENTS + 1)] \
        == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}


def test_when_twilio_cannot_be_asked_the_check_is_sent_again_not_lost(clean_app, engine, city,
                                                                      twilio_fake):
    """Twilio's list endpoint answers 500 throughout: are the interrupted checks retried a
    bounded number of times, never stuck `sending`, then sent again, so that everyone has the
    check (some of them twice) and the decision is counted?"""
    _people(clean_app, city, "sms", policy={"reminder_after_minutes": 0,
                                            "response_window_minutes": 600})
    engine.tick(tokyo(f"{DAY1} 09:00"))
    kill_worker_mid_send(clean_app, twilio_fake, accepted=20)
    reached_before = {m.to for m in twilio_fake.messages}
    resent = metrics.DELIVERIES.labels("tama", "sms", "resent_unconfirmed")
    counted = resent._value.get()
    twilio_fake.fail_lists(None, status=500)

    for minute in range(LOOKUP_ATTEMPTS - 1):
        engine.run(tokyo(f"{DAY1} 09:20") + timedelta(minutes=10 * minute))
        statuses = _statuses(clean_app, city.id)
        assert "sending" not in statuses
        assert statuses["retry"] > 0
    assert len(twilio_fake.messages) == len(reached_before), "nothing sent while unconfirmed"

    engine.run(tokyo(f"{DAY1} 10:30"))

    received = [len(twilio_fake.messages_to(phone(n))) for n in range(1, RESIDENTS + 1)]
    assert received == [2 if phone(n) in reached_before else 1 for n in range(1, RESIDENTS + 1)]
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}
    assert resent._value.get() - counted == RESIDENTS


def test_a_500_after_twilio_accepted_is_not_sent_twice(clean_app, engine, city, twilio_fake):
    """Twilio creates the message, then answers 500: does the retry find it instead of texting
    the resident a second time?"""
    _people(clean_app, city, "sms", policy={"reminder_after_minutes": 0})
    twilio_fake.fail_next(1, status=500, after_delivery=True)

    engine.run(tokyo(f"{DAY1} 09:00"))

    assert [len(twilio_fake.messages_to(phone(n))) for n in range(1, RESIDENTS + 1)] == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}


def test_a_slow_job_is_not_taken_over_by_the_clock(clean_app, engine, city, twilio_fake):
    """A job is still texting a round when the clock passes three minutes later and a second
    worker is free: is the job left to finish, so that nobody gets the round twice?"""
    _people(clean_app, city, "sms")
    created(city.api.post("/api/v1/rounds", {"message": "大雨です。ご無事ですか?"}))
    second = threading.Thread(target=engine.work)

    def clock_passes_and_a_worker_frees_up(accepted: int) -> None:
        if accepted == 3:
            engine.tick(utcnow() + timedelta(minutes=3))
            second.start()

    twilio_fake.on_accept = clock_passes_and_a_worker_frees_up
    engine.work()
    second.join()

    assert [_received(twilio_fake, phone(n), "大雨です") for n in range(1, RESIDENTS + 1)] \
        == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}


def test_a_clock_ahead_of_the_workers_does_not_take_a_batch_being_sent(clean_app, engine, city,
                                                                       twilio_fake):
    """The morning's tick runs at its own instant (`tick --at`, or a scheduler whose clock runs
    ahead of the workers'), and a second tick of the same minute passes while the job is still
    texting: is the job left to finish, so that nobody gets the check twice?"""
    _people(clean_app, city, "sms", policy={"reminder_after_minutes": 0})
    morning = tokyo(f"{DAY1} 09:00")
    engine.tick(morning)
    second = threading.Thread(target=engine.work)

    def another_clock_ticks_and_a_worker_frees_up(accepted: int) -> None:
        if accepted == 3:
            engine.tick(morning + timedelta(seconds=30))
            second.start()

    twilio_fake.on_accept = another_clock_ticks_and_a_worker_frees_up
    engine.work()
    second.join()

    assert [_received(twilio_fake, phone(n)) for n in range(1, RESIDENTS + 1)] == [1] * RESIDENTS
    assert _statuses(clean_app, city.id) == {"sent": RESIDENTS}
