"""Groups (グループ・つながり): creating them, their leader and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mimamori.extensions import db
from tenants.errors import Conflict, ValidationFailed
from tenants.models import Group, GroupMember, Resident
from tenants.services.lookup import get_or_404

GROUP_FIELDS = ("name", "kind", "leader_resident_id", "leader_name", "leader_phone",
                "leader_line_user_id", "digest_enabled", "digest_after_minutes")


def get_group(group_id: int) -> Group:
    return get_or_404(Group, group_id, "group")


def _known_residents(ids: list[int]) -> set[int]:
    return set(db.session.scalars(select(Resident.id).where(Resident.id.in_(ids)))) if ids else set()


def _check(group: Group, data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    leader = data.get("leader_resident_id")
    if leader is not None and leader not in _known_residents([leader]):
        errors["leader_resident_id"] = [f"No resident {leader}."]
    members = data.get("member_ids") or []
    unknown = sorted(set(members) - _known_residents(members))
    if unknown:
        errors["member_ids"] = [f"No resident {', '.join(map(str, unknown))}."]
    if data.get("digest_member_ids") is not None:
        final = (set(members) if data.get("member_ids") is not None
                 else {m.resident_id for m in group.members})
        outside = sorted(set(data["digest_member_ids"]) - final)
        if outside:
            errors["digest_member_ids"] = [f"Not a member: {', '.join(map(str, outside))}."]
    if errors:
        raise ValidationFailed("unknown residents", errors)
    if "name" in data:
        clash = db.session.scalar(select(Group.id).where(Group.name == data["name"],
                                                         Group.id != group.id))
        if clash is not None:
            raise Conflict("group name taken", {"name": ["A group with this name exists."]})


def _apply(group: Group, data: dict[str, Any]) -> None:
    for field in GROUP_FIELDS:
        if field in data:
            setattr(group, field, data[field])
    if data.get("member_ids") is not None:
        wanted = set(data["member_ids"])
        group.members = [m for m in group.members if m.resident_id in wanted]
        present = {m.resident_id for m in group.members}
        group.members.extend(GroupMember(resident_id=r) for r in sorted(wanted - present))
    if data.get("digest_member_ids") is not None:
        opted_in = set(data["digest_member_ids"])
        for member in group.members:
            member.receives_digest = member.resident_id in opted_in


def create_group(data: dict[str, Any]) -> Group:
    group = Group()
    _check(group, data)
    _apply(group, data)
    db.session.add(group)
    db.session.flush()
    return group


def update_group(group: Group, data: dict[str, Any]) -> Group:
    _check(group, data)
    _apply(group, data)
    db.session.flush()
    return group


def delete_group(group: Group) -> None:
    db.session.delete(group)
    db.session.flush()
