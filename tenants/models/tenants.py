"""Tenants (自治体・社協): one city or social-welfare council, its zone, quiet hours and channels."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from mimamori.extensions import db
from tenants.types import EncryptedText, UTCDateTime, utcnow

TENANT_KINDS = ("municipality", "welfare_council")


class Tenant(db.Model):
    """A customer organisation. Not itself tenant-scoped: it is the scope."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="municipality")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    quiet_hours_start: Mapped[time] = mapped_column(Time, default=time(21, 0))
    quiet_hours_end: Mapped[time] = mapped_column(Time, default=time(8, 0))
    max_residents: Mapped[int | None]
    twilio_calls_per_second: Mapped[int] = mapped_column(default=1)
    # On-duty staff reached by a `staff` alert step: [{"name", "phone", "line_user_id"}].
    on_duty: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    # Earthquake rounds (気象庁防災情報XML): JIS municipality codes (5 digits) and seismic
    # intensity areas (細分区域, 3 digits) the tenant covers, the JMA intensity that starts a
    # round, how long to wait for corrections, and how long aftershocks join the same round.
    quake_city_codes: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    quake_area_codes: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    quake_min_intensity: Mapped[str] = mapped_column(String(2), default="5-", server_default="5-")
    quake_hold_minutes: Mapped[int] = mapped_column(default=10, server_default="10")
    quake_fold_minutes: Mapped[int] = mapped_column(default=60, server_default="60")

    line_channel_secret: Mapped[str | None] = mapped_column(EncryptedText)
    line_channel_access_token: Mapped[str | None] = mapped_column(EncryptedText)
    twilio_account_sid: Mapped[str | None] = mapped_column(String(64))
    twilio_auth_token: Mapped[str | None] = mapped_column(EncryptedText)
    twilio_from_number: Mapped[str | None] = mapped_column(String(20))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_today(self, now: datetime | None = None) -> date:
        return (now or utcnow()).astimezone(self.zone).date()

    @property
    def line_configured(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)

    @property
    def is_sandbox(self) -> bool:
        """With no provider credentials at all, messages go to the sandbox channel."""
        return not (self.line_configured or self.twilio_configured)
