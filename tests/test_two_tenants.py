"""Two populated cities on one platform: whatever city A does, through every write endpoint,
every webhook and every pass of the clock, city B's rows stay byte for byte as they were and its
figures do not move.

B is set up to be quiet while A works: its morning checks are answered, its round answered,
its broadcast sent, so that nothing of B's is legitimately due. Its residents and contacts share
phone numbers with A's, as a relative registered in two cities would, and A imports a register
naming B's residents: any statement that reached across tenants would show up as a changed row.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

import pytest
from flask import Flask, request_finished
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import Check, DutySlot, Incident, Tenant, User
from tenants.services import stats
from tenants.tenancy import all_tenants, bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fakes.line import postback_event, text_message_event
from tests.fakes.twilio import call_status, gather_digits, inbound_sms, message_status
from tests.fixtures.engine import tokyo
from tests.webhooks_support import (
    DAY1,
    NO_QUIET_HOURS,
    OTHER_SUFFIX,
    OTHER_TWILIO_SID,
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    credentials,
    ok_button_data,
    post_line,
    post_twilio,
    run_clock,
    twilio_url,
    work,
)

PHONES = ["090-4100-0001", "090-4100-0002", "090-4100-0003"]
CONTACT_PHONE = "+818041000009"
# Operator-only provisioning: creating tenants is how the fixture starts.
NOT_TENANT_WRITES = {("/api/v1/tenants", "POST")}


def _populate(api: Any, line_prefix: str) -> dict[str, Any]:
    """A chain, a daily 09:00 policy, a group and three residents sharing the phone numbers."""
    chain = created(api.post("/api/v1/alert-chains", chain_body()))
    policy = created(api.post("/api/v1/check-policies", policy_body(chain["id"], starts_on=DAY1)))
    group = created(api.post("/api/v1/groups", {"name": "北町つながり"}))
    residents = [created(api.post("/api/v1/residents", resident_body(
        name="住民 " + "一二三"[n], name_kana="ジュウミン " + ("イチ", "ニ", "サン")[n], phone=phone,
        line_user_id=f"U{line_prefix}{n:031d}", channels=channels,
        check_policy_id=policy["id"], group_ids=[group["id"]],
        contacts=[{"name": "親戚 一郎", "relation": "relative", "phone": CONTACT_PHONE,
                   "channels": ["sms"], "priority": 1}])))
        for n, (phone, channels) in enumerate(zip(PHONES, (["line"], ["sms"], ["voice"]), strict=True))]
    return {"chain": chain, "policy": policy, "group": group, "residents": residents}


def _snapshot(app: Flask, tenant_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the tenant owns, table by table, as the database holds it."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with app.app_context(), all_tenants():
        for table in db.metadata.sorted_tables:
            if table.name == "tenants":
                statement = select(table).where(table.c.id == tenant_id)
            elif "tenant_id" in table.c:
                statement = select(table).where(table.c.tenant_id == tenant_id)
            else:
                continue
            found[table.name] = [tuple(row) for row in db.session.execute(
                statement.order_by(*table.primary_key.columns))]
    return found


def _figures(app: Flask, tenant_id: int) -> Any:
    with app.app_context(), bind_tenant(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        month = stats.monthly(tenant, date.fromisoformat(DAY1))
        return (month.checks, month.answered, month.incidents, month.age_bands, month.first_channels)


def _pushed_postback(line_fake: Any, line_user_id: str) -> str:
    return ok_button_data(line_fake.delivered_to(line_user_id)[-1])


@pytest.fixture
def cities(clean_app, make_tenant, fakes):
    line, twilio = fakes
    a = make_tenant("city-a", "A市", **credentials(), **NO_QUIET_HOURS)
    b = make_tenant("city-b", "B市", **credentials(other=True), **NO_QUIET_HOURS)
    return a, _populate(a.api, "a"), b, _populate(b.api, "b"), line, twilio


def _quiet_b(app: Flask, client: Any, b: Any, b_data: dict[str, Any], line: Any) -> None:
    """B's morning: checks sent at 09:00 and answered on each channel, a round and a broadcast
    answered and sent, an incident resolved long ago; then nothing of B's is due."""
    run_clock(app, tokyo(f"{DAY1} 09:00"))
    work(app)
    line_resident, sms_resident, voice_resident = b_data["residents"]
    data = _pushed_postback(line, line_resident["line_user_id"])
    assert post_line(client, b.slug, [postback_event(line_resident["line_user_id"], data)],
                     secret=credentials(other=True)["line"]["channel_secret"]).status_code < 300
    assert post_twilio(client, twilio_url(b.slug, "sms"),
                       inbound_sms(sms_resident["phone"], TWILIO_FROM, "1", OTHER_TWILIO_SID),
                       token=TWILIO_TOKEN + OTHER_SUFFIX).status_code < 300
    for check in b.api.get("/api/v1/checks?status=sent").get_json()["items"]:
        assert b.api.post(f"/api/v1/checks/{check['id']}/answer").status_code < 300
    created(b.api.post("/api/v1/rounds", {"message": "B市の訓練です"}))
    created(b.api.post("/api/v1/broadcasts", {"message": "B市からのお知らせ"}))
    work(app)
    for check in b.api.get("/api/v1/checks?status=sent").get_json()["items"]:
        assert b.api.post(f"/api/v1/checks/{check['id']}/answer").status_code < 300
    with app.app_context(), bind_tenant(b.id):
        answered = db.session.scalars(select(Check).where(
            Check.resident_id == voice_resident["id"], Check.round_id.is_(None))).one()
        db.session.add(Incident(check_id=answered.id, resident_id=voice_resident["id"],
                                status="resolved", outcome="false_alarm"))
        db.session.commit()
    run_clock(app, tokyo(f"{DAY1} 09:01"))
    work(app)
    assert b.api.get("/api/v1/checks?status=sent").get_json()["items"] == []


