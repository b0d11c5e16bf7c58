"""Groups (グループ・つながり): community groups and areas, with a leader."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import UTCDateTime, utcnow

GROUP_KINDS = ("community", "area")
DEFAULT_DIGEST_AFTER_MINUTES = 23 * 60


class Group(TenantScoped, db.Model):
    """A set of residents; the leader is a member resident or an outside person (民生委員 etc.)."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="community")
    leader_resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL")
    )
    leader_name: Mapped[str | None] = mapped_column(String(200))
    leader_phone: Mapped[str | None] = mapped_column(String(20))
    leader_line_user_id: Mapped[str | None] = mapped_column(String(64))
    # The つながり digest: members who opted in and the leader hear, on LINE, who has not
    # answered a check this long after it went out (the seed service: 23 hours).
    digest_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    digest_after_minutes: Mapped[int] = mapped_column(default=DEFAULT_DIGEST_AFTER_MINUTES,
                                                      server_default=str(DEFAULT_DIGEST_AFTER_MINUTES))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[GroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan"
    )


class GroupMember(TenantScoped, db.Model):
    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "resident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    receives_digest: Mapped[bool] = mapped_column(default=False, server_default=false())

    group: Mapped[Group] = relationship(back_populates="members")
    resident: Mapped[Resident] = relationship(back_populates="memberships")  # noqa: F821
