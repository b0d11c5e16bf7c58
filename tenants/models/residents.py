"""Residents (利用者), their pauses and their emergency contacts (緊急連絡先)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import UTCDateTime, utcnow

CHANNELS = ("line", "sms", "voice")
RELATIONS = ("relative", "case_worker", "welfare_commissioner", "neighbour", "staff", "other")
# How long a LINE link code (連携コード) works after staff issue it; a new one can be issued.
LINK_CODE_VALIDITY = timedelta(days=14)


def link_code_expiry() -> datetime:
    return utcnow() + LINK_CODE_VALIDITY


class Resident(TenantScoped, db.Model):
    """A person living alone who receives safety checks (利用者)."""

    __tablename__ = "residents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        UniqueConstraint("tenant_id", "line_user_id"),
        UniqueConstraint("tenant_id", "link_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    line_user_id: Mapped[str | None] = mapped_column(String(64))
    line_blocked: Mapped[bool] = mapped_column(default=False)
    channels: Mapped[list] = mapped_column(JSON, default=list)
    check_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("check_policies.id", ondelete="SET NULL"), index=True
    )
    link_code: Mapped[str] = mapped_column(String(6))
    # The code links a LINE user until this instant, once: null when used (or never usable).
    link_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime,
                                                                  default=link_code_expiry)
    # Checks start with the first occurrence at or after this instant, so a resident registered
    # (or moved to another policy) at 11:00 is not sent the 09:00 check of that morning.
    policy_assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    address: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="resident",
        order_by="Contact.priority, Contact.id",
        cascade="all, delete-orphan",
    )
    pauses: Mapped[list[ResidentPause]] = relationship(
        back_populates="resident",
        order_by="ResidentPause.starts_on",
        cascade="all, delete-orphan",
    )
    memberships: Mapped[list[GroupMember]] = relationship(  # noqa: F821
        back_populates="resident", cascade="all, delete-orphan"
    )
    check_policy: Mapped[CheckPolicy | None] = relationship()  # noqa: F821
    tenant: Mapped[Tenant] = relationship()  # noqa: F821

    @property
    def group_ids(self) -> list[int]:
        return sorted(m.group_id for m in self.memberships)

    def pause_on(self, day: date) -> ResidentPause | None:
        return next((p for p in self.pauses if p.starts_on <= day < p.until), None)

    @property
    def paused_until(self) -> date | None:
        """The day checks resume, when paused today in the tenant's zone."""
        pause = self.pause_on(self.tenant.local_today())
        return pause.until if pause else None

    @property
    def line_linked(self) -> bool:
        return self.line_user_id is not None


class LinkAttempt(TenantScoped, db.Model):
    """Link codes tried in the current window, by one LINE user or (subject "*") the whole tenant.

    The window starts at the first try and the count resets once it is over; codes that linked
    are taken off again, so what stays counted are the wrong ones.
    """

    __tablename__ = "link_attempts"
    __table_args__ = (UniqueConstraint("tenant_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)


class ResidentPause(TenantScoped, db.Model):
    """Days on which a resident gets no checks (travel, hospital), in the tenant's zone.

    The pause covers `starts_on` up to, not including, `until`: `until` is the day checks resume.
    """

    __tablename__ = "resident_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    starts_on: Mapped[date] = mapped_column(Date)
    until: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    resident: Mapped[Resident] = relationship(back_populates="pauses")


class Contact(TenantScoped, db.Model):
    """An emergency contact (緊急連絡先): relative, case worker, welfare commissioner, neighbour."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    relation: Mapped[str] = mapped_column(String(32), default="relative")
    relation_note: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    line_user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    channels: Mapped[list] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    resident: Mapped[Resident] = relationship(back_populates="contacts")
