"""LINE link codes (連携コード): guessing is slow and bounded, codes expire and link only once."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from mimamori.extensions import db
from tenants import messages
from tenants.models import LinkAttempt, Resident
from tenants.services.answers import LINK_FAILURES_PER_TENANT, LINK_TRIES_PER_USER, TENANT_WIDE
from tenants.tenancy import bind_tenant
from tenants.types import utcnow
from tests.fakes.line import signed_webhook, text_message_event, user_id
from tests.webhooks_support import (
    LINE_SECRET,
    add_resident,
    credentials,
    daily_policy,
    post_line,
    queued_calls,
)

ATTACKER = user_id(0xBAD)
NEWCOMER = user_id(0x5A)


@pytest.fixture
def city(make_tenant):
    """武蔵野市 with LINE and a resident, not linked yet, who was given a link code."""
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    person = add_resident(tenant.api, policy["id"], name="佐藤 一郎", phone="090-2222-3333")
    assert person["line_linked"] is False and len(person["link_code"]) == 6
    return tenant, person


def send_codes(app, client, tenant, sent: list[tuple[str, str]]) -> list[str]:
    """Each (LINE user, code) texted to the tenant's LINE account, one webhook each; the replies."""
    tokens = []
    for sender, code in sent:
        event = text_message_event(sender, code)
        assert post_line(client, tenant.slug, [event]).status_code == 200
        tokens.append(event["replyToken"])
    replies = {token: text for name, args in queued_calls(app)
               if name == "worker.jobs.send_line_replies" for token, text in args[1]}
    return [replies[token] for token in tokens]


def send_code(app, client, tenant, sender: str, code: str) -> str:
    [reply] = send_codes(app, client, tenant, [(sender, code)])
    return reply


def wrong_codes(right: str, count: int) -> list[str]:
    return [code for code in (f"{n:06d}" for n in range(count + 1)) if code != right][:count]


def resident(tenant, person) -> dict:
    return tenant.api.get(f"/api/v1/residents/{person['id']}").get_json()


def set_rows(app, tenant_id: int, statement) -> None:
    with app.app_context(), bind_tenant(tenant_id):
        db.session.execute(statement)
        db.session.commit()


def metric(tenant, result: str) -> float:
    return REGISTRY.get_sample_value("mimamori_line_link_codes_total",
                                     {"tenant": tenant.slug, "result": result}) or 0.0


def test_guessing_locks_the_sender_out(clean_app, client, city):
    """A stranger sends 330 wrong codes, then the right one: is the resident still unlinked, and
    is the stranger told after the fifth wrong code to contact the office?"""
    tenant, person = city
    answers = send_codes(clean_app, client, tenant,
                         [(ATTACKER, code) for code in wrong_codes(person["link_code"], 330)])

    right = send_code(clean_app, client, tenant, ATTACKER, person["link_code"])

    assert resident(tenant, person)["line_linked"] is False
    assert answers[:LINK_TRIES_PER_USER] == [messages.LINK_CODE_WRONG] * LINK_TRIES_PER_USER
    assert set(answers[LINK_TRIES_PER_USER:]) == {messages.LINK_LOCKED}
    assert right == messages.LINK_LOCKED
    # The resident, on their own phone, is not locked out by the stranger.
    assert send_code(clean_app, client, tenant, NEWCOMER, person["link_code"]) == messages.LINKED
    assert resident(tenant, person)["line_user_id"] == NEWCOMER


def test_the_lock_lifts_after_a_day(clean_app, client, city):
    """Someone who mistyped five times: can they link a day later?"""
    tenant, person = city
    send_codes(clean_app, client, tenant,
               [(NEWCOMER, code) for code in wrong_codes(person["link_code"], LINK_TRIES_PER_USER)])
    assert send_code(clean_app, client, tenant, NEWCOMER, person["link_code"]) == messages.LINK_LOCKED

    set_rows(clean_app, tenant.id, update(LinkAttempt).where(LinkAttempt.subject == NEWCOMER)
             .values(window_started_at=utcnow() - timedelta(hours=24, minutes=1)))

    assert send_code(clean_app, client, tenant, NEWCOMER, person["link_code"]) == messages.LINKED


