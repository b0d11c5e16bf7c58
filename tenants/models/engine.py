"""The engine's records: checks (安否確認), deliveries, incidents (未確認案件), rounds, webhooks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import UTCDateTime, utcnow

CHECK_STATUSES = ("sent", "answered", "missed", "failed")
INCIDENT_STATUSES = ("open", "acknowledged", "resolved")
OUTCOMES = ("safe", "hospitalised", "deceased", "unreachable", "false_alarm", "other")


class Round(TenantScoped, db.Model):
    """An immediate one-off safety round (一斉安否確認) to a group or the whole tenant."""

    __tablename__ = "rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    targeted: Mapped[int] = mapped_column(default=0)
    response_window_minutes: Mapped[int] = mapped_column(default=180)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Check(TenantScoped, db.Model):
    """One safety check of one resident for one occurrence of their schedule, or one round.

    `occurrence` is the idempotency key: the scheduled instant in UTC for scheduled checks,
    `round:<id>` for rounds, so a second planner can never create the same check twice.
    """

    __tablename__ = "checks"
    __table_args__ = (
        UniqueConstraint("resident_id", "occurrence"),
        Index("ix_checks_tenant_status_scheduled", "tenant_id", "status", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("check_policies.id", ondelete="SET NULL")
    )
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("rounds.id", ondelete="CASCADE"), index=True
    )
    occurrence: Mapped[str] = mapped_column(String(40))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="sent")
    channel: Mapped[str | None] = mapped_column(String(16))
    reminder_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_via: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(TenantScoped, db.Model):
    """One attempt to reach one person on one channel; written before the provider call."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_deliveries_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int | None] = mapped_column(
        ForeignKey("checks.id", ondelete="CASCADE"), index=True
    )
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    digest_id: Mapped[int | None] = mapped_column(
        ForeignKey("group_digests.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    recipient_type: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[int | None]
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    idempotency_key: Mapped[str] = mapped_column(String(120))
    # The batch a job sends together; for LINE also the X-Line-Retry-Key of its one request.
    retry_key: Mapped[str | None] = mapped_column(String(36), index=True)
    provider_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the clock last put this delivery on a queue (engine time), for reconciliation.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a job last handed this delivery to its provider (wall clock, written by the claim and
    # never by onupdate): an interrupted SMS or call is looked up at Twilio from this instant.
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Look-ups of an unconfirmed SMS or call that Twilio could not answer, in a row.
    lookups: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Incident(TenantScoped, db.Model):
    """An unanswered check under escalation (未確認案件), until staff record its outcome."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("check_id"),
        Index("ix_incidents_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"))
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    escalated: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_step_position: Mapped[int | None]
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_note: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[IncidentEvent]] = relationship(
        order_by="IncidentEvent.at, IncidentEvent.id", cascade="all, delete-orphan"
    )


class IncidentEvent(TenantScoped, db.Model):
    """One line of an incident's timeline: a step, delivery, skip, answer, acknowledgement, note."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict | None] = mapped_column(JSON)


class WebhookEvent(TenantScoped, db.Model):
    """A provider event already processed; its id makes redeliveries have no second effect."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundMessage(TenantScoped, db.Model):
    """Anything a resident or contact wrote that was not an answer, kept for staff."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)



