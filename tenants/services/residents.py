"""Residents (利用者): onboarding, contacts, pauses and link codes, always in the bound tenant."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from mimamori.extensions import db
from tenants.errors import Conflict, NotFound, ValidationFailed, field_error
from tenants.models import CheckPolicy, Contact, Group, GroupMember, Resident, ResidentPause
from tenants.models.residents import LINK_CODE_VALIDITY
from tenants.services.lookup import get_or_404
from tenants.tenancy import bound_tenant_id
from tenants.types import utcnow

RESIDENT_FIELDS = ("name", "name_kana", "birth_date", "phone", "line_user_id", "channels",
                   "check_policy_id", "external_id", "address", "notes")
CONTACT_FIELDS = ("name", "relation", "relation_note", "phone", "line_user_id", "channels",
                  "priority")


def get_resident(resident_id: int) -> Resident:
    return get_or_404(Resident, resident_id, "resident")


def default_channels(phone: str | None, line_user_id: str | None, contact: bool = False) -> list[str]:
    """Residents may link LINE later, so LINE leads; contacts use LINE only with a user id."""
    channels = ["line"] if (line_user_id or not contact) else []
    return channels + (["sms", "voice"] if phone else [])


def reachability_errors(phone: str | None, line_user_id: str | None, channels: list[str],
                        contact: bool = False) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not channels:
        errors["channels"] = ["Give at least one channel."]
    if not phone and any(c in ("sms", "voice") for c in channels):
        errors["phone"] = ["SMS and voice need a phone number."]
    if contact and not phone and not line_user_id:
        errors["phone"] = ["A contact needs a phone number or a LINE user id."]
    if contact and "line" in channels and not line_user_id:
        errors["line_user_id"] = ["The LINE channel needs a LINE user id."]
    return errors


def policy_exists(policy_id: int) -> bool:
    return db.session.scalar(select(CheckPolicy.id).where(CheckPolicy.id == policy_id)) is not None


def missing_group_ids(group_ids: list[int]) -> list[int]:
    found = set(db.session.scalars(select(Group.id).where(Group.id.in_(group_ids))))
    return [g for g in group_ids if g not in found]


def new_link_codes(count: int) -> list[str]:
    """Six-digit codes a resident sends to the tenant's LINE account to link it; unique per tenant."""
    taken = set(db.session.scalars(select(Resident.link_code)))
    codes: list[str] = []
    while len(codes) < count:
        code = f"{secrets.randbelow(1_000_000):06d}"
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


def check_quota(adding: int) -> None:
    from tenants.models import Tenant

    tenant = db.session.get(Tenant, bound_tenant_id())
    if tenant and tenant.max_residents is not None:
        current = db.session.scalar(select(func.count(Resident.id))) or 0
        if current + adding > tenant.max_residents:
            raise Conflict(f"the tenant's quota of {tenant.max_residents} residents would be exceeded")


def _check_references(data: dict[str, Any]) -> None:
    errors: dict[str, Any] = {}
    if data.get("check_policy_id") is not None and not policy_exists(data["check_policy_id"]):
        errors["check_policy_id"] = [f"No check policy {data['check_policy_id']}."]
    if data.get("group_ids"):
        missing = missing_group_ids(data["group_ids"])
        if missing:
            errors["group_ids"] = [f"No group {', '.join(map(str, missing))}."]
    if errors:
        raise ValidationFailed("unknown references", errors)


def _check_unique(resident: Resident) -> None:
    for field in ("external_id", "line_user_id"):
        value = getattr(resident, field)
        if value is None:
            continue
        clash = db.session.scalar(
            select(Resident.id).where(getattr(Resident, field) == value, Resident.id != resident.id)
        )
        if clash is not None:
            raise Conflict(f"{field} already used", {field: [f"Resident {clash} already has it."]})


