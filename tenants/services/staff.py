"""Staff accounts: operators and tenant users (argon2 hashes), managed by their tenant's admins;
their server-side sessions, and who of them is on duty (当番) for the alert chain's staff step."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select, update

from mimamori.extensions import db
from tenants.errors import Conflict, NotFound, field_error
from tenants.japanese import normalise_kana, normalise_phone, normalise_text
from tenants.models import DutySlot, Group, Resident, ResidentAssignment, StaffSession, Tenant, User
from tenants.models.staff import OPERATOR, TENANT_ROLES
from tenants.services.audit import record
from tenants.services.deliveries import first_working
from tenants.types import utcnow

_hasher = PasswordHasher()
# Verified when the e-mail matches nobody, so a wrong address takes as long as a wrong password.
_ABSENT_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """The password is this user's; with no user, as slow as a real check and always False."""
    try:
        matched = _hasher.verify(user.password_hash if user else _ABSENT_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and user is not None


def _ensure_email_free(email: str) -> None:
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise Conflict("a user with this e-mail address exists",
                       {"email": ["A user with this e-mail address exists."]})


def create_user(email: str, password: str, role: str, tenant_id: int | None,
                name: str | None = None) -> User:
    email = email.strip().lower()
    _ensure_email_free(email)
    user = User(email=email, password_hash=hash_password(password), role=role,
                tenant_id=tenant_id, name=name)
    db.session.add(user)
    db.session.flush()
    return user


def create_operator(email: str, password: str) -> User:
    return create_user(email, password, OPERATOR, tenant_id=None)


def tenant_staff(tenant_id: int) -> list[User]:
    return list(db.session.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.id)))


# Staff management by a tenant's admins (職員): invitations, resets, deactivation, assignments.

# No 0/O, 1/l/I: a temporary password is read off a screen and typed or told over the phone.
_TEMPORARY_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def temporary_password() -> str:
    """A one-time password an admin hands over; the user must replace it at first sign-in."""
    groups = ("".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


def tenant_user(tenant_id: int, user_id: int) -> User:
    """One of this tenant's users; another tenant's id (or an operator's) is not found."""
    user = db.session.scalar(select(User).where(User.id == user_id, User.tenant_id == tenant_id))
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def invite_user(tenant_id: int, email: str, role: str, name: str | None,
                actor: User) -> tuple[User, str]:
    """A new login with a temporary password (returned once, never stored in the clear)."""
    if role not in TENANT_ROLES:
        raise field_error("role", f"Unknown role {role!r}.")
    password = temporary_password()
    user = create_user(email, password, role, tenant_id, name=name or None)
    user.must_change_password = True
    record("staff.create", tenant_id=tenant_id, target=user, user_id=actor.id,
           detail={"role": role})
    return user, password


def _not_oneself(user: User, actor: User, what: str) -> None:
    if user.id == actor.id:
        raise Conflict(f"you cannot {what} your own account")


def reset_password(user: User, actor: User) -> str:
    """A new temporary password; the user's sessions end, as the session key follows the hash."""
    _not_oneself(user, actor, "reset the password of")
    password = temporary_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    end_sessions(user, utcnow())
    record("staff.password_reset", tenant_id=user.tenant_id, target=user, user_id=actor.id)
    db.session.flush()
    return password


def set_active(user: User, active: bool, actor: User) -> None:
    """Deactivate (signed out at once, cannot sign in) or reactivate a login."""
    _not_oneself(user, actor, "deactivate")
    if user.active == active:
        return
    user.active = active
    if not active:
        end_sessions(user, utcnow())
    record("staff.reactivate" if active else "staff.deactivate", tenant_id=user.tenant_id,
           target=user, user_id=actor.id)
    db.session.flush()


def assigned_resident_ids(user: User) -> set[int]:
    return set(db.session.scalars(select(ResidentAssignment.resident_id)
                                  .where(ResidentAssignment.user_id == user.id)))


def assign_residents(user: User, chosen: Iterable[int], shown: Iterable[int],
                     actor: User) -> tuple[list[int], list[int]]:
    """Set a commissioner's residents among those the admin was shown (a search shows a part).

    Residents in `shown` and `chosen` are assigned, those shown but not chosen unassigned; the
    rest stay as they are. Returns the ids added and removed.
    """
    if user.role != "commissioner":
        raise field_error("role", "Only welfare commissioners' logins have assigned residents.")
    shown_ids = set(shown)
    chosen_ids = set(chosen) & shown_ids
    # Ids from the form: only the bound tenant's residents exist here (tenant-scoped query).
    known = set(db.session.scalars(select(Resident.id).where(Resident.id.in_(shown_ids))))
    if shown_ids - known:
        raise NotFound("no such residents")
    current = assigned_resident_ids(user)
    added = sorted(chosen_ids - current)
    removed = sorted((shown_ids - chosen_ids) & current)
    if removed:
        db.session.execute(delete(ResidentAssignment).where(
            ResidentAssignment.user_id == user.id, ResidentAssignment.resident_id.in_(removed)))
    db.session.add_all(ResidentAssignment(tenant_id=user.tenant_id, user_id=user.id,
                                          resident_id=resident_id) for resident_id in added)
    if added or removed:
        record("staff.assign_residents", tenant_id=user.tenant_id, target=user, user_id=actor.id,
               detail={"added": added, "removed": removed})
    db.session.flush()
    return added, removed


def search_residents(query: str, exclude: Iterable[int] = (), limit: int = 50) -> list[Resident]:
    """The bound tenant's residents whose name or kana contains `query` (spaces ignored)."""
    statement = select(Resident)
    words = normalise_text(query).replace(" ", "")
    if words:
        try:
            kana = normalise_kana(words)
        except ValueError:
            kana = words
        statement = statement.where(or_(
            func.replace(Resident.name, " ", "").contains(words, autoescape=True),
            func.replace(func.coalesce(Resident.name_kana, ""), " ", "").contains(
                kana, autoescape=True)))
    excluded = list(exclude)
    if excluded:
        statement = statement.where(Resident.id.not_in(excluded))
    order = (func.coalesce(Resident.name_kana, Resident.name), Resident.id)
    return list(db.session.scalars(statement.order_by(*order).limit(limit)))


def residents_by_id(resident_ids: Iterable[int]) -> list[Resident]:
    ids = list(resident_ids)
    if not ids:
        return []
    order = (func.coalesce(Resident.name_kana, Resident.name), Resident.id)
    return list(db.session.scalars(select(Resident).where(Resident.id.in_(ids)).order_by(*order)))


# Server-side sessions: the cookie holds a random token, the database its SHA-256 and its state.

SESSION_TOUCH_INTERVAL = timedelta(minutes=1)  # last_seen_at is written at most this often


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: User, *, ip: str | None, user_agent: str | None, now: datetime,
                  lifetime: timedelta) -> str:
    """A new session for a user who just gave their password; returns the cookie's token.
    The user's sessions older than `lifetime` (live no more) are forgotten, address and all."""
    db.session.execute(delete(StaffSession).where(StaffSession.user_id == user.id,
                                                  StaffSession.created_at < now - lifetime))
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(id=_session_id(token), user_id=user.id, created_at=now,
                                last_seen_at=now, ip=(ip or "")[:45] or None,
                                user_agent=(user_agent or "")[:255] or None))
    return token


