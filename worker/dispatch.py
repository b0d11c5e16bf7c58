"""Sending deliveries through the channel adapters and recording what happened, row by row.

A delivery is claimed (`queued`/`retry` → `sending`) and committed before the provider call and
updated after it, so a crash in between leaves a `sending` row that the clock re-queues as
interrupted. LINE recognises the stored X-Line-Retry-Key of such a batch and does not deliver it
twice; Twilio has no such key, so an interrupted SMS or call is first looked up with Twilio.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from mimamori import metrics
from mimamori.extensions import db
from tenants import messages
from tenants.models import Broadcast, Check, Contact, Delivery, GroupDigest, Incident, Resident, Tenant
from tenants.services import deliveries, incidents
from tenants.services.deliveries import delivery_row, first_working
from tenants.types import utcnow
from worker.channels import Batch, ChannelAdapter, ChannelCredentials, Message, Recipient, SendResult

log = logging.getLogger(__name__)

INLINE_RETRY_LIMIT_SECONDS = 10
INLINE_ATTEMPTS = 3
CHANNEL_NAMES = incidents.CHANNEL_NAMES
INTERRUPTED = "interrupted: the job stopped between the provider call and its record"


def credentials(tenant: Tenant) -> ChannelCredentials:
    return ChannelCredentials(
        tenant_slug=tenant.slug, line_channel_access_token=tenant.line_channel_access_token,
        twilio_account_sid=tenant.twilio_account_sid, twilio_auth_token=tenant.twilio_auth_token,
        twilio_from_number=tenant.twilio_from_number)


def adapter_for(tenant: Tenant, channel: str) -> ChannelAdapter:
    from worker import line, sandbox, sms, voice

    if tenant.is_sandbox:
        return sandbox.SandboxAdapter()
    config = current_app.config
    if channel == "line":
        return line.LineAdapter(config["LINE_API_BASE_URL"])
    if channel == "sms":
        return sms.SmsAdapter(config["TWILIO_API_BASE_URL"])
    return voice.VoiceAdapter(config["TWILIO_API_BASE_URL"])


def _rate_limit(tenant: Tenant, channel: str, requests: int) -> None:
    """Wait for this tenant's share of the provider's rate, across every worker process."""
    from worker.queues import redis_connection
    from worker.ratelimit import DEFAULT_LIMITS, Limit, bucket_for

    if tenant.is_sandbox:
        return
    provider = {"line": "line", "sms": "twilio_messages", "voice": "twilio_calls"}[channel]
    limits = {**DEFAULT_LIMITS, "twilio_calls": Limit(tenant.twilio_calls_per_second,
                                                      tenant.twilio_calls_per_second)}
    wait = bucket_for(redis_connection(), tenant.id, provider, limits).acquire(requests)
    if wait > 0:
        time.sleep(wait)


def _answer_data(delivery: Delivery, checks: dict[int, Check]) -> tuple[str | None, str]:
    if delivery.purpose == "digest":
        # Only the leader's copy of a group digest carries 「見に行きます」.
        digest = db.session.get(GroupDigest, delivery.digest_id) if delivery.digest_id else None
        if digest is None or delivery.recipient_type != "leader":
            return None, messages.GO_AND_SEE
        return messages.digest_data(digest.group_id, digest.occurrence), messages.GO_AND_SEE
    if delivery.recipient_type == "staff":
        return None, messages.ANSWER_LABEL
    if delivery.recipient_type in ("contact", "leader") and delivery.incident_id:
        return f"ack:{delivery.incident_id}", "見に行きます"
    check = checks.get(delivery.check_id or 0)
    if check is None:
        return None, messages.ANSWER_LABEL
    return messages.answer_data(check.occurrence), messages.ANSWER_LABEL


def _twilio_urls(tenant: Tenant, delivery: Delivery) -> tuple[str, str]:
    base = f"{current_app.config['PUBLIC_BASE_URL']}/webhooks/twilio/{tenant.slug}"
    return f"{base}/status?delivery={delivery.id}", f"{base}/voice?delivery={delivery.id}"


def _batches(tenant: Tenant, claimed: list[Delivery], checks: dict[int, Check]) -> Iterable[Batch]:
    line_groups: dict[Any, list[Delivery]] = defaultdict(list)
    for delivery in claimed:
        if delivery.channel == "line":
            line_groups[(delivery.retry_key, delivery.body, _answer_data(delivery, checks))].append(
                delivery)
            continue
        status_url, voice_url = _twilio_urls(tenant, delivery)
        data, label = _answer_data(delivery, checks)
        yield Batch(message=Message(text=delivery.body or "", answer_data=data, answer_label=label,
                                    voice_text=delivery.body, callback_url=status_url,
                                    gather_url=voice_url),
                    recipients=[Recipient(delivery.id, delivery.address or "")])
    for (retry_key, body, (data, label)), members in line_groups.items():
        yield Batch(message=Message(text=body or "", answer_data=data, answer_label=label),
                    recipients=[Recipient(d.id, d.address or "") for d in members],
                    retry_key=retry_key or str(uuid.uuid4()))


def _send(tenant: Tenant, batch: Batch, channel: str) -> list[SendResult]:
    """Send one batch, retrying in place (only those not yet accepted) when the provider asks
    for a short wait; a longer wait is left to the clock."""
    adapter = adapter_for(tenant, channel)
    creds = credentials(tenant)
    final: dict[int, SendResult] = {}
    pending = batch
    for attempt in range(INLINE_ATTEMPTS):
        # LINE sends a batch in one request; Twilio makes one request per recipient.
        _rate_limit(tenant, channel, 1 if channel == "line" else len(pending.recipients))
        results = metrics.timed_send(adapter, creds, pending)
        final.update((r.delivery_id, r) for r in results)
        retry = {r.delivery_id: r for r in results if r.status == "retry"}
        if not retry or attempt == INLINE_ATTEMPTS - 1:
            break
        wait = max((r.retry_after or 2 ** attempt) for r in retry.values())
        if wait > INLINE_RETRY_LIMIT_SECONDS:
            break
        time.sleep(wait)
        pending = Batch(message=batch.message, retry_key=batch.retry_key,
                        recipients=[r for r in pending.recipients if r.delivery_id in retry])
    return list(final.values())


def _already_sent(tenant: Tenant, delivery: Delivery, claimed_at: datetime) -> str | None:
    """The SID of a message or call an interrupted job may already have made, per Twilio."""
    from worker.sms import twilio_client

    if tenant.is_sandbox or delivery.channel == "line":
        return None
    client = twilio_client(current_app.config["TWILIO_API_BASE_URL"], tenant.twilio_account_sid or "",
                           tenant.twilio_auth_token or "")
    # Searched from just before the interrupted claim, so the identical text of an earlier
    # day's check is never mistaken for this one.
    since = claimed_at - timedelta(minutes=1)
    if delivery.channel == "sms":
        for message in client.messages.list(to=delivery.address, date_sent_after=since, limit=50):
            if message.body == delivery.body and message.date_created and message.date_created >= since:
                return message.sid
        return None
    for call in client.calls.list(to=delivery.address, start_time_after=since, limit=50):
        if call.date_created and call.date_created >= since:
            return call.sid
    return None


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 1800))


def record(tenant: Tenant, delivery: Delivery, result: SendResult, now: datetime) -> list[int]:
    """Store one result; a blocked or failed first contact falls back to the next channel.

    A status callback may have landed between the provider call and this record (an instant
    `busy`, say): the row is re-read and only ever moved forward."""
    db.session.refresh(delivery)
    metrics.delivery_recorded(tenant.slug, delivery.channel, delivery.purpose, result.status)
    delivery.provider_ref = result.provider_ref or delivery.provider_ref
    if delivery.status != "sending":
        delivery.sent_at = delivery.sent_at or now
        return []
    if result.status == "sent":
        delivery.status, delivery.sent_at, delivery.error = "sent", now, None
    elif result.status == "retry":
        delivery.status = "retry"
        delivery.error = (result.error or "provider asked to retry")[:300]
        delivery.not_before = now + (timedelta(seconds=result.retry_after) if result.retry_after
                                     else _backoff(delivery.attempts))
    else:
        delivery.status = result.status
        delivery.error = (result.error or result.status)[:300]
    delivery.updated_at = now
    if delivery.incident_id:
        outcome = {"sent": "送信しました", "retry": "再試行します", "blocked": "届きません",
                   "failed": "送信できませんでした"}[result.status]
        incidents.add_event(delivery.incident_id, "delivery",
                            f"{CHANNEL_NAMES[delivery.channel]}: {outcome}", now,
                            {"delivery_id": delivery.id, "status": result.status})
    if result.status in ("blocked", "failed"):
        return fall_back(tenant, delivery, now)
    return []


def _person(delivery: Delivery) -> Any:
    if delivery.recipient_type == "resident":
        return db.session.get(Resident, delivery.recipient_id)
    if delivery.recipient_type == "contact":
        return db.session.get(Contact, delivery.recipient_id)
    return None


def _still_needed(delivery: Delivery) -> bool:
    """Is anyone still waiting on this delivery (not answered, incident still open)?"""
    if delivery.check_id is not None:
        check = db.session.get(Check, delivery.check_id)
        if check is not None and check.answered_at is not None:
            return False
    if delivery.incident_id is not None:
        incident = db.session.get(Incident, delivery.incident_id)
        if incident is not None and incident.status != "open":
            return False
    return True


def fall_back(tenant: Tenant, delivery: Delivery, now: datetime) -> list[int]:
    """Try the person's next working channel; a check nobody can deliver fails at once."""
    if not _still_needed(delivery):
        return []
    person = _person(delivery)
    if delivery.channel == "line" and isinstance(person, Resident) and delivery.status == "blocked":
        person.line_blocked = True
    tried = set(db.session.scalars(select(Delivery.channel).where(
        Delivery.purpose == delivery.purpose, Delivery.recipient_type == delivery.recipient_type,
        Delivery.recipient_id == delivery.recipient_id,
        Delivery.check_id.is_(None) if delivery.check_id is None
        else Delivery.check_id == delivery.check_id,
        Delivery.incident_id.is_(None) if delivery.incident_id is None
        else Delivery.incident_id == delivery.incident_id,
        Delivery.broadcast_id.is_(None) if delivery.broadcast_id is None
        else Delivery.broadcast_id == delivery.broadcast_id)))
    choice = None
    if person is not None:
        choice = first_working(tenant, person.channels, person.phone, person.line_user_id,
                               getattr(person, "line_blocked", False), skip=tried)
    if choice is not None:
        channel, address = choice
        # A check's deliveries are keyed by channel; others chain the fallback onto their key.
        key = (delivery.idempotency_key.rsplit(":", 1)[0] + f":{channel}"
               if delivery.purpose == "check" else f"{delivery.idempotency_key}>{channel}")
        row = delivery_row(key=key,
                           purpose=delivery.purpose, recipient_type=delivery.recipient_type,
                           recipient_id=delivery.recipient_id, channel=channel, address=address,
                           body=_rephrase(tenant, delivery, channel), now=now, tenant=tenant,
                           check_id=delivery.check_id, incident_id=delivery.incident_id,
                           round_id=delivery.round_id, broadcast_id=delivery.broadcast_id,
                           digest_id=delivery.digest_id)
        if delivery.check_id and delivery.purpose in ("check", "round"):
            db.session.execute(update(Check).where(Check.id == delivery.check_id)
                               .values(channel=channel))
        return deliveries.insert_deliveries([row])
    if delivery.check_id and delivery.purpose in ("check", "round"):
        failed = db.session.scalars(
            update(Check).where(Check.id == delivery.check_id, Check.status == "sent")
            .values(status="failed").returning(Check.id)
            .execution_options(synchronize_session=False)).all()
        if failed:
            metrics.CHECKS_FAILED.labels(tenant.slug).inc(len(failed))
            incidents.open_incidents(
                list(db.session.scalars(select(Check).where(Check.id.in_(failed)))), now)
    elif delivery.incident_id:
        incidents.add_event(delivery.incident_id, "skip",
                            "ほかに届く連絡手段がありません", now)
    return []


