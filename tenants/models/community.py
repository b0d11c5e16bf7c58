"""Community-group features (つながり): the daily digest to a group, and broadcasts from staff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import UTCDateTime, utcnow


class GroupDigest(TenantScoped, db.Model):
    """One group's "who has not answered yet" for one check occurrence, claimed once.

    The unique (group, occurrence) key is the claim: however many clocks run, one digest is
    composed and sent. `unanswered` lists the checks it named ({"resident_id", "check_id"}), so a
    leader's 「見に行きます」 acts on exactly those residents.
    """

    __tablename__ = "group_digests"
    __table_args__ = (UniqueConstraint("group_id", "occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    occurrence: Mapped[str] = mapped_column(String(40))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unanswered: Mapped[list] = mapped_column(JSON, default=list)
    recipients: Mapped[int] = mapped_column(default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Broadcast(TenantScoped, db.Model):
    """An information message (event notice, evacuation information) from staff to a group or
    the whole tenant, on each person's own first working channel; nobody is asked to answer."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    targeted: Mapped[int] = mapped_column(default=0)
    # Residents with no channel that can reach them (no phone, LINE not linked or blocked).
    unreachable: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
