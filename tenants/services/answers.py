"""Replies from residents and contacts, and provider reports: who sent it, what it means, what changes.

Webhooks call these with the tenant bound and commit afterwards. Each provider event is claimed in
`webhook_events` in the same transaction as its effects, so a redelivered event changes nothing.
An `Outcome` marked `rejected` changed nothing worth keeping: the webhook rolls it back.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mimamori.extensions import db
from tenants import messages
from tenants.errors import Conflict
from tenants.japanese import normalise_phone
from tenants.models import (
    Check,
    CheckPolicy,
    Contact,
    Delivery,
    Group,
    InboundMessage,
    Incident,
    LinkAttempt,
    Resident,
    Tenant,
    User,
    WebhookEvent,
)
from tenants.services import checks, deliveries, digests, incidents
from tenants.services.deliveries import PENDING, insert_ignoring_duplicates
from tenants.tenancy import bound_tenant_id
from tenants.types import MAX_ID, UTCDateTime

log = logging.getLogger(__name__)

# Deliveries that reached (or are reaching) their person: only these count as "told about".
TOLD = ("sending", "sent", "delivered", "read", "answered")
# Twilio's MessageStatus and CallStatus in our delivery statuses; "queued" at Twilio is our "sent".
MESSAGE_STATUSES = {"queued": "sent", "accepted": "sent", "scheduled": "sent", "sending": "sent",
                    "sent": "sent", "delivered": "delivered", "read": "read",
                    "undelivered": "failed", "failed": "failed", "canceled": "canceled"}
CALL_STATUSES = {"queued": "sent", "initiated": "sent", "ringing": "sent",
                 "in-progress": "delivered", "completed": "delivered", "busy": "busy",
                 "no-answer": "no_answer", "failed": "failed", "canceled": "canceled"}
STATUS_WORDS = {"sent": "送信しました", "delivered": "届きました", "read": "読まれました",
                "answered": "応答がありました", "failed": "届きませんでした",
                "blocked": "ブロックされています", "busy": "話し中でした",
                "no_answer": "応答がありませんでした", "canceled": "取り消されました"}
_LINK_CODE = re.compile(r"[0-9]{6}")
# Six digits are few, so guessing them must be slow. One LINE user gets LINK_TRIES_PER_USER tries
# per LINK_USER_WINDOW; a tenant takes LINK_FAILURES_PER_TENANT wrong codes per LINK_TENANT_WINDOW
# from everyone together (many LINE accounts cannot share the guessing out), then linking pauses.
LINK_TRIES_PER_USER = 5
LINK_USER_WINDOW = timedelta(hours=24)
LINK_FAILURES_PER_TENANT = 50
LINK_TENANT_WINDOW = timedelta(hours=1)
TENANT_WIDE = "*"  # the subject of the tenant's count: no LINE user id looks like it
# What a link code sent over LINE led to (the webhook counts these for operators).
LINK_RESULTS = ("linked", "link_code_wrong", "link_locked", "link_paused")
_DIGEST = re.compile(r"([0-9]{1,10}):(.{1,40})")


@dataclass
class Outcome:
    """What an event led to. `result` names it for the log line (never personal data), `reply` is
    the text to answer the sender with, `follow_up` the fallback deliveries to queue."""

    result: str
    reply: str | None = None
    follow_up: list[int] = field(default_factory=list)
    rejected: bool = False


@dataclass(frozen=True)
class Responder:
    """A person alerted about incidents, named as their deliveries name them (contact, leader)."""

    recipient_type: str
    recipient_id: int
    name: str
    resident_id: int | None = None
    contact_id: int | None = None


@dataclass(frozen=True)
class LineEvent:
    """The parts of a LINE webhook event the rules need."""

    event_id: str
    kind: str
    user_id: str
    text: str | None = None
    data: str | None = None


def parse_id(text: str | None) -> int | None:
    """The id written in `text` (a postback, a callback URL), None when no row can have it."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def _rejected(result: str, reply: str | None = None) -> Outcome:
    return Outcome(result, reply=reply, rejected=True)


