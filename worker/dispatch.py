"""Sending batches of deliveries through the channel adapters, side by side, and recording what
happened.

A delivery is claimed (`queued`/`retry` → `sending`, with `attempted_at`) and committed before
the provider call and updated after it, so a crash in between leaves a `sending` row that the
clock re-queues as interrupted. LINE recognises the stored X-Line-Retry-Key of such a batch and
does not deliver it twice. Twilio has no such key: an SMS or call that may have reached it (the job
was interrupted, or Twilio failed with a 5xx or never answered) is *unconfirmed*, and is looked up
at Twilio, from its `attempted_at`, before it is tried again. A look-up Twilio cannot answer is
retried with backoff LOOKUP_ATTEMPTS times; then it is sent again, visibly: a possible second
message is better than a check nobody received.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, case, func, insert, select, update

from mimamori import metrics
from mimamori.extensions import db
from tenants import messages
from tenants.models import (
    Broadcast,
    Check,
    Contact,
    Delivery,
    GroupDigest,
    Incident,
    IncidentEvent,
    Resident,
    Tenant,
)
from tenants.services import deliveries, incidents
from tenants.services.deliveries import delivery_row, first_working
from tenants.types import utcnow
from worker.channels import (
    Batch,
    ChannelAdapter,
    ChannelCredentials,
    FindsSent,
    LookupUnavailable,
    Message,
    Recipient,
    SendResult,
)
from worker.queues import JOB_TIMEOUT
from worker.ratelimit import TokenBucket

log = logging.getLogger(__name__)

INLINE_RETRY_LIMIT_SECONDS = 10
INLINE_ATTEMPTS = 3
CHANNEL_NAMES = incidents.CHANNEL_NAMES
# An SMS or call whose `error` starts so may have been sent: it is looked up before a resend.
UNCONFIRMED = "unconfirmed: "
INTERRUPTED = UNCONFIRMED + "the job stopped between the provider call and its record"
LOOKUP_ATTEMPTS = 5
# Twilio's clock and ours agree within seconds; a job lives at most JOB_TIMEOUT after its claim.
LOOKUP_MARGIN = timedelta(minutes=2)
LOOKUP_SPAN = timedelta(seconds=JOB_TIMEOUT) + LOOKUP_MARGIN
LOOKUPS_PARALLEL = 8
# Requests one job has in flight: providers are slow rather than busy, so a job sends its batches
# side by side, each within the tenant's rate; their results are stored this many at a time.
MAX_PARALLEL = 32
RECORD_EVERY = 100
PROVIDERS = {"sms": "twilio_messages", "voice": "twilio_calls"}


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


@dataclass(frozen=True)
class Sender:
    """A channel's adapter with the tenant's credentials and rate buckets, made in the job's app
    context so that batches can be sent from other threads."""

    channel: str
    adapter: ChannelAdapter
    credentials: ChannelCredentials
    buckets: dict[str, TokenBucket] = field(default_factory=dict)  # none in the sandbox

    def pace(self, recipients: int) -> None:
        """Wait for this tenant's share of the provider's rate, across every worker process."""
        if not self.buckets:
            return
        # LINE sends a batch in one request (a push for one person); Twilio one per recipient.
        if self.channel == "line":
            provider, requests = ("line" if recipients > 1 else "line_push"), 1
        else:
            provider, requests = PROVIDERS[self.channel], recipients
        wait = self.buckets[provider].acquire(requests)
        if wait > 0:
            time.sleep(wait)


def sender_for(tenant: Tenant, channel: str) -> Sender:
    from worker.queues import redis_connection
    from worker.ratelimit import DEFAULT_LIMITS, bucket_for, twilio_calls

    buckets = {}
    if not tenant.is_sandbox:
        limits = {**DEFAULT_LIMITS, "twilio_calls": twilio_calls(tenant.twilio_calls_per_second)}
        providers = ("line", "line_push") if channel == "line" else (PROVIDERS[channel],)
        buckets = {p: bucket_for(redis_connection(), tenant.id, p, limits) for p in providers}
        if channel != "line" and tenant.twilio_configured:
            from worker.sms import twilio_client

            # Made (and warmed) before any request reserves its place in the provider's pace.
            twilio_client(current_app.config["TWILIO_API_BASE_URL"], tenant.twilio_account_sid or "",
                          tenant.twilio_auth_token or "")
    return Sender(channel, adapter_for(tenant, channel), credentials(tenant), buckets)


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


def _send(sender: Sender, batch: Batch, attempted_at: datetime) -> list[SendResult]:
    """Send one batch, retrying in place (only those not yet accepted) when the provider asks
    for a short wait; a longer wait is left to the clock. A create that may have reached Twilio
    is looked up before it is made again."""
    final: dict[int, SendResult] = {}
    pending = batch
    for attempt in range(INLINE_ATTEMPTS):
        sender.pace(len(pending.recipients))
        results = metrics.timed_send(sender.adapter, sender.credentials, pending)
        final.update((r.delivery_id, r) for r in results)
        retry = {r.delivery_id: r for r in results if r.status == "retry"}
        if not retry or attempt == INLINE_ATTEMPTS - 1:
            break
        wait = max((r.retry_after or 2 ** attempt) for r in retry.values())
        if wait > INLINE_RETRY_LIMIT_SECONDS:
            break
        time.sleep(wait)
        for recipient in pending.recipients:
            result = retry.get(recipient.delivery_id)
            if result is None or not result.uncertain:
                continue
            try:
                sid = _find_sent(sender, recipient, batch.message, attempted_at, ())
            except LookupUnavailable:
                del retry[recipient.delivery_id]  # left unconfirmed, for the clock to look up
                continue
            if sid is not None:
                final[recipient.delivery_id] = SendResult(recipient.delivery_id, "sent", sid)
                del retry[recipient.delivery_id]
        if not retry:
            break
        pending = Batch(message=batch.message, retry_key=batch.retry_key,
                        recipients=[r for r in pending.recipients if r.delivery_id in retry])
    return list(final.values())


def _find_sent(sender: Sender, recipient: Recipient, message: Message, attempted_at: datetime,
               taken: Iterable[str]) -> str | None:
    """What Twilio made of an attempt that began at `attempted_at`, per Twilio (None: nothing)."""
    adapter = sender.adapter
    if not isinstance(adapter, FindsSent):
        return None  # the sandbox sends nothing, so it has nothing to find
    return adapter.find_sent(sender.credentials, recipient, message,
                             attempted_at - LOOKUP_MARGIN, attempted_at + LOOKUP_SPAN,
                             frozenset(taken))


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
        delivery.error = ((UNCONFIRMED if result.uncertain else "")
                          + (result.error or "provider asked to retry"))[:300]
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


def record_results(tenant: Tenant, claimed: dict[int, Delivery], results: list[SendResult],
                   now: datetime) -> list[int]:
    """Store results: those the provider accepted in a few statements, however many; the others
    row by row (`record`), with their fallbacks."""
    sent = {r.delivery_id: r.provider_ref for r in results if r.status == "sent"}
    # The job read plain rows (see `dispatch`): a row to record one by one is loaded here.
    follow_up = [i for r in results if r.status != "sent"
                 for i in record(tenant, db.session.get(Delivery, r.delivery_id), r, now)]
    if not sent:
        return follow_up
    # The rows come back from the UPDATE: the job's objects were expired by earlier commits.
    moved = db.session.execute(
        update(Delivery).where(Delivery.id.in_(sent), Delivery.status == "sending")
        .values(status="sent", sent_at=now, error=None, lookups=0, updated_at=now)
        .returning(Delivery.id, Delivery.channel, Delivery.purpose, Delivery.incident_id)
        .execution_options(synchronize_session=False)).all()
    # Each row's provider reference; a row a status callback moved on first gets only that.
    # A LINE multicast gives its 500 recipients one request id: one statement per reference
    # shared like that, the rest (Twilio's, one per message) in one executemany.
    by_ref: dict[str | None, list[int]] = defaultdict(list)
    for delivery_id, ref in sent.items():
        by_ref[ref].append(delivery_id)
    table = Delivery.__table__
    single = [{"row_id": ids[0], "ref": ref} for ref, ids in by_ref.items() if len(ids) == 1]
    for ref, ids in by_ref.items():
        if len(ids) > 1:
            db.session.execute(
                update(table).where(table.c.id.in_(ids))
                .values(provider_ref=func.coalesce(ref, table.c.provider_ref),
                        sent_at=func.coalesce(table.c.sent_at, now)))
    if single:
        db.session.execute(
            update(table).where(table.c.id == bindparam("row_id"))
            .values(provider_ref=func.coalesce(bindparam("ref"), table.c.provider_ref),
                    sent_at=func.coalesce(table.c.sent_at, now)), single)
    events = [{"tenant_id": tenant.id, "incident_id": row.incident_id, "kind": "delivery",
               "detail": f"{CHANNEL_NAMES[row.channel]}: 送信しました", "at": now,
               "data": {"delivery_id": row.id, "status": "sent"}}
              for row in moved if row.incident_id]
    if events:
        db.session.execute(insert(IncidentEvent), events)
    late = set(sent) - {row.id for row in moved}
    counted = Counter([*((row.channel, row.purpose) for row in moved),
                       *((claimed[i].channel, claimed[i].purpose) for i in late)])
    for (channel, purpose), count in counted.items():
        metrics.delivery_recorded(tenant.slug, channel, purpose, "sent", count)
    return follow_up


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


def dispatch(tenant: Tenant, batch_keys: str | Sequence[str]) -> list[int]:
    """Send batches of deliveries side by side; returns ids of fallback deliveries that now need
    sending."""
    keys = [batch_keys] if isinstance(batch_keys, str) else list(batch_keys)
    now = utcnow()
    claimed_ids = db.session.scalars(
        update(Delivery).where(Delivery.retry_key.in_(keys),
                               Delivery.status.in_(("queued", "retry")))
        # An unconfirmed row keeps the instant of the attempt it may have made: it is searched
        # from there, and gets a new one only when it is sent again.
        .values(status="sending", attempts=Delivery.attempts + 1, updated_at=now,
                attempted_at=case((_unconfirmed(), Delivery.attempted_at), else_=now))
        .returning(Delivery.id).execution_options(synchronize_session=False)
    ).all()
    db.session.commit()  # the claim is durable before any provider hears of it
    if not claimed_ids:
        return []
    # Read as plain rows: the rows are written by statements, and thousands of ORM objects would
    # be expired and reloaded at every commit of the results.
    claimed = _rows(Delivery, Delivery.id.in_(claimed_ids))
    checks = {c.id: c for c in _rows(Check, Check.id.in_({d.check_id for d in claimed if d.check_id}))}
    by_id = {d.id: d for d in claimed}
    senders = {channel: sender_for(tenant, channel) for channel in {d.channel for d in claimed}}
    follow_up: list[int] = []
    attempted = {d.id: d.attempted_at or now for d in claimed}
    unconfirmed = [d for d in claimed if d.channel != "line"
                   and (d.error or "").startswith(UNCONFIRMED)]
    if unconfirmed:
        settled, follow_up = _settle_unconfirmed(tenant, unconfirmed, senders, by_id)
        claimed = [d for d in claimed if d.id not in settled]
        # Those sent again are sent from now: their new attempt is stored before it is made.
        resent = [d.id for d in unconfirmed if d.id not in settled]
        if resent:
            attempted.update(dict.fromkeys(resent, utcnow()))
            db.session.execute(update(Delivery).where(Delivery.id.in_(resent))
                               .values(attempted_at=attempted[resent[0]])
                               .execution_options(synchronize_session=False))
        db.session.commit()
        if not claimed:
            return follow_up
    work = _interleaved([(senders[by_id[b.recipients[0].delivery_id].channel], b)
                         for b in _batches(tenant, claimed, checks)])
    if len(work) == 1:
        sender, batch = work[0]
        results = _send(sender, batch, attempted[batch.recipients[0].delivery_id])
        follow_up += record_results(tenant, by_id, results, utcnow())
        db.session.commit()
        return follow_up
    # Threads only talk to providers (never to the session); results are recorded here, a
    # hundred or so at a time, while the threads go on sending.
    done: list[SendResult] = []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(work))) as pool:
        futures = [pool.submit(_send, sender, batch, attempted[batch.recipients[0].delivery_id])
                   for sender, batch in work]
        for number, future in enumerate(as_completed(futures), 1):
            done += future.result()
            if len(done) >= RECORD_EVERY or number == len(futures):
                follow_up += record_results(tenant, by_id, done, utcnow())
                db.session.commit()
                done = []
    return follow_up


def _unconfirmed() -> Any:
    return (Delivery.channel != "line") & Delivery.error.startswith(UNCONFIRMED)


def _settle_unconfirmed(tenant: Tenant, rows: list[Any], senders: dict[str, Sender],
                        by_id: dict[int, Any]) -> tuple[set[int], list[int]]:
    """Look up at Twilio the SMS and calls that may have been sent; record those found, put
    back those Twilio could not say anything about, with a wait. Returns the ids settled so
    (not to be sent now) and the fallbacks recorded; the rest are to be sent again."""
    # A row from before attempts were recorded is searched from its creation.
    since = {d.id: d.attempted_at or d.created_at for d in rows}
    taken = set(db.session.scalars(select(Delivery.provider_ref).where(
        Delivery.address.in_({d.address for d in rows}), Delivery.provider_ref.is_not(None),
        Delivery.channel.in_(("sms", "voice")), Delivery.id.not_in(list(since)),
        Delivery.created_at >= min(since.values()) - timedelta(days=1))))
    by_person: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for delivery in rows:
        by_person[(delivery.channel, delivery.address or "")].append(delivery)
    down = threading.Event()  # after one failed look-up, Twilio is not asked again this job

    def look_up(deliveries: list[Any]) -> list[tuple[int, str | None, bool]]:
        found: list[tuple[int, str | None, bool]] = []
        mine: set[str] = set()
        # In the order they were sent: the oldest call in a window belongs to the first.
        for delivery in sorted(deliveries, key=lambda d: d.id):
            if down.is_set():
                found.append((delivery.id, None, False))
                continue
            sender = senders[delivery.channel]
            try:
                sid = _find_sent(sender, Recipient(delivery.id, delivery.address or ""),
                                 Message(text=delivery.body or ""), since[delivery.id],
                                 taken | mine)
            except LookupUnavailable as exc:
                log.warning("unconfirmed %s not looked up: %s", delivery.channel, exc)
                down.set()
                found.append((delivery.id, None, False))
                continue
            if sid is not None:
                mine.add(sid)
            found.append((delivery.id, sid, True))
        return found

    with ThreadPoolExecutor(max_workers=min(LOOKUPS_PARALLEL, len(by_person))) as pool:
        answers = [a for part in pool.map(look_up, by_person.values()) for a in part]
    now = utcnow()
    sent = [SendResult(i, "sent", sid) for i, sid, _ in answers if sid is not None]
    follow_up = record_results(tenant, by_id, sent, now) if sent else []
    settled = {r.delivery_id for r in sent}
    for delivery_id, _, answered in answers:
        if not answered and _lookup_failed(tenant, by_id[delivery_id], now):
            settled.add(delivery_id)
    return settled, follow_up


def _lookup_failed(tenant: Tenant, row: Any, now: datetime) -> bool:
    """Twilio could not say whether this SMS or call went out: wait and ask again, or, after
    LOOKUP_ATTEMPTS look-ups, send it again (returns False) and say so where staff look."""
    lookups = row.lookups + 1
    if lookups < LOOKUP_ATTEMPTS:
        db.session.execute(
            update(Delivery).where(Delivery.id == row.id, Delivery.status == "sending")
            .values(status="retry", lookups=lookups, not_before=now + _backoff(lookups),
                    updated_at=now,
                    error=f"{UNCONFIRMED}Twilio could not say whether it was sent "
                          f"(look-up {lookups} of {LOOKUP_ATTEMPTS})")
            .execution_options(synchronize_session=False))
        return True
    db.session.execute(
        update(Delivery).where(Delivery.id == row.id)
        .values(lookups=0, updated_at=now,
                error=f"sent again: Twilio could not say whether it was sent after "
                      f"{LOOKUP_ATTEMPTS} look-ups")
        .execution_options(synchronize_session=False))
    log.warning("unconfirmed %s sent again after %s failed look-ups", row.channel, LOOKUP_ATTEMPTS,
                extra={"delivery_id": row.id})
    metrics.delivery_recorded(tenant.slug, row.channel, row.purpose, "resent_unconfirmed")
    if row.incident_id:
        incidents.add_event(row.incident_id, "delivery",
                            f"{CHANNEL_NAMES[row.channel]}: 送信済みか確認できないため、もう一度送ります",
                            now, {"delivery_id": row.id, "status": "resent_unconfirmed"})
    return False


def _rows(model: type[Delivery] | type[Check], where: Any) -> list[Any]:
    """Every column of the matching rows, by attribute name, in id order; nothing to track."""
    columns = [getattr(model, attribute.key) for attribute in model.__mapper__.column_attrs]
    return list(db.session.execute(select(*columns).where(where).order_by(model.id)).all())


def _interleaved(work: list[tuple[Sender, Batch]]) -> list[tuple[Sender, Batch]]:
    """Channels taking turns, so a paced channel's batches are not all behind another's."""
    by_channel: dict[str, list[tuple[Sender, Batch]]] = defaultdict(list)
    for sender, batch in work:
        by_channel[sender.channel].append((sender, batch))
    return [w for turn in zip_longest(*by_channel.values()) for w in turn if w is not None]