def test_whatever_a_does_leaves_b_exactly_as_it_was(clean_app, client, cities, operator):
    """City A uses every write endpoint, every webhook and the clock all morning: are city B's
    rows byte for byte unchanged, its figures the same, and A's figures A's own?"""
    a, a_data, b, b_data, line, twilio = cities
    seen: set[tuple[str, str]] = set()

    def record(sender: Flask, response: Any, **_: Any) -> None:
        from flask import request

        if request.url_rule is not None:
            seen.add((request.url_rule.rule, request.method))

    _quiet_b(clean_app, client, b, b_data, line)
    before, b_figures = _snapshot(clean_app, b.id), _figures(clean_app, b.id)
    request_finished.connect(record, clean_app)
    try:
        _a_works_all_morning(clean_app, client, operator, a, a_data, b_data, line, twilio)
    finally:
        request_finished.disconnect(record, clean_app)

    after = _snapshot(clean_app, b.id)
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert changed == {}
    assert _figures(clean_app, b.id) == b_figures
    a_checks, a_answered, *_ = _figures(clean_app, a.id)
    with clean_app.app_context(), bind_tenant(a.id):
        scheduled = db.session.scalars(select(Check).where(Check.round_id.is_(None))).all()
    assert (a_checks, a_answered) == (len(scheduled), sum(c.answered_at is not None for c in scheduled))
    writes = {(rule.rule, method) for rule in clean_app.url_map.iter_rules()
              for method in rule.methods & {"POST", "PATCH", "DELETE", "PUT"}
              if rule.rule.startswith(("/api/v1/", "/webhooks/"))}
    assert writes - NOT_TENANT_WRITES - seen == set(), "write endpoints this test does not exercise"