def claim_event(provider: str, event_id: str, now: datetime) -> bool:
    """Record a provider event as handled; False when it already was (a redelivery)."""
    inserted = db.session.scalar(
        insert_ignoring_duplicates(WebhookEvent)
        .values(tenant_id=bound_tenant_id(), provider=provider, event_id=event_id[:100],
                received_at=now)
        .returning(WebhookEvent.id))
    return inserted is not None


# Who is this?

def _resident_by_line(user_id: str) -> Resident | None:
    return db.session.scalar(select(Resident).where(Resident.line_user_id == user_id))


def _responders(*, line_user_id: str | None = None, phone: str | None = None) -> list[Responder]:
    """Contacts and group leaders reachable at this LINE user id or phone number."""
    if not (line_user_id or phone):
        return []

    def matches(line_column: Any, phone_column: Any) -> Any:
        return line_column == line_user_id if line_user_id else phone_column == phone

    found = [Responder("contact", c.id, c.name, c.resident_id, c.id) for c in db.session.scalars(
        select(Contact).where(matches(Contact.line_user_id, Contact.phone)).order_by(Contact.id))]
    outside = db.session.scalars(select(Group).where(
        Group.leader_resident_id.is_(None),
        matches(Group.leader_line_user_id, Group.leader_phone)).order_by(Group.id))
    found += [Responder("leader", g.id, g.leader_name or g.name) for g in outside]
    resident_leads = db.session.execute(select(Group.id, Resident.name).join(
        Resident, Resident.id == Group.leader_resident_id).where(
        matches(Resident.line_user_id, Resident.phone)).order_by(Group.id))
    found += [Responder("leader", group_id, name) for group_id, name in resident_leads]
    return found


def _told_incident(responders: list[Responder],
                   incident_id: int | None = None) -> tuple[Incident, Responder] | None:
    """The incident these people were told about (that one, or the latest still open)."""
    if not responders:
        return None
    by_key = {(r.recipient_type, r.recipient_id): r for r in responders}
    statement = (
        select(Incident, Delivery.recipient_type, Delivery.recipient_id)
        .join(Delivery, Delivery.incident_id == Incident.id)
        .where(Delivery.status.in_(TOLD),
               or_(*(and_(Delivery.recipient_type == kind, Delivery.recipient_id == person_id)
                     for kind, person_id in by_key)))
        .order_by(Delivery.id.desc()).limit(1))
    statement = statement.where(Incident.id == incident_id if incident_id is not None
                                else Incident.status == "open")
    row = db.session.execute(statement).first()
    return (row[0], by_key[(row[1], row[2])]) if row else None


def _link_code(text: str) -> str | None:
    """A link code as residents type it: full-width digits, spaces or hyphens are fine."""
    compact = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text))
    return compact if _LINK_CODE.fullmatch(compact) else None


def _keep(channel: str, sender: str, body: str, now: datetime, resident: Resident | None,
          responder: Responder | None) -> Outcome:
    """Something that is not an answer: staff read it; the sender is told so."""
    if resident is not None:
        resident_id, contact_id = resident.id, None
    else:
        resident_id = responder.resident_id if responder else None
        contact_id = responder.contact_id if responder else None
    db.session.add(InboundMessage(resident_id=resident_id, contact_id=contact_id, channel=channel,
                                  sender=sender[:64], body=body, received_at=now))
    return Outcome("stored", messages.AUTO_REPLY)


def _acknowledge(found: tuple[Incident, Responder], now: datetime) -> Outcome:
    incident, responder = found
    done = incidents.acknowledge(incident, responder.name, now)
    return Outcome("acknowledged" if done else "already_handled", messages.ACK_THANKS)


def _answer(check: Check, via: str, now: datetime) -> Outcome:
    done = checks.answer(check, via, now)
    return Outcome("answered" if done else "already_answered", messages.THANKS)


# LINE

def line_event(tenant: Tenant, event: LineEvent, now: datetime) -> Outcome:
    """One webhook event from the tenant's LINE account, at most once per webhookEventId."""
    if not claim_event("line", event.event_id, now):
        return Outcome("duplicate")
    if event.kind == "follow":
        return _line_follow(event.user_id)
    if event.kind == "unfollow":
        return _line_unfollow(tenant, event.user_id, now)
    if event.kind == "message" and event.text is not None:
        return _line_text(event.user_id, event.text, now)
    if event.kind == "postback" and event.data is not None:
        return _line_postback(event.user_id, event.data, now)
    return Outcome("ignored")


