"""The つながり group digest: "who in our group has not answered yet", on LINE, once per check.

For each group with the digest on and each occurrence of its members' scheduled checks, at the
check time + the group's delay (the seed service: 23 hours), members who opted in and the leader
get one LINE message naming — by name only — the members whose check is still unanswered,
whatever channel it went out on (the list comes from the checks, not from LINE). The leader's
copy has 「見に行きます」: from the leader's LINE account it puts the leader's acknowledgement on
those residents' open incidents. A (group, occurrence) row claims each digest, so however many
clocks run it is composed and sent once; nobody unanswered, nothing is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select

from mimamori.extensions import db
from tenants import messages
from tenants.models import Check, Group, GroupDigest, GroupMember, Incident, Resident, Tenant
from tenants.services import deliveries, incidents
from tenants.services.deliveries import delivery_row, insert_ignoring_duplicates, tenant_supports

log = logging.getLogger(__name__)

# A digest this late (the platform was down) is no longer news: the next check has gone out.
LATE_LIMIT = timedelta(hours=6)


@dataclass(frozen=True)
class LeaderAnswer:
    """What a 「見に行きます」 tap led to: `result` for the log, `reply` for the person."""

    result: str
    reply: str | None = None
    rejected: bool = False


def send_due(tenant: Tenant, now: datetime) -> list[int]:
    """Compose and write every digest that has come due; ids of the deliveries (the clock
    queues them at the end of its pass)."""
    delivery_ids: list[int] = []
    for group in db.session.scalars(select(Group).where(Group.digest_enabled.is_(True))
                                    .order_by(Group.id)).all():
        due_before = now - timedelta(minutes=group.digest_after_minutes)
        already = exists().select_from(GroupDigest).where(GroupDigest.group_id == group.id,
                                 GroupDigest.occurrence == Check.occurrence)
        occurrences = db.session.execute(
            select(Check.occurrence, func.min(Check.scheduled_at))
            .join(GroupMember, GroupMember.resident_id == Check.resident_id)
            .where(GroupMember.group_id == group.id, Check.round_id.is_(None),
                   Check.scheduled_at <= due_before, Check.scheduled_at > due_before - LATE_LIMIT,
                   ~already)
            .group_by(Check.occurrence).order_by(func.min(Check.scheduled_at))).all()
        for occurrence, scheduled_at in occurrences:
            delivery_ids += _send_one(tenant, group, occurrence, scheduled_at, now)
    return delivery_ids


def _send_one(tenant: Tenant, group: Group, occurrence: str, scheduled_at: datetime,
              now: datetime) -> list[int]:
    digest_id = db.session.scalar(insert_ignoring_duplicates(GroupDigest).values(
        tenant_id=tenant.id, group_id=group.id, occurrence=occurrence, scheduled_at=scheduled_at,
        unanswered=[], recipients=0, created_at=now).returning(GroupDigest.id))
    if digest_id is None:
        return []  # another clock has this one
    digest = db.session.get(GroupDigest, digest_id)
    assert digest is not None
    missing = unanswered(group.id, occurrence)
    digest.unanswered = [{"resident_id": resident_id, "check_id": check_id}
                         for check_id, resident_id, _ in missing]
    rows = []
    if missing and tenant_supports(tenant, "line"):
        when = scheduled_at.astimezone(tenant.zone)
        label = f"{when.month}月{when.day}日 {when.hour}:{when.minute:02d}"
        names = [name for _, _, name in missing]
        rows = [delivery_row(key=f"digest:{digest.id}:{kind}:{person_id}", purpose="digest",
                             recipient_type=kind, recipient_id=person_id, channel="line",
                             address=line_user_id, now=now, tenant=tenant, digest_id=digest.id,
                             body=messages.digest_text(group.name, label, names,
                                                       for_leader=kind == "leader"))
                for kind, person_id, line_user_id in _recipients(group)]
    digest.recipients = len(rows)
    log.info("group_digest group=%s digest=%s unanswered=%s recipients=%s",
             group.id, digest.id, len(missing), len(rows),
             extra={"digest": {"group": group.id, "digest": digest.id, "unanswered": len(missing),
                               "recipients": len(rows)}})
    return deliveries.insert_deliveries(rows)


def unanswered(group_id: int, occurrence: str) -> list[tuple[int, int, str]]:
    """(check id, resident id, name) of the group's members whose check of this occurrence is
    still unanswered, in kana order — whether it went out by LINE, SMS or a call."""
    return [tuple(row) for row in db.session.execute(
        select(Check.id, Resident.id, Resident.name)
        .join(Resident, Resident.id == Check.resident_id)
        .join(GroupMember, GroupMember.resident_id == Check.resident_id)
        .where(GroupMember.group_id == group_id, Check.occurrence == occurrence,
               Check.round_id.is_(None), Check.answered_at.is_(None))
        .order_by(Resident.name_kana.is_(None), Resident.name_kana, Resident.id))]


def _leader(group: Group) -> Resident | None:
    return db.session.get(Resident, group.leader_resident_id) if group.leader_resident_id else None


def leader_name(group: Group) -> str:
    leader = _leader(group)
    return leader.name if leader else group.leader_name or "グループリーダー"


def _leader_line_user_id(group: Group) -> str | None:
    leader = _leader(group)
    return leader.line_user_id if leader else group.leader_line_user_id


def _recipients(group: Group) -> list[tuple[str, int, str]]:
    """(kind, id, LINE user id): the leader when reachable on LINE, then members who opted in
    with a linked, unblocked account; one message per LINE account."""
    found: list[tuple[str, int, str]] = []
    leader, leader_line = _leader(group), _leader_line_user_id(group)
    if leader_line and not (leader and leader.line_blocked):
        found.append(("leader", group.id, leader_line))
    members = db.session.execute(
        select(Resident.id, Resident.line_user_id)
        .join(GroupMember, GroupMember.resident_id == Resident.id)
        .where(GroupMember.group_id == group.id, GroupMember.receives_digest.is_(True),
               Resident.line_user_id.is_not(None), Resident.line_blocked.is_(False))
        .order_by(Resident.id))
    seen = {line for _, _, line in found}
    found += [("member", resident_id, line) for resident_id, line in members if line not in seen]
    return found


def leader_goes_to_see(line_user_id: str, group_id: int, occurrence: str,
                       now: datetime) -> LeaderAnswer:
    """The leader tapped 「見に行きます」 on a digest: acknowledge, in the leader's name, the open
    incidents of the residents it listed; say whom it could not (no incident yet, answered since)."""
    group = db.session.get(Group, group_id)
    digest = None if group is None else db.session.scalar(select(GroupDigest).where(
        GroupDigest.group_id == group_id, GroupDigest.occurrence == occurrence))
    if group is None or digest is None:
        return LeaderAnswer("unknown_digest", rejected=True)
    if line_user_id != _leader_line_user_id(group):
        return LeaderAnswer("not_leader", messages.DIGEST_NOT_LEADER, rejected=True)
    by = leader_name(group)
    acknowledged, no_incident, answered, handled = [], [], [], []
    for item in digest.unanswered:
        check = db.session.get(Check, item["check_id"])
        resident = db.session.get(Resident, item["resident_id"])
        if check is None or resident is None:
            continue  # removed since
        incident = db.session.scalar(select(Incident).where(Incident.check_id == check.id))
        if check.answered_at is not None:
            answered.append(resident.name)
        elif incident is None:
            no_incident.append(resident.name)
        elif incidents.acknowledge(incident, by, now, note=f"「{group.name}」のお知らせから"):
            acknowledged.append(resident.name)
        else:
            handled.append(resident.name)
    if acknowledged and digest.acknowledged_at is None:
        digest.acknowledged_at, digest.acknowledged_by = now, by[:200]
    return LeaderAnswer("digest_acknowledged" if acknowledged else "digest_nothing_to_acknowledge",
                        messages.digest_reply(by, acknowledged, no_incident, answered, handled))


def describe(digest: GroupDigest) -> list[dict[str, Any]]:
    """The residents a digest named, with where each stands now (for the group's view)."""
    people = []
    for item in digest.unanswered:
        resident = db.session.get(Resident, item["resident_id"])
        check = db.session.get(Check, item["check_id"])
        if resident is None or check is None:
            continue
        incident = db.session.scalar(select(Incident).where(Incident.check_id == check.id))
        people.append({"resident_id": resident.id, "name": resident.name, "check_id": check.id,
                       "check_status": check.status, "channel": check.channel,
                       "answered_via": check.answered_via,
                       "incident_id": incident.id if incident else None,
                       "incident_status": incident.status if incident else None})
    return people
