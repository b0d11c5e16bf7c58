"""Broadcasts: information from staff (event notices, evacuation information) to a group or the
whole tenant, each person on their own first working channel, with delivery counts.

Unlike a round nothing is asked: the LINE message has no button, the call only speaks. A delivery
that fails falls back to the person's next channel as every delivery does; the counts follow
each person's latest delivery, so a LINE failure answered by an SMS counts once, as sent.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mimamori.extensions import db
from tenants import messages
from tenants.batching import chunks
from tenants.errors import ValidationFailed
from tenants.models import Broadcast, Delivery, Group, GroupMember, Resident, Tenant
from tenants.services import deliveries
from tenants.services.deliveries import delivery_row, first_working
from tenants.services.lookup import get_or_404

# Each person's latest delivery in one of these counts as...
SENT = ("sent", "delivered", "read", "answered")
PENDING = ("queued", "retry", "sending")
FAILED = ("failed", "blocked", "busy", "no_answer", "canceled")


def get_broadcast(broadcast_id: int) -> Broadcast:
    return get_or_404(Broadcast, broadcast_id, "broadcast")


def send_broadcast(tenant: Tenant, message: str, group_id: int | None, now: datetime,
                   user_id: int | None = None) -> tuple[Broadcast, list[str]]:
    """Write one delivery per resident reached (paused residents too: this is information, not
    a check); returns the broadcast and the batch keys to queue once committed."""
    if group_id is not None and db.session.get(Group, group_id) is None:
        raise ValidationFailed("unknown group", {"group_id": [f"No group {group_id}."]})
    broadcast = Broadcast(group_id=group_id, message=message, created_by_user_id=user_id,
                          created_at=now)
    db.session.add(broadcast)
    db.session.flush()
    people = select(Resident.id, Resident.channels, Resident.phone, Resident.line_user_id,
                    Resident.line_blocked).order_by(Resident.id)
    if group_id is not None:
        people = people.where(Resident.id.in_(
            select(GroupMember.resident_id).where(GroupMember.group_id == group_id)))
    texts = {channel: messages.broadcast_text(tenant.name, message, channel)
             for channel in ("line", "sms", "voice")}
    rows, targeted = [], 0
    for resident_id, channels, phone, line_user_id, blocked in db.session.execute(people):
        targeted += 1
        choice = first_working(tenant, channels, phone, line_user_id, blocked)
        if choice is None:
            continue
        channel, address = choice
        rows.append(delivery_row(key=f"broadcast:{broadcast.id}:{resident_id}", purpose="broadcast",
                                 recipient_type="resident", recipient_id=resident_id,
                                 channel=channel, address=address, body=texts[channel], now=now,
                                 tenant=tenant, broadcast_id=broadcast.id))
    broadcast.targeted, broadcast.unreachable = targeted, targeted - len(rows)
    return broadcast, deliveries.insert_many_deliveries(rows, now)


def counts(broadcast: Broadcast) -> dict[str, Any]:
    """Delivery counts by each person's latest delivery: sent, pending, failed, by channel."""
    latest = (select(func.max(Delivery.id)).where(Delivery.broadcast_id == broadcast.id)
              .group_by(Delivery.recipient_id))
    rows = [row for part in chunks(list(db.session.scalars(latest)))
            for row in db.session.execute(select(Delivery.status, Delivery.channel)
                                          .where(Delivery.id.in_(part)))]
    statuses = Counter(status for status, _ in rows)
    return {
        "id": broadcast.id, "group_id": broadcast.group_id, "message": broadcast.message,
        "created_at": broadcast.created_at, "targeted": broadcast.targeted,
        "unreachable": broadcast.unreachable,
        "sent": sum(statuses[s] for s in SENT),
        "pending": sum(statuses[s] for s in PENDING),
        "failed": sum(statuses[s] for s in FAILED),
        "statuses": dict(statuses),
        "channels": dict(Counter(channel for _, channel in rows)),
    }