def is_answer_tap(event: LineEvent) -> bool:
    """A tap on a check's OK button: most of a morning's webhook traffic."""
    return event.kind == "postback" and (event.data or "").startswith("answer:")


def answer_taps(events: list[LineEvent], now: datetime) -> list[Outcome]:
    """`line_event` for a run of OK taps, in a handful of statements however many there are.

    Taps that name no check of the sender are rejected and not claimed, as `line_event` rolls
    theirs back; of several taps on one check (or one event delivered twice) the first answers.
    """
    users = {e.user_id for e in events}
    residents = dict(db.session.execute(select(Resident.line_user_id, Resident.id).where(
        Resident.line_user_id.in_(users))).all())
    wanted = [(residents.get(e.user_id), (e.data or "").partition(":")[2]) for e in events]
    found = {(resident_id, occurrence): check_id for check_id, resident_id, occurrence in
             db.session.execute(select(Check.id, Check.resident_id, Check.occurrence).where(
                 Check.resident_id.in_({r for r, _ in wanted if r is not None}),
                 Check.occurrence.in_({o for _, o in wanted})))}
    check_ids = [found.get(key) for key in wanted]
    claims = list({e.event_id[:100]: None for e, c in zip(events, check_ids, strict=True) if c})
    claimed = set(db.session.scalars(insert_ignoring_duplicates(WebhookEvent).values([
        {"tenant_id": bound_tenant_id(), "provider": "line", "event_id": event_id, "received_at": now}
        for event_id in claims]).returning(WebhookEvent.event_id))) if claims else set()
    fresh = []  # per event: claimed here for the first time (not a redelivery or a copy)
    first: dict[int, str] = {}  # check id -> the event that answers it
    for event, check_id in zip(events, check_ids, strict=True):
        fresh.append(bool(check_id) and event.event_id[:100] in claimed)
        if fresh[-1]:
            claimed.discard(event.event_id[:100])
            first.setdefault(check_id, event.event_id)
    answered = checks.answer_many(list(first), "line", now) if first else set()
    outcomes = []
    for event, check_id, new in zip(events, check_ids, fresh, strict=True):
        if check_id is None:
            outcomes.append(_rejected("unknown_check"))
        elif not new:
            outcomes.append(Outcome("duplicate"))
        elif first[check_id] == event.event_id and check_id in answered:
            outcomes.append(Outcome("answered", messages.THANKS))
        else:
            outcomes.append(Outcome("already_answered", messages.THANKS))
    return outcomes


def _line_follow(user_id: str) -> Outcome:
    resident = _resident_by_line(user_id)
    if resident is not None:
        resident.line_blocked = False
        return Outcome("resident_followed")
    if _responders(line_user_id=user_id):
        return Outcome("contact_followed")
    return Outcome("welcomed", messages.WELCOME)


def _line_unfollow(tenant: Tenant, user_id: str, now: datetime) -> Outcome:
    """Blocked: LINE no longer reaches them, so open checks sent by LINE go out another way now."""
    resident = _resident_by_line(user_id)
    if resident is None:
        return Outcome("not_a_resident")
    resident.line_blocked = True
    follow_up: list[int] = []
    open_checks = db.session.scalars(select(Check.id).where(
        Check.resident_id == resident.id, Check.answered_at.is_(None),
        Check.status.in_(("sent", "missed"))).order_by(Check.id)).all()
    for check_id in open_checks:
        last = db.session.scalar(select(Delivery).where(
            Delivery.check_id == check_id, Delivery.recipient_type == "resident")
            .order_by(Delivery.id.desc()).limit(1))
        # A delivery already failed or blocked has had its fallback from the dispatcher.
        if last is not None and last.channel == "line" and _set_status(
                last, "blocked", now, "LINE: the resident blocked the account"):
            follow_up += _fall_back(tenant, last, now)
    return Outcome("blocked", follow_up=follow_up)


