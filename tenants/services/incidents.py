"""Incidents (未確認案件): opened when a check goes unanswered, escalated along the alert chain,
acknowledged by a contact, resolved by staff — every step on the incident's timeline."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from mimamori.extensions import db
from tenants import messages
from tenants.batching import chunks
from tenants.errors import Conflict
from tenants.models import (
    AlertStep,
    Check,
    CheckPolicy,
    Contact,
    Group,
    GroupMember,
    Incident,
    IncidentEvent,
    Resident,
    Tenant,
)
from tenants.services import deliveries, staff
from tenants.services.deliveries import delivery_row, insert_ignoring_duplicates, preferred
from tenants.services.lookup import get_or_404
from tenants.tenancy import bound_tenant_id

CHANNEL_NAMES = {"line": "LINE", "sms": "SMS", "voice": "電話"}
MAX_STEPS_PER_TICK = 20  # a chain has at most 20 steps


_bulk_events: ContextVar[list[dict[str, Any]] | None] = ContextVar("bulk_events", default=None)


def add_event(incident_id: int, kind: str, detail: str, at: datetime,
              data: dict[str, Any] | None = None) -> None:
    """A line on the incident's timeline (inside `events_in_bulk`, written with the others)."""
    bulk = _bulk_events.get()
    if bulk is None:
        db.session.add(IncidentEvent(incident_id=incident_id, kind=kind, detail=detail, at=at,
                                     data=data))
    else:
        bulk.append({"tenant_id": bound_tenant_id(), "incident_id": incident_id, "kind": kind,
                     "detail": detail, "at": at, "data": data})


@contextmanager
def events_in_bulk() -> Iterator[None]:
    """Timeline lines of a pass over thousands of incidents, written together at its end in one
    pipelined statement rather than as thousands of ORM objects."""
    bulk: list[dict[str, Any]] = []
    token = _bulk_events.set(bulk)
    try:
        yield
    finally:
        _bulk_events.reset(token)
    if bulk:
        db.session.execute(insert(IncidentEvent), bulk)


def get_incident(incident_id: int) -> Incident:
    return get_or_404(Incident, incident_id, "incident")


def _steps_for(check: Check, known: dict[int, list[AlertStep]] | None = None) -> list[AlertStep]:
    """The steps of the check's chain; `known` keeps them per policy through a pass."""
    policy_id = check.policy_id
    if check.round_id is not None:
        # A round's check escalated by staff follows the resident's own policy's chain.
        policy_id = db.session.scalar(select(Resident.check_policy_id).where(
            Resident.id == check.resident_id))
    if policy_id is None:
        return []
    if known is not None and policy_id in known:
        return known[policy_id]
    policy = db.session.get(CheckPolicy, policy_id)
    steps = [] if policy is None or policy.alert_chain_id is None else list(db.session.scalars(
        select(AlertStep).where(AlertStep.chain_id == policy.alert_chain_id)
        .order_by(AlertStep.position)))
    if known is not None:
        known[policy_id] = steps
    return steps


def _chain_base(check: Check, incident: Incident) -> datetime:
    """Steps count from the end of the response window; a failed check's from when it failed,
    a round's from when staff escalated it."""
    if check.status == "missed" and check.round_id is None:
        return check.window_ends_at
    return incident.opened_at


def open_incidents(checks: list[Check], now: datetime,
                   include_rounds: bool = False) -> list[Incident]:
    """Open one incident per missed or failed scheduled check. Rounds are followed up apart:
    their checks only when staff escalate a round (`include_rounds`), whatever their status."""
    with events_in_bulk():
        return _open_incidents(checks, now, include_rounds)


def _open_incidents(checks: list[Check], now: datetime, include_rounds: bool) -> list[Incident]:
    scheduled = [c for c in checks if include_rounds or c.round_id is None]
    if not scheduled:
        return []
    db.session.execute(insert_ignoring_duplicates(Incident), [
        {"tenant_id": c.tenant_id, "check_id": c.id, "resident_id": c.resident_id,
         "status": "open", "escalated": False, "opened_at": now} for c in scheduled])
    opened = [incident for part in chunks([c.id for c in scheduled])
              for incident in db.session.scalars(select(Incident).where(
                  Incident.check_id.in_(part), Incident.next_step_position.is_(None),
                  Incident.status == "open"))]
    by_id = {c.id: c for c in scheduled}
    known: dict[int, list[AlertStep]] = {}
    for incident in opened:
        check = by_id[incident.check_id]
        steps = _steps_for(check, known)
        base = _chain_base(check, incident)
        incident.next_step_position = 0
        incident.next_step_at = base + timedelta(minutes=steps[0].after_minutes) if steps else None
        reason = ("一斉安否確認に応答がないため、職員が通知順序を開始しました"
                  if check.round_id is not None
                  else "応答がないまま確認期限を過ぎました" if check.status == "missed"
                  else "どの連絡手段でも安否確認を届けられませんでした")
        add_event(incident.id, "opened", reason, now, {"check_status": check.status})
        if not steps:
            add_event(incident.id, "chain", "通知順序が設定されていません", now)
    return opened


