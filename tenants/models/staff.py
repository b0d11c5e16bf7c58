"""Staff users (operators, tenant admins, staff, viewers, commissioners) and API tokens."""

from __future__ import annotations

from datetime import datetime, time

from flask_login import UserMixin
from sqlalchemy import ForeignKey, SmallInteger, String, Time, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from mimamori.extensions import db
from tenants.tenancy import TenantScoped
from tenants.types import EncryptedText, UTCDateTime, utcnow

OPERATOR = "operator"
TENANT_ROLES = ("admin", "staff", "viewer", "commissioner")
ROLES = (OPERATOR, *TENANT_ROLES)


class User(UserMixin, db.Model):
    """A person who signs in. Looked up by e-mail before any tenant is known, so not scoped."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText)
    locale: Mapped[str | None] = mapped_column(String(8))
    # Set when an admin resets the password: the user chooses a new one at next sign-in.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # How a `staff` alert step reaches this person (当番) when they are on duty.
    phone: Mapped[str | None] = mapped_column(String(20))
    line_user_id: Mapped[str | None] = mapped_column(String(64))
    # On duty when the tenant has no rota; with a rota, the rota decides.
    on_duty: Mapped[bool] = mapped_column(default=False, server_default=false())

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    @property
    def is_active(self) -> bool:  # Flask-Login: deactivated users cannot sign in
        return self.active

    def get_id(self) -> str:
        """The session key; it changes with the password, so a reset signs out every session."""
        return f"{self.id}.{self.password_hash[-12:]}"


class StaffSession(db.Model):
    """One signed-in browser. The cookie carries a random token; only its SHA-256 is kept here,
    so signing out (or a password change) ends the session on the server, not just in the cookie.
    Looked up before any tenant is known, so not scoped."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DutySlot(TenantScoped, db.Model):
    """One line of the weekly rota (当番表): on `weekday` from `starts_at` to `ends_at` in the
    tenant's zone, `user_id` is on duty. An end at or before the start runs past midnight."""

    __tablename__ = "duty_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 Monday … 6 Sunday
    starts_at: Mapped[time] = mapped_column(Time)
    ends_at: Mapped[time] = mapped_column(Time)


class ResidentAssignment(db.Model):
    """A welfare commissioner's or case worker's login sees only the residents assigned to it."""

    __tablename__ = "resident_assignments"
    __table_args__ = (UniqueConstraint("user_id", "resident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"),
                                             index=True)


class ApiToken(db.Model):
    """A bearer token, stored only as its SHA-256; `tenant_id` null means an operator token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