def _count_try(subject: str, window: timedelta, now: datetime) -> int:
    """Count one more try for `subject` in its window (a new window once the last is over); the
    count with this try. One statement, so concurrent tries each see their own number."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    over = LinkAttempt.window_started_at <= literal(now - window, UTCDateTime())
    statement = dialect.insert(LinkAttempt).values(
        tenant_id=bound_tenant_id(), subject=subject, window_started_at=now, attempts=1)
    statement = statement.on_conflict_do_update(
        index_elements=[LinkAttempt.tenant_id, LinkAttempt.subject],
        set_={"attempts": case((over, 1), else_=LinkAttempt.attempts + 1),
              "window_started_at": case((over, literal(now, UTCDateTime())),
                                        else_=LinkAttempt.window_started_at)})
    return int(db.session.scalar(statement.returning(LinkAttempt.attempts)))


def _uncount_try(subject: str) -> None:
    """Take back a try that tested no code or found the right one: only wrong codes stay counted."""
    db.session.execute(update(LinkAttempt).where(LinkAttempt.subject == subject)
                       .values(attempts=LinkAttempt.attempts - 1))


def _link(user_id: str, code: str, now: datetime) -> Outcome:
    """A LINE user who is nobody's account yet sends a link code: link them to its resident if the
    code is theirs, still valid and unused, within the limits on tries. A code links once."""
    if _count_try(user_id, LINK_USER_WINDOW, now) > LINK_TRIES_PER_USER:
        return Outcome("link_locked", messages.LINK_LOCKED)
    # The count holds this user's row until commit: a code sent at the same moment waited here,
    # and may have linked them already.
    if _resident_by_line(user_id) is not None:
        _uncount_try(user_id)
        return Outcome("already_linked", messages.LINKED)
    tenant_tries = _count_try(TENANT_WIDE, LINK_TENANT_WINDOW, now)
    if tenant_tries > LINK_FAILURES_PER_TENANT:
        if tenant_tries == LINK_FAILURES_PER_TENANT + 1:
            log.warning("line link codes paused tenant_id=%s: %s wrong codes within %s",
                        bound_tenant_id(), LINK_FAILURES_PER_TENANT, LINK_TENANT_WINDOW)
        _uncount_try(user_id)
        return Outcome("link_paused", messages.LINK_PAUSED)
    # Locked, so that of two users sending one code at once only the first links.
    owner = db.session.scalar(select(Resident).where(
        Resident.link_code == code, Resident.line_user_id.is_(None),
        Resident.link_code_expires_at > now).with_for_update())
    if owner is None:
        return Outcome("link_code_wrong", messages.LINK_CODE_WRONG)
    owner.line_user_id = user_id
    owner.line_blocked = False
    owner.link_code_expires_at = None
    db.session.execute(delete(LinkAttempt).where(LinkAttempt.subject == user_id))
    _uncount_try(TENANT_WIDE)
    return Outcome("linked", messages.LINKED)


def _line_text(user_id: str, text: str, now: datetime) -> Outcome:
    resident = _resident_by_line(user_id)
    code = _link_code(text) if resident is None else None
    if code is not None:
        return _link(user_id, code, now)
    responders = _responders(line_user_id=user_id)
    if messages.is_answer(text):
        check = checks.open_check_for(resident.id) if resident else None
        if check is not None:
            return _answer(check, "line", now)
        told = _told_incident(responders)
        if told is not None:
            return _acknowledge(told, now)
        if resident is not None:
            return Outcome("already_answered", messages.THANKS)
    if resident is not None or responders:
        return _keep("line", user_id, text, now, resident, responders[0] if responders else None)
    # Someone who followed the account but is not registered: tell them how to link.
    return _rejected("unknown_sender", messages.WELCOME)


def _line_postback(user_id: str, data: str, now: datetime) -> Outcome:
    """The OK button ("answer:<occurrence>"), a contact's "見に行きます" ("ack:<incident id>") or a
    group leader's on a digest ("digest:<group id>:<occurrence>")."""
    kind, _, value = data.partition(":")
    digest = _DIGEST.fullmatch(value) if kind == "digest" else None
    if digest is not None and parse_id(digest[1]) is not None:
        answer = digests.leader_goes_to_see(user_id, int(digest[1]), digest[2], now)
        return Outcome(answer.result, reply=answer.reply, rejected=answer.rejected)
    if kind == "answer":
        resident = _resident_by_line(user_id)
        # Only the resident's own check matches: another tenant's or person's occurrence finds none.
        check = checks.check_by_occurrence(resident.id, value) if resident else None
        return _answer(check, "line", now) if check else _rejected("unknown_check")
    incident_id = parse_id(value) if kind == "ack" else None
    if incident_id is not None:
        told = _told_incident(_responders(line_user_id=user_id), incident_id)
        return _acknowledge(told, now) if told else _rejected("unknown_incident")
    return _rejected("unknown_postback")