def live_session(token: str, user_id: int, now: datetime, *, idle: timedelta,
                 lifetime: timedelta) -> StaffSession | None:
    """The session if it belongs to this user and has not been revoked or timed out."""
    found = db.session.get(StaffSession, _session_id(token))
    if (found is None or found.user_id != user_id or found.revoked_at is not None
            or now - found.last_seen_at >= idle or now - found.created_at >= lifetime):
        return None
    if now - found.last_seen_at >= SESSION_TOUCH_INTERVAL:
        found.last_seen_at = now
    return found


def end_session(token: str, now: datetime) -> None:
    """Sign-out: the token opens nothing any more, whoever holds a copy of the cookie."""
    db.session.execute(update(StaffSession).where(
        StaffSession.id == _session_id(token), StaffSession.revoked_at.is_(None)
    ).values(revoked_at=now))


def end_sessions(user: User, now: datetime, keep: str | None = None) -> int:
    """End every session of the user (but the one whose token is `keep`); returns how many."""
    statement = update(StaffSession).where(StaffSession.user_id == user.id,
                                           StaffSession.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(StaffSession.id != _session_id(keep))
    return db.session.execute(statement.values(revoked_at=now)).rowcount or 0


# Who is on duty (当番): reached by an alert chain's `staff` step.

_LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
WEEKDAYS = range(7)  # Monday is 0, as datetime.weekday()


def set_contact(user: User, phone: str | None, line_user_id: str | None, actor: User) -> None:
    """How the staff step reaches this person: a phone (any Japanese form) and a LINE user id."""
    normalised = None
    if phone and phone.strip():
        try:
            normalised = normalise_phone(phone)
        except ValueError:
            raise field_error("phone", "Not a phone number.") from None
    line = (line_user_id or "").strip() or None
    if line is not None and not _LINE_USER_ID.match(line):
        raise field_error("line_user_id", "A LINE user id is U followed by 32 hexadecimal digits.")
    if (user.phone, user.line_user_id) == (normalised, line):
        return
    user.phone, user.line_user_id = normalised, line
    record("staff.contact", tenant_id=user.tenant_id, target=user, user_id=actor.id,
           detail={"phone": normalised is not None, "line": line is not None})
    db.session.flush()


def set_on_duty(user: User, on_duty: bool, actor: User) -> None:
    if user.on_duty == on_duty:
        return
    user.on_duty = on_duty
    record("staff.on_duty" if on_duty else "staff.off_duty", tenant_id=user.tenant_id,
           target=user, user_id=actor.id)
    db.session.flush()


def rota() -> list[DutySlot]:
    """The bound tenant's weekly rota, by weekday and start."""
    return list(db.session.scalars(select(DutySlot).order_by(
        DutySlot.weekday, DutySlot.starts_at, DutySlot.id)))


def add_duty_slot(user: User, weekday: int, starts_at: time, ends_at: time,
                  actor: User) -> DutySlot:
    """A rota line: `user` is on duty on `weekday` from `starts_at` until `ends_at` (tenant's zone;
    an end at or before the start runs into the next day)."""
    if weekday not in WEEKDAYS:
        raise field_error("weekday", "Choose a day of the week.")
    if not user.active:
        raise field_error("user_id", "This login is deactivated.")
    slot = DutySlot(tenant_id=user.tenant_id, user_id=user.id, weekday=weekday,
                    starts_at=starts_at.replace(second=0, microsecond=0),
                    ends_at=ends_at.replace(second=0, microsecond=0))
    db.session.add(slot)
    db.session.flush()
    record("staff.rota_add", tenant_id=user.tenant_id, target=user, user_id=actor.id,
           detail={"slot_id": slot.id, "weekday": weekday,
                   "starts_at": starts_at.strftime("%H:%M"), "ends_at": ends_at.strftime("%H:%M")})
    return slot


def remove_duty_slot(slot_id: int, actor: User) -> None:
    slot = db.session.scalar(select(DutySlot).where(DutySlot.id == slot_id))
    if slot is None:
        raise NotFound(f"no rota line {slot_id}")
    record("staff.rota_remove", tenant_id=slot.tenant_id, target=db.session.get(User, slot.user_id),
           user_id=actor.id, detail={"slot_id": slot.id, "weekday": slot.weekday})
    db.session.delete(slot)
    db.session.flush()


def _covers(slot: DutySlot, weekday: int, clock: time) -> bool:
    if slot.starts_at < slot.ends_at:
        return slot.weekday == weekday and slot.starts_at <= clock < slot.ends_at
    # Overnight (or a whole day when start and end are equal): from the start on its own day
    # until the end on the next.
    return ((slot.weekday == weekday and clock >= slot.starts_at)
            or (slot.weekday == (weekday - 1) % 7 and clock < slot.ends_at))


def on_duty_staff(tenant: Tenant, now: datetime) -> list[User]:
    """The tenant's active staff on duty at `now`: by the rota when there is one, else those
    marked 当番 on the staff page."""
    users = {u.id: u for u in db.session.scalars(select(User).where(
        User.tenant_id == tenant.id, User.active.is_(True)).order_by(User.id))}
    slots = rota()
    if not slots:
        return [u for u in users.values() if u.on_duty]
    local = now.astimezone(tenant.zone)
    clock = local.time().replace(tzinfo=None)
    chosen = {s.user_id for s in slots if _covers(s, local.weekday(), clock)}
    return [u for user_id, u in users.items() if user_id in chosen]


def reachable(user: User) -> bool:
    """Whether the staff step has any way to reach this person on this tenant's channels."""
    tenant = db.session.get(Tenant, user.tenant_id)
    return tenant is not None and first_working(
        tenant, STAFF_CHANNELS, user.phone, user.line_user_id) is not None


STAFF_CHANNELS = ("line", "sms", "voice")


def duty_targets(tenant: Tenant, now: datetime) -> list[dict[str, Any]]:
    """Everyone an alert chain's staff step reaches at `now` (type, id, name, channels, phone,
    line id): staff on duty as the tenant's admins set it (当番, rota), then the operator's list."""
    return [{"type": "staff_user", "id": user.id, "name": user.name or "担当職員",
             "channels": list(STAFF_CHANNELS), "phone": user.phone,
             "line_user_id": user.line_user_id} for user in on_duty_staff(tenant, now)] + [
            {"type": "staff", "id": index, "name": person.get("name", "担当職員"),
             "channels": person.get("channels") or list(STAFF_CHANNELS),
             "phone": person.get("phone"), "line_user_id": person.get("line_user_id")}
            for index, person in enumerate(tenant.on_duty or [])]


def unreachable_steps(tenant: Tenant, now: datetime) -> dict[str, str]:
    """Alert-step targets that would reach nobody at `now`, as codes for the chain editor:
    staff `nobody_on_duty` or `no_address`, group_leader `no_leader`; contacts are
    `per_resident` (whether anyone is reached depends on each resident's contacts)."""
    found = {"contacts": "per_resident"}
    targets = duty_targets(tenant, now)
    if not targets:
        found["staff"] = "nobody_on_duty"
    elif not any(first_working(tenant, t["channels"], t["phone"], t["line_user_id"])
                 for t in targets):
        found["staff"] = "no_address"
    led = db.session.scalar(select(Group.id).where(or_(
        Group.leader_resident_id.is_not(None), Group.leader_phone.is_not(None),
        Group.leader_line_user_id.is_not(None))).limit(1))
    if led is None:
        found["group_leader"] = "no_leader"
    return found
