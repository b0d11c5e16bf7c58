"""Check policies (見守り設定) and alert chains (通知順序) with their ordered steps."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import UTCDateTime, utcnow

STEP_TARGETS = ("resident", "contacts", "group_leader", "staff")
DEFAULT_RESPONSE_WINDOW_MINUTES = 23 * 60


class AlertChain(TenantScoped, db.Model):
    """Who is told, in which order, when a check goes unanswered (通知順序)."""

    __tablename__ = "alert_chains"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    steps: Mapped[list[AlertStep]] = relationship(
        back_populates="chain", order_by="AlertStep.position", cascade="all, delete-orphan"
    )


class AlertStep(TenantScoped, db.Model):
    """One step: `after_minutes` past the end of the response window, reach `target`."""

    __tablename__ = "alert_steps"
    __table_args__ = (UniqueConstraint("chain_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(
        ForeignKey("alert_chains.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    after_minutes: Mapped[int]
    target: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int | None]
    channel: Mapped[str | None] = mapped_column(String(16))

    chain: Mapped[AlertChain] = relationship(back_populates="steps")


class CheckPolicy(TenantScoped, db.Model):
    """When checks go out (an RFC 5545 RRULE in the tenant's zone) and how long to wait (見守り設定)."""

    __tablename__ = "check_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[dict] = mapped_column(JSON)
    rrule: Mapped[str] = mapped_column(Text)
    starts_on: Mapped[date] = mapped_column(Date)
    reminder_after_minutes: Mapped[int | None]
    response_window_minutes: Mapped[int] = mapped_column(default=DEFAULT_RESPONSE_WINDOW_MINUTES)
    alert_chain_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_chains.id", ondelete="RESTRICT"), index=True
    )
    voice_retries: Mapped[int] = mapped_column(default=2)
    voice_retry_minutes: Mapped[int] = mapped_column(default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    alert_chain: Mapped[AlertChain | None] = relationship()