# SMS

def sms_received(message_sid: str, sender: str, body: str, now: datetime) -> Outcome:
    """A text to the tenant's number: an answer, an acknowledgement, or a message for staff."""
    try:
        phone = normalise_phone(sender)
    except ValueError:
        return _rejected("unknown_sender")
    residents = list(db.session.scalars(select(Resident).where(Resident.phone == phone)
                                        .order_by(Resident.id)))
    responders = _responders(phone=phone)
    if not residents and not responders:
        return _rejected("unknown_sender")
    if not claim_event("twilio", f"sms:{message_sid}", now):
        return Outcome("duplicate")
    if messages.is_answer(body):
        # A shared household phone answers only the latest check sent to it, never all of them.
        open_checks = [c for c in (checks.open_check_for(r.id) for r in residents) if c]
        if open_checks:
            latest = max(open_checks, key=lambda c: (c.scheduled_at, c.id))
            return _answer(latest, "sms", now)
        told = _told_incident(responders)
        if told is not None:
            return _acknowledge(told, now)
        if residents:
            return Outcome("already_answered", messages.THANKS)
    return _keep("sms", phone, body, now, residents[0] if residents else None,
                 responders[0] if responders else None)


# Voice

def voice_delivery(delivery_id: int | None) -> Delivery | None:
    """The call a TwiML request belongs to."""
    if delivery_id is None:
        return None
    return db.session.scalar(select(Delivery).where(Delivery.id == delivery_id,
                                                    Delivery.channel == "voice"))


def voice_keypress(tenant: Tenant, delivery: Delivery, digits: str, now: datetime) -> Outcome:
    """Keypad 1 answers the resident's check or acknowledges a contact's alert; other keys do not."""
    if digits.strip() != "1":
        return _rejected("other_digit")
    _set_status(delivery, "answered", now)
    if delivery.recipient_type == "resident":
        check = db.session.get(Check, delivery.check_id) if delivery.check_id else None
        return _answer(check, "voice", now) if check else Outcome("answered", messages.THANKS)
    incident = db.session.get(Incident, delivery.incident_id) if delivery.incident_id else None
    if incident is None:
        return Outcome("answered", messages.ACK_THANKS)
    return _acknowledge((incident, Responder(delivery.recipient_type, delivery.recipient_id or 0,
                                             _recipient_name(tenant, delivery))), now)


def _recipient_name(tenant: Tenant, delivery: Delivery) -> str:
    if delivery.recipient_type == "contact":
        contact = db.session.get(Contact, delivery.recipient_id)
        return contact.name if contact else "緊急連絡先"
    if delivery.recipient_type == "leader":
        return _group_leader_name(delivery.recipient_id) or "グループリーダー"
    if delivery.recipient_type == "staff_user":
        user = db.session.get(User, delivery.recipient_id) if delivery.recipient_id else None
        return user.name if user is not None and user.name else "担当職員"
    on_duty = tenant.on_duty or []
    index = delivery.recipient_id or 0
    return str(on_duty[index].get("name") or "担当職員") if index < len(on_duty) else "担当職員"


def _group_leader_name(group_id: int | None) -> str | None:
    group = db.session.get(Group, group_id) if group_id is not None else None
    if group is None:
        return None
    leader = db.session.get(Resident, group.leader_resident_id) if group.leader_resident_id else None
    return leader.name if leader else group.leader_name or group.name


# Status callbacks

def find_delivery(delivery_id: int | None) -> Delivery | None:
    return db.session.get(Delivery, delivery_id) if delivery_id is not None else None