def _person_targets(tenant: Tenant, incident: Incident, step: AlertStep, resident: Resident,
                    now: datetime,
                    contacts_of: dict[int, list[Contact]] | None = None) -> list[dict[str, Any]]:
    """Everyone a step should reach: (type, id, name, channels, phone, line id).

    `contacts_of` holds the contacts of every resident of a pass, in priority order."""
    if step.target == "resident":
        return [{"type": "resident", "id": resident.id, "name": resident.name,
                 "channels": resident.channels, "phone": resident.phone,
                 "line_user_id": resident.line_user_id, "blocked": resident.line_blocked}]
    if step.target == "contacts":
        if contacts_of is None:
            contacts = list(db.session.scalars(select(Contact).where(
                Contact.resident_id == resident.id).order_by(Contact.priority, Contact.id)))
        else:
            contacts = contacts_of.get(resident.id, [])
        if step.priority:
            contacts = [c for c in contacts if c.priority == step.priority]
        return [{"type": "contact", "id": c.id, "name": c.name, "channels": c.channels,
                 "phone": c.phone, "line_user_id": c.line_user_id} for c in contacts]
    if step.target == "group_leader":
        targets = []
        groups = db.session.scalars(select(Group).join(
            GroupMember, GroupMember.group_id == Group.id).where(
            GroupMember.resident_id == resident.id).order_by(Group.id))
        for group in groups:
            leader = (db.session.get(Resident, group.leader_resident_id)
                      if group.leader_resident_id else None)
            if leader is not None and leader.id != resident.id:
                targets.append({"type": "leader", "id": group.id, "name": leader.name,
                                "channels": leader.channels, "phone": leader.phone,
                                "line_user_id": leader.line_user_id,
                                "blocked": leader.line_blocked})
            elif group.leader_phone or group.leader_line_user_id:
                targets.append({"type": "leader", "id": group.id,
                                "name": group.leader_name or group.name,
                                "channels": ["line", "sms", "voice"], "phone": group.leader_phone,
                                "line_user_id": group.leader_line_user_id})
        return targets
    return staff.duty_targets(tenant, now)


def _fire_step(tenant: Tenant, incident: Incident, check: Check, step: AlertStep, now: datetime,
               contacts_of: dict[int, list[Contact]] | None = None) -> list[dict[str, Any]]:
    resident = db.session.get(Resident, incident.resident_id)
    assert resident is not None
    label = {"resident": "本人", "contacts": "緊急連絡先", "group_leader": "グループリーダー",
             "staff": "担当職員"}[step.target]
    add_event(incident.id, "step", f"通知順序 {step.position + 1}: {label}に連絡します", now,
              {"position": step.position, "target": step.target, "channel": step.channel})
    if step.target == "staff" and not incident.escalated:
        incident.escalated = True
        add_event(incident.id, "escalation", "職員対応が必要な案件になりました", now)
    rows = []
    for person in _person_targets(tenant, incident, step, resident, now, contacts_of):
        choice = preferred(tenant, step.channel, person["channels"], person["phone"],
                           person["line_user_id"], person.get("blocked", False))
        if choice is None:
            add_event(incident.id, "skip", f"{person['name']}さんに届く連絡手段がありません", now)
            continue
        channel, address = choice
        if person["type"] in ("staff", "staff_user"):
            body = messages.staff_text(tenant.name, resident.name)
        else:
            body = messages.alert_text(tenant.name, resident.name, channel,
                                       to_resident=person["type"] == "resident")
        rows.append(delivery_row(
            key=f"step:{incident.id}:{step.position}:{person['type']}:{person['id']}",
            purpose="alert", recipient_type=person["type"], recipient_id=person["id"],
            channel=channel, address=address, body=body, now=now, tenant=tenant,
            check_id=check.id if person["type"] == "resident" else None, incident_id=incident.id))
    if not rows:
        add_event(incident.id, "skip", f"通知順序 {step.position + 1}: 連絡できる相手がいません",
                  now)
    return rows


def fire_due_steps(tenant: Tenant, now: datetime) -> tuple[int, list[str]]:
    """Fire every alert-chain step that is due; each exactly once, however many clocks run.

    A tick that comes late fires every step that has come due since, in order. Each round of
    due steps is read, claimed and written in a handful of statements, however many incidents.
    Returns how many deliveries were written and their batch keys, to queue once committed
    (calls held for quiet hours are left for the clock).
    """
    rows: list[dict[str, Any]] = []
    known: dict[int, list[AlertStep]] = {}
    for _ in range(MAX_STEPS_PER_TICK):
        due = db.session.scalars(select(Incident).where(
            Incident.status == "open", Incident.next_step_at <= now).order_by(Incident.id)).all()
        if not due:
            break
        with events_in_bulk():
            for part in chunks(due):
                rows += _fire_next_steps(tenant, list(part), now, known)
        db.session.flush()
    # Claimed above, so none of these exists yet: written without ids back, queued-now marked.
    return len(rows), deliveries.insert_many_deliveries(rows, now)