def _rephrase(tenant: Tenant, delivery: Delivery, channel: str) -> str:
    """The same message for another channel (a LINE text does not fit a phone call)."""
    if delivery.purpose == "check":
        return {"line": messages.check_text, "sms": messages.check_sms,
                "voice": messages.check_voice}[channel](tenant.name)
    if delivery.purpose == "reminder":
        return messages.reminder_text(tenant.name, channel)
    if delivery.purpose == "broadcast" and delivery.broadcast_id:
        broadcast = db.session.get(Broadcast, delivery.broadcast_id)
        if broadcast is not None:
            return messages.broadcast_text(tenant.name, broadcast.message, channel)
    if delivery.purpose == "alert" and delivery.recipient_type in ("contact", "resident"):
        incident = db.session.get(Incident, delivery.incident_id)
        resident = db.session.get(Resident, incident.resident_id) if incident else None
        if resident is not None:
            return messages.alert_text(tenant.name, resident.name, channel,
                                       delivery.recipient_type == "resident")
    return delivery.body or ""


def dispatch(tenant: Tenant, batch_key: str) -> list[int]:
    """Send one batch of deliveries; returns ids of fallback deliveries that now need sending."""
    now = utcnow()
    interrupted_at = dict(db.session.execute(
        select(Delivery.id, Delivery.updated_at).where(Delivery.retry_key == batch_key,
                                                       Delivery.error == INTERRUPTED)).all())
    claimed_ids = db.session.scalars(
        update(Delivery).where(Delivery.retry_key == batch_key,
                               Delivery.status.in_(("queued", "retry")))
        .values(status="sending", attempts=Delivery.attempts + 1, updated_at=now)
        .returning(Delivery.id).execution_options(synchronize_session=False)
    ).all()
    db.session.commit()  # the claim is durable before any provider hears of it
    if not claimed_ids:
        return []
    claimed = list(db.session.scalars(select(Delivery).where(Delivery.id.in_(claimed_ids))
                                      .order_by(Delivery.id)))
    check_ids = {d.check_id for d in claimed if d.check_id}
    checks = {c.id: c for c in db.session.scalars(select(Check).where(Check.id.in_(check_ids)))}
    by_id = {d.id: d for d in claimed}
    follow_up: list[int] = []
    for delivery in [d for d in claimed if d.error == INTERRUPTED and d.channel != "line"]:
        sid = _already_sent(tenant, delivery, interrupted_at[delivery.id])
        if sid is not None:
            follow_up += record(tenant, delivery, SendResult(delivery.id, "sent", sid), utcnow())
            claimed.remove(delivery)
    db.session.commit()
    for batch in _batches(tenant, claimed, checks):
        channel = by_id[batch.recipients[0].delivery_id].channel
        for result in _send(tenant, batch, channel):
            follow_up += record(tenant, by_id[result.delivery_id], result, utcnow())
        db.session.commit()
    return follow_up