def delivery_status(tenant: Tenant, delivery: Delivery, sid: str, provider_status: str,
                    now: datetime, error_code: str | None = None) -> Outcome:
    """A Twilio status callback: move the delivery forward, retry a busy check call, fall back."""
    if not claim_event("twilio", f"status:{sid}:{provider_status}", now):
        return Outcome("duplicate")
    # A waiting delivery, or one now on another attempt, hears nothing more from an old attempt.
    if delivery.status in PENDING or (delivery.provider_ref and delivery.provider_ref != sid):
        return Outcome("stale_attempt")
    is_call = delivery.channel == "voice"
    status = (CALL_STATUSES if is_call else MESSAGE_STATUSES).get(provider_status)
    if status is None:
        return _rejected("unknown_status")
    error = f"Twilio {provider_status}" + (f" (error {error_code})" if error_code else "")
    unanswered_check_call = (is_call and status in ("busy", "no_answer")
                             and delivery.purpose == "check" and delivery.recipient_type == "resident")
    if unanswered_check_call and _retry_later(tenant, delivery, now, error):
        return Outcome("retry_scheduled")
    if not _set_status(delivery, status, now, error if status in deliveries.FINAL else None):
        return Outcome("unchanged")
    if status == "failed" or unanswered_check_call:
        return Outcome(status, follow_up=_fall_back(tenant, delivery, now))
    return Outcome(status)


def _retry_later(tenant: Tenant, delivery: Delivery, now: datetime, error: str) -> bool:
    """Call again after the policy's wait while retries remain and the window is still open."""
    check = db.session.get(Check, delivery.check_id) if delivery.check_id else None
    policy = db.session.get(CheckPolicy, check.policy_id) if check and check.policy_id else None
    if check is None or policy is None or check.status != "sent":
        return False
    if delivery.attempts > policy.voice_retries:
        return False
    at = now + timedelta(minutes=policy.voice_retry_minutes)
    at = deliveries.quiet_hours_end(tenant, at) or at
    if at >= check.window_ends_at:
        return False
    # Back to `retry` (a step backwards advance_status would refuse): the clock queues it at
    # `not_before`, and the next attempt's call SID replaces this one.
    delivery.status, delivery.not_before, delivery.provider_ref = "retry", at, None
    delivery.error, delivery.updated_at = error[:300], now
    return True


def _set_status(delivery: Delivery, status: str, now: datetime, error: str | None = None) -> bool:
    """Advance a delivery; a delivery of an incident puts every change on its timeline."""
    if not deliveries.advance_status(delivery, status, now, error):
        return False
    if delivery.incident_id:
        incidents.add_event(delivery.incident_id, "delivery",
                            f"{incidents.CHANNEL_NAMES[delivery.channel]}: {STATUS_WORDS[status]}",
                            now, {"delivery_id": delivery.id, "status": status})
    return True


def _fall_back(tenant: Tenant, delivery: Delivery, now: datetime) -> list[int]:
    """The next channel, unless nobody needs this delivery any more (answered, acknowledged)."""
    from worker.dispatch import fall_back

    if delivery.incident_id:
        incident = db.session.get(Incident, delivery.incident_id)
        if incident is None or incident.status != "open":
            return []
    elif delivery.check_id:
        check = db.session.get(Check, delivery.check_id)
        if check is None or check.answered_at is not None:
            return []
    return fall_back(tenant, delivery, now)


# The resident simulator (sandbox tenants)

def simulated_answer(tenant: Tenant, delivery: Delivery, now: datetime) -> Outcome:
    """Answer a message as the resident who received it would: LINE's 「元気です」 button, an SMS
    reply of "1", keypad 1 on the call — through the same rules as the webhooks, only without a
    provider's signature. Sandbox tenants only: real providers' answers come signed."""
    if not tenant.is_sandbox:
        raise Conflict("only a sandbox tenant takes simulated answers")
    if delivery.recipient_type != "resident" or not delivery.address:
        return _rejected("not_a_resident")
    if delivery.status not in TOLD:
        return _rejected("not_received")  # still queued, or it never reached the resident
    event_id = f"simulator-{uuid.uuid4()}"
    if delivery.channel == "line":
        check = db.session.get(Check, delivery.check_id) if delivery.check_id else None
        if check is None:
            return _rejected("unknown_check")
        return line_event(tenant, LineEvent(event_id, "postback", delivery.address,
                                            data=messages.answer_data(check.occurrence)), now)
    if delivery.channel == "sms":
        return sms_received(event_id, delivery.address, "1", now)
    return voice_keypress(tenant, delivery, "1", now)