def _a_works_all_morning(app: Flask, client: Any, operator: Any, a: Any, a_data: dict[str, Any],
                         b_data: dict[str, Any], line: Any, twilio: Any) -> None:
    api = a.api
    line_resident, sms_resident, voice_resident = a_data["residents"]
    b_line_resident = b_data["residents"][0]

    # The operator provisions A.
    assert operator.patch(f"/api/v1/tenants/{a.id}", {"name": "A市役所",
                                                      "earthquake": {"area_codes": ["351"]}}
                          ).status_code < 300
    created(operator.post(f"/api/v1/tenants/{a.id}/tokens", {"name": "second"}))
    created(operator.post(f"/api/v1/tenants/{a.id}/staff", {
        "email": "staff-a@example.jp", "role": "staff", "password": "correct horse battery"}))

    # Staff edit everything A has, and make and remove more.
    chain = created(api.post("/api/v1/alert-chains", chain_body(name="予備")))
    assert api.patch(f"/api/v1/alert-chains/{chain['id']}", {"name": "予備2"}).status_code < 300
    policy = created(api.post("/api/v1/check-policies", policy_body(chain["id"], name="予備")))
    assert api.post("/api/v1/check-policies/preview", {
        "schedule": {"freq": "daily", "interval": 1, "time": "09:00"}}).status_code < 300
    assert api.patch(f"/api/v1/check-policies/{policy['id']}", {"name": "予備3"}).status_code < 300
    assert api.delete(f"/api/v1/check-policies/{policy['id']}").status_code < 300
    assert api.delete(f"/api/v1/alert-chains/{chain['id']}").status_code < 300
    group = created(api.post("/api/v1/groups", {"name": "南町"}))
    assert api.patch(f"/api/v1/groups/{a_data['group']['id']}", {
        "digest_enabled": True, "digest_after_minutes": 60,
        "leader_resident_id": line_resident["id"]}).status_code < 300
    assert api.patch(f"/api/v1/groups/{group['id']}", {"name": "南町2"}).status_code < 300
    assert api.delete(f"/api/v1/groups/{group['id']}").status_code < 300
    extra = created(api.post("/api/v1/residents", resident_body(
        name="住民 九", phone=PHONES[0], check_policy_id=a_data["policy"]["id"])))
    assert api.patch(f"/api/v1/residents/{extra['id']}", {"notes": "A市のメモ"}).status_code < 300
    contact = created(api.post(f"/api/v1/residents/{extra['id']}/contacts",
                               {"name": "知人", "phone": CONTACT_PHONE}))
    assert api.patch(f"/api/v1/residents/{extra['id']}/contacts/{contact['id']}",
                     {"name": "知人2"}).status_code < 300
    assert api.delete(f"/api/v1/residents/{extra['id']}/contacts/{contact['id']}").status_code < 300
    assert api.post(f"/api/v1/residents/{extra['id']}/pause", {"until": "2099-01-01"}).status_code < 300
    assert api.delete(f"/api/v1/residents/{extra['id']}/pause").status_code < 300
    created(api.post(f"/api/v1/residents/{extra['id']}/link-code"))
    assert api.delete(f"/api/v1/residents/{extra['id']}").status_code < 300
    # A register naming B's residents, with B's phones: A's own rows are created or updated.
    register = "name,phone,channels\n" + "".join(
        f"{r['name']},{r['phone']},sms\n" for r in b_data["residents"])
    for dry_run in ("true", "false"):
        answer = api.post(f"/api/v1/residents/import?dry_run={dry_run}",
                          data=register.encode(), content_type="text/csv")
        assert answer.status_code == 200 and answer.get_json()["errors"] == [], answer.get_json()

    # The morning: A's checks go out; B's link code and B's LINE user reach A's account.
    run_clock(app, tokyo(f"{DAY1} 09:00"))
    work(app)
    secret = credentials()["line"]["channel_secret"]
    assert post_line(client, a.slug, [
        text_message_event(b_line_resident["line_user_id"], b_line_resident["link_code"]),
        postback_event(b_line_resident["line_user_id"],
                       _pushed_postback(line, line_resident["line_user_id"])),
        text_message_event(b_line_resident["line_user_id"], "1"),
    ], secret=secret).status_code < 300
    run_clock(app, tokyo(f"{DAY1} 09:30"))
    work(app)
    [sms] = [m for m in twilio.messages_to(sms_resident["phone"]) if m.account_sid == TWILIO_SID][:1]
    assert post_twilio(client, sms.status_callback, message_status(sms, "delivered")).status_code < 300
    [call] = [c for c in twilio.calls_to(voice_resident["phone"]) if c.account_sid == TWILIO_SID][:1]
    assert post_twilio(client, call.url, call_status(call, "in-progress")).status_code < 300
    assert post_twilio(client, call.url, gather_digits(call, "2")).status_code < 300

    from tests.test_earthquakes import post_report, sample

    assert post_report(operator, sample("vxse51_tama_5minus.xml")).status_code < 300

    # Nobody answered: incidents open and the chains run (an earthquake round starts at 10:27);
    # a contact acknowledges by SMS.
    for moment in ("10:00", "10:27", "10:30", "11:00"):
        run_clock(app, tokyo(f"{DAY1} {moment}"))
        work(app)
    assert post_twilio(client, twilio_url(a.slug, "sms"),
                       inbound_sms(CONTACT_PHONE, TWILIO_FROM, "1", TWILIO_SID)).status_code < 300
    incidents = api.get("/api/v1/incidents").get_json()["items"]
    assert incidents, "A's unanswered checks open incidents"
    first = incidents[0]["id"]
    assert api.post(f"/api/v1/incidents/{first}/notes", {"note": "訪問予定"}).status_code < 300
    assert api.post(f"/api/v1/incidents/{first}/acknowledge", {"by": "職員"}).status_code < 300
    assert api.post(f"/api/v1/incidents/{first}/resolve", {"outcome": "safe"}).status_code < 300
    for check in api.get("/api/v1/checks?status=missed").get_json()["items"][:1]:
        assert api.post(f"/api/v1/checks/{check['id']}/answer").status_code < 300

    # A whole-city round, its escalation and a broadcast.
    round_ = created(api.post("/api/v1/rounds", {"message": "地震がありました。ご無事ですか?"}))
    assert round_["targeted"] == len(api.get("/api/v1/residents").get_json()["items"])
    assert api.post(f"/api/v1/rounds/{round_['id']}/escalate").status_code < 300
    created(api.post("/api/v1/broadcasts", {"message": "給水所を開設しました"}))
    for moment in ("11:30", "12:00", "13:00", "15:00"):
        run_clock(app, tokyo(f"{DAY1} {moment}"))
        work(app)