def test_many_accounts_cannot_share_out_the_guessing(clean_app, client, city, caplog):
    """Wrong codes from many LINE accounts: does linking pause for the tenant once there were too
    many, is the operator told (log and metric), and does it resume after the hour?"""
    tenant, person = city
    caplog.set_level(logging.WARNING)
    guesses = wrong_codes(person["link_code"], LINK_FAILURES_PER_TENANT + 1)
    answers = send_codes(clean_app, client, tenant,
                         [(user_id(0x1000 + n), code) for n, code in enumerate(guesses)])

    fresh = user_id(0x2000)
    assert send_code(clean_app, client, tenant, fresh, person["link_code"]) == messages.LINK_PAUSED

    assert answers[:-1] == [messages.LINK_CODE_WRONG] * LINK_FAILURES_PER_TENANT
    assert answers[-1] == messages.LINK_PAUSED
    assert resident(tenant, person)["line_linked"] is False
    assert metric(tenant, "link_paused") >= 2
    assert [r for r in caplog.records if "line link codes paused" in r.getMessage()]
    # A pause tested no code: the fresh account has lost none of its own tries.
    set_rows(clean_app, tenant.id, update(LinkAttempt).where(LinkAttempt.subject == TENANT_WIDE)
             .values(window_started_at=utcnow() - timedelta(hours=1, minutes=1)))
    assert send_code(clean_app, client, tenant, fresh, person["link_code"]) == messages.LINKED


def test_an_expired_code_does_not_link_and_staff_issue_a_new_one(clean_app, client, city):
    """A code handed out 15 days ago: is it refused, and does the one staff issue now work?"""
    tenant, person = city
    before = utcnow()
    expiry = datetime.fromisoformat(person["link_code_expires_at"])
    assert timedelta(days=13, hours=23) < expiry - before <= timedelta(days=14)
    set_rows(clean_app, tenant.id, update(Resident).where(Resident.id == person["id"])
             .values(link_code_expires_at=utcnow() - timedelta(days=1)))

    assert send_code(clean_app, client, tenant, NEWCOMER, person["link_code"]) == messages.LINK_CODE_WRONG
    assert resident(tenant, person)["line_linked"] is False

    renewed = tenant.api.post(f"/api/v1/residents/{person['id']}/link-code")
    assert renewed.status_code == 201
    new = renewed.get_json()
    assert new["link_code"] != person["link_code"] and len(new["link_code"]) == 6
    assert timedelta(days=14) - timedelta(minutes=1) < (
        datetime.fromisoformat(new["link_code_expires_at"]) - before) <= timedelta(days=14, minutes=1)
    assert resident(tenant, person)["link_code"] == new["link_code"]
    assert send_code(clean_app, client, tenant, NEWCOMER, new["link_code"]) == messages.LINKED


def test_a_code_links_once(clean_app, client, city):
    """After the resident linked: does their code link another LINE user, even once staff unlink
    the resident, until staff issue a new code?"""
    tenant, person = city
    code = person["link_code"]
    assert send_code(clean_app, client, tenant, NEWCOMER, code) == messages.LINKED
    linked = resident(tenant, person)
    assert linked["line_user_id"] == NEWCOMER and linked["link_code_expires_at"] is None

    assert send_code(clean_app, client, tenant, ATTACKER, code) == messages.LINK_CODE_WRONG
    assert resident(tenant, person)["line_user_id"] == NEWCOMER

    assert tenant.api.post(f"/api/v1/residents/{person['id']}/link-code").status_code == 409
    assert tenant.api.patch(f"/api/v1/residents/{person['id']}",
                            {"line_user_id": None}).status_code == 200
    assert send_code(clean_app, client, tenant, ATTACKER, code) == messages.LINK_CODE_WRONG
    assert resident(tenant, person)["line_linked"] is False


def test_link_code_of_another_tenant_is_not_found(clean_app, client, city, make_tenant):
    """Can staff of another city issue a code for this city's resident?"""
    _, person = city
    other = make_tenant("mitaka", "三鷹市")
    assert other.api.post(f"/api/v1/residents/{person['id']}/link-code").status_code == 404


def test_codes_sent_at_the_same_moment_link_once(clean_app, client, city):
    """Ten accounts send the resident's code at once, and one account sends five residents'
    codes at once: is exactly one link made each time, with no server error?"""
    tenant, person = city
    others = [add_resident(tenant.api, None, name=f"利用者 {n}", phone=f"090-3333-000{n}")
              for n in range(5)]

    def send(sender_and_code):
        sender, code = sender_and_code
        body, signature = signed_webhook(LINE_SECRET, [text_message_event(sender, code)])
        return clean_app.test_client().post(
            f"/webhooks/line/{tenant.slug}", data=body, content_type="application/json",
            headers={"X-Line-Signature": signature}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(send, [(user_id(0x300 + n), person["link_code"]) for n in range(10)]))
        statuses += list(pool.map(send, [(NEWCOMER, other["link_code"]) for other in others]))

    assert set(statuses) == {200}
    assert resident(tenant, person)["line_user_id"] in {user_id(0x300 + n) for n in range(10)}
    assert [resident(tenant, other)["line_user_id"] for other in others].count(NEWCOMER) == 1