def _contact_errors(contacts: list[dict[str, Any]]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for index, contact in enumerate(contacts):
        contact_errors = reachability_errors(contact.get("phone"), contact.get("line_user_id"),
                                             contact["channels"], contact=True)
        if contact_errors:
            errors[str(index)] = contact_errors
    return errors


def _with_default_channels(data: dict[str, Any], contact: bool) -> dict[str, Any]:
    if not data.get("channels"):
        data = {**data, "channels": default_channels(data.get("phone"), data.get("line_user_id"),
                                                       contact)}
    return data


def _set_groups(resident: Resident, group_ids: list[int]) -> None:
    wanted = set(group_ids)
    resident.memberships = [m for m in resident.memberships if m.group_id in wanted]
    present = {m.group_id for m in resident.memberships}
    for group_id in sorted(wanted - present):
        resident.memberships.append(GroupMember(group_id=group_id))


def _set_contacts(resident: Resident, contacts: list[dict[str, Any]]) -> None:
    prepared = [_with_default_channels(c, contact=True) for c in contacts]
    errors = _contact_errors(prepared)
    if errors:
        raise ValidationFailed("contacts cannot be reached", {"contacts": errors})
    resident.contacts = [Contact(**{k: c.get(k) for k in CONTACT_FIELDS}) for c in prepared]


def _validate_resident(resident: Resident) -> None:
    errors = reachability_errors(resident.phone, resident.line_user_id, resident.channels)
    if errors:
        raise ValidationFailed("the resident cannot be reached", errors)
    _check_unique(resident)


def create_resident(data: dict[str, Any]) -> Resident:
    _check_references(data)
    check_quota(1)
    data = _with_default_channels(data, contact=False)
    resident = Resident(**{k: data.get(k) for k in RESIDENT_FIELDS},
                        link_code=new_link_codes(1)[0])
    if resident.line_user_id is not None:
        resident.link_code_expires_at = None  # linked already: the code is never needed
    _validate_resident(resident)
    _set_contacts(resident, data.get("contacts") or [])
    db.session.add(resident)
    _set_groups(resident, data.get("group_ids") or [])
    db.session.flush()
    return resident


def update_resident(resident: Resident, data: dict[str, Any]) -> Resident:
    """Apply the fields given; `contacts` and `group_ids`, when given, replace the lists."""
    _check_references(data)
    if "check_policy_id" in data and data["check_policy_id"] != resident.check_policy_id:
        resident.policy_assigned_at = utcnow()
    for field in RESIDENT_FIELDS:
        if field in data:
            setattr(resident, field, data[field])
    if "channels" in data and not data["channels"]:
        resident.channels = default_channels(resident.phone, resident.line_user_id)
    if resident.line_user_id is not None:
        resident.link_code_expires_at = None  # linked by staff: the code is spent
    _validate_resident(resident)
    if "contacts" in data:
        _set_contacts(resident, data["contacts"])
    if "group_ids" in data:
        _set_groups(resident, data["group_ids"])
    db.session.flush()
    return resident


def delete_resident(resident: Resident) -> None:
    db.session.delete(resident)
    db.session.flush()


def get_contact(resident: Resident, contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.resident_id != resident.id:
        raise NotFound(f"no contact {contact_id} for resident {resident.id}")
    return contact


def add_contact(resident: Resident, data: dict[str, Any]) -> Contact:
    data = _with_default_channels(data, contact=True)
    errors = reachability_errors(data.get("phone"), data.get("line_user_id"), data["channels"],
                                 contact=True)
    if errors:
        raise ValidationFailed("the contact cannot be reached", errors)
    contact = Contact(**{k: data.get(k) for k in CONTACT_FIELDS})
    resident.contacts.append(contact)
    db.session.flush()
    return contact


def update_contact(contact: Contact, data: dict[str, Any]) -> Contact:
    for field in CONTACT_FIELDS:
        if field in data:
            setattr(contact, field, data[field])
    if "channels" in data and not data["channels"]:
        contact.channels = default_channels(contact.phone, contact.line_user_id, contact=True)
    errors = reachability_errors(contact.phone, contact.line_user_id, contact.channels,
                                 contact=True)
    if errors:
        raise ValidationFailed("the contact cannot be reached", errors)
    db.session.flush()
    return contact


def delete_contact(contact: Contact) -> None:
    db.session.delete(contact)
    db.session.flush()


def pause_resident(resident: Resident, until: date, starts_on: date | None = None,
                   reason: str | None = None) -> ResidentPause:
    """No checks from `starts_on` (default today, tenant's zone) until the day before `until`."""
    today = resident.tenant.local_today()
    starts_on = starts_on or today
    if until <= starts_on:
        raise field_error("until", "Must be after the first paused day.")
    if until <= today:
        raise field_error("until", "Must be in the future: it is the day checks resume.")
    for existing in resident.pauses:
        if existing.starts_on < until and starts_on < existing.until:
            raise Conflict("overlapping pause",
                           {"from": [f"Overlaps the pause {existing.starts_on}–{existing.until}."]})
    pause = ResidentPause(starts_on=starts_on, until=until, reason=reason)
    resident.pauses.append(pause)
    db.session.flush()
    return pause


def resume_resident(resident: Resident) -> None:
    """End today's pause now, so the next scheduled check goes out."""
    today = resident.tenant.local_today()
    for pause in list(resident.pauses):
        if pause.starts_on <= today < pause.until:
            if pause.starts_on == today:
                resident.pauses.remove(pause)
            else:
                pause.until = today
    db.session.flush()


def link_code_owner(code: str) -> Resident | None:
    return db.session.scalar(select(Resident).where(Resident.link_code == code))


def issue_link_code(resident: Resident, now: datetime) -> Resident:
    """A new link code for a resident not linked to LINE, valid for LINK_CODE_VALIDITY from now;
    the old code stops working."""
    if resident.line_user_id is not None:
        raise Conflict("the resident is already linked to LINE",
                       {"line_user_id": ["Unlink the resident first (line_user_id: null)."]})
    resident.link_code = new_link_codes(1)[0]
    resident.link_code_expires_at = now + LINK_CODE_VALIDITY
    db.session.flush()
    return resident