def _fire_next_steps(tenant: Tenant, due: list[Incident], now: datetime,
                     known: dict[int, list[AlertStep]]) -> list[dict[str, Any]]:
    checks = {c.id: c for c in db.session.scalars(
        select(Check).where(Check.id.in_([i.check_id for i in due])))}
    resident_ids = [i.resident_id for i in due]
    # Held here so they stay in the session's (weak) identity map: each step's `get` needs no query.
    residents = db.session.scalars(select(Resident).where(Resident.id.in_(resident_ids))).all()
    contacts_of: dict[int, list[Contact]] = defaultdict(list)
    for contact in db.session.scalars(select(Contact).where(Contact.resident_id.in_(resident_ids))
                                      .order_by(Contact.priority, Contact.id)):
        contacts_of[contact.resident_id].append(contact)
    # Claimed with one compare-and-set per (position, next time): another clock firing the same
    # steps claims none of them twice.
    claims: dict[tuple[int, datetime | None], list[int]] = defaultdict(list)
    fire: list[tuple[Incident, AlertStep, AlertStep | None]] = []
    for incident in due:
        check = checks[incident.check_id]
        steps = _steps_for(check, known)
        position = incident.next_step_position or 0
        if position >= len(steps):
            incident.next_step_at = None
            continue
        following = steps[position + 1] if position + 1 < len(steps) else None
        next_at = (_chain_base(check, incident) + timedelta(minutes=following.after_minutes)
                   if following else None)
        claims[(position, next_at)].append(incident.id)
        fire.append((incident, steps[position], following))
    claimed: set[int] = set()
    for (position, next_at), ids in claims.items():
        claimed.update(db.session.scalars(
            update(Incident).where(Incident.id.in_(ids), Incident.next_step_position == position,
                                   Incident.status == "open")
            .values(next_step_position=position + 1, next_step_at=next_at)
            .returning(Incident.id).execution_options(synchronize_session=False)))
    if claims:
        db.session.execute(select(Incident).where(Incident.id.in_([i.id for i, _, _ in fire]))
                           .execution_options(populate_existing=True)).all()
    rows = []
    for incident, step, following in fire:
        if incident.id not in claimed:
            continue  # another clock fired this step
        rows += _fire_step(tenant, incident, checks[incident.check_id], step, now, contacts_of)
        if following is None:
            add_event(incident.id, "chain", "通知順序の最後まで連絡しました。職員の対応を待っています",
                      now)
    del residents
    return rows


def _stop(incident: Incident, at: datetime) -> None:
    incident.next_step_at = None
    deliveries.cancel_pending(incident_id=incident.id, now=at)


def resolve_by_answer(check: Check, via: str, at: datetime) -> None:
    incident = db.session.scalar(select(Incident).where(Incident.check_id == check.id))
    if incident is None:
        return
    add_event(incident.id, "answer",
              f"本人から応答がありました({CHANNEL_NAMES.get(via, via)})", at, {"via": via})
    if incident.status != "resolved":
        incident.status = "resolved"
        incident.outcome = "safe"
        incident.resolved_at = at
        incident.outcome_note = incident.outcome_note or "本人の応答により自動で解決"
        _stop(incident, at)


def acknowledge(incident: Incident, by: str, at: datetime, note: str | None = None) -> bool:
    """A contact or staff member will go and see: the chain stops; staff still resolve it."""
    if incident.status != "open":
        return False
    incident.status = "acknowledged"
    incident.acknowledged_at = at
    incident.acknowledged_by = by[:200]
    _stop(incident, at)
    add_event(incident.id, "acknowledgement", f"{by}さんが対応します" + (f":{note}" if note else ""), at)
    return True


def resolve(incident: Incident, outcome: str, note: str | None, user_id: int | None,
            at: datetime) -> Incident:
    if incident.status == "resolved":
        raise Conflict("the incident is already resolved",
                       {"outcome": [f"Already resolved as {incident.outcome}."]})
    incident.status = "resolved"
    incident.outcome = outcome
    incident.outcome_note = note
    incident.resolved_at = at
    incident.resolved_by_user_id = user_id
    _stop(incident, at)
    add_event(incident.id, "resolution", f"対応結果: {outcome}" + (f"({note})" if note else ""), at,
              {"outcome": outcome})
    return incident


def add_note(incident: Incident, note: str, at: datetime) -> None:
    add_event(incident.id, "note", note, at)