def _dashboard_ids(app: Flask, a: Any, a_data: dict[str, Any], a_staff_email: str) -> dict[str, int]:
    """One of everything city A has that the dashboard addresses by id."""
    round_ = created(a.api.post("/api/v1/rounds", {"message": "訓練です"}))
    broadcast = created(a.api.post("/api/v1/broadcasts", {"message": "お知らせです"}))
    run_clock(app, tokyo(f"{DAY1} 09:00"))
    run_clock(app, tokyo(f"{DAY1} 10:00"))
    with app.app_context(), bind_tenant(a.id):
        user_id = db.session.scalar(select(User.id).where(User.email == a_staff_email))
        slot = DutySlot(user_id=user_id, weekday=0, starts_at=time(8, 30), ends_at=time(17, 15))
        db.session.add(slot)
        db.session.commit()
        incident_id = db.session.scalars(select(Incident.id)).first()
        slot_id = slot.id
    assert incident_id is not None
    return {"resident_id": a_data["residents"][0]["id"], "group_id": a_data["group"]["id"],
            "policy_id": a_data["policy"]["id"], "chain_id": a_data["chain"]["id"],
            "incident_id": incident_id, "round_id": round_["id"], "broadcast_id": broadcast["id"],
            "user_id": user_id, "slot_id": slot_id}


def test_the_dashboard_never_reaches_another_citys_rows(clean_app, client, cities, make_user):
    """City B's admin opens and posts to every dashboard address that takes an id, with city
    A's ids: is every one not found, and is every row of A's unchanged?"""
    a, a_data, b, _b_data, _line, _twilio = cities
    make_user("kanri@city-a.example.jp", "admin", a.id)
    ids = _dashboard_ids(clean_app, a, a_data, "kanri@city-a.example.jp")
    b_admin = make_user("kanri@city-b.example.jp", "admin", b.id)
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    signed_in = client.post("/login", data={"csrf_token": token, "email": b_admin.email,
                                            "password": b_admin.password})
    assert signed_in.status_code == 302
    # Signing in starts a new session, with a CSRF token of its own.
    home = client.get(f"/t/{b.slug}/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)
    before = _snapshot(clean_app, a.id)
    tried = []
    for rule in clean_app.url_map.iter_rules():
        if not rule.rule.startswith("/t/") or set(rule.arguments) == {"slug"}:
            continue
        path = rule.rule.replace("<slug>", b.slug)
        for name in rule.arguments - {"slug"}:
            path = path.replace(f"<id:{name}>", str(ids[name]))
        for method in sorted(rule.methods & {"GET", "POST"}):
            form = {"csrf_token": token, "note": "覗き見", "outcome": "safe", "name": "乗っ取り",
                    "password": "correct horse battery staple", "until": "2099-01-01"}
            response = client.open(path, method=method, data=form if method == "POST" else None)
            tried.append((method, path))
            assert response.status_code == 404, (method, path, response.status_code)
    assert len(tried) >= 30
    assert _snapshot(clean_app, a.id) == before
