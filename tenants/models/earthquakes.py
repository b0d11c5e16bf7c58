"""Earthquake reports from the JMA (気象庁防災情報XML) and the rounds they start per tenant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import UTCDateTime, utcnow

TRIGGER_STATUSES = ("pending", "cancelled", "fired", "folded")


class JmaReport(db.Model):
    """A JMA document already received (platform-wide, not a tenant's): its identity makes a
    report delivered twice have no second effect. Holds no personal data."""

    __tablename__ = "jma_reports"
    __table_args__ = (
        UniqueConstraint("event_id", "title", "info_type", "serial", "report_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(64))
    info_type: Mapped[str] = mapped_column(String(8))
    serial: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8))
    report_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_intensity: Mapped[str | None] = mapped_column(String(2))
    result: Mapped[str] = mapped_column(String(32), default="received")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EarthquakeTrigger(TenantScoped, db.Model):
    """One earthquake (JMA EventID) strong enough in one tenant's area to start a round.

    `pending` until `fire_at` (report time + the tenant's hold), when the clock starts the round
    (`fired`) — or joins the round an earlier quake started within the fold window (`folded`).
    A correction below the threshold or a JMA cancellation (取消) before then makes it
    `cancelled`. `max_intensity` is the JMA code (1, 2, 3, 4, 5-, 5+, 6-, 6+, 7) in the tenant's
    areas as the latest report says.
    """

    __tablename__ = "earthquake_triggers"
    __table_args__ = (UniqueConstraint("tenant_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    max_intensity: Mapped[str] = mapped_column(String(2))
    area_name: Mapped[str] = mapped_column(String(100))
    matched_codes: Mapped[list] = mapped_column(JSON, default=list)
    report_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_report_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fire_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="SET NULL"))
    folded_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("earthquake_triggers.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
