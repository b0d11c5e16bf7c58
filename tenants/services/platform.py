"""The platform as operators (運営者) see it: provisioning tenants, usage and failures across tenants.

Operators see no resident's personal data: what is here are counts, and failures name the tenant,
channel and purpose with the provider's error, anything like a phone number or LINE id masked.
Every query that crosses tenants says so with `all_tenants()`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from mimamori.extensions import db
from tenants.models import Delivery, Resident, Tenant
from tenants.models.residents import CHANNELS
from tenants.services.audit import record
from tenants.services.deliveries import PENDING
from tenants.services.tenants import create_tenant, update_tenant
from tenants.tenancy import all_tenants

# Months of usage are counted in Japan time, as the providers' invoices to Japanese tenants are.
PLATFORM_ZONE = ZoneInfo("Asia/Tokyo")
FAILED = ("failed", "blocked")
# Per provider, the fields an operator types; all but a from-number are secrets.
CREDENTIAL_FIELDS = {
    "line": ("channel_secret", "channel_access_token"),
    "twilio": ("account_sid", "auth_token", "from_number"),
}
SECRET_FIELDS = {"channel_secret", "channel_access_token", "account_sid", "auth_token"}
_STORED = {
    "line": {"channel_secret": "line_channel_secret",
             "channel_access_token": "line_channel_access_token"},
    "twilio": {"account_sid": "twilio_account_sid", "auth_token": "twilio_auth_token",
               "from_number": "twilio_from_number"},
}


# Provisioning ---------------------------------------------------------------------------------

def credential_changes(tenant: Tenant | None, entered: dict[str, dict[str, str | None]]
                       ) -> tuple[dict[str, dict[str, str]], list[str]]:
    """What to store from what an operator typed: a blank field keeps the stored value.

    Returns the credentials per provider that had anything typed (blanks filled from the stored
    ones, for the schema to check as a whole) and the providers whose secrets were replaced.
    """
    credentials: dict[str, dict[str, str]] = {}
    rotated: list[str] = []
    for provider, fields_ in CREDENTIAL_FIELDS.items():
        typed = {name: value.strip() for name, value in (entered.get(provider) or {}).items()
                 if name in fields_ and value and value.strip()}
        if not typed:
            continue
        stored = {name: getattr(tenant, column) for name, column in _STORED[provider].items()
                  if tenant is not None and getattr(tenant, column)}
        credentials[provider] = {**stored, **typed}
        if tenant is not None and SECRET_FIELDS & set(typed):
            rotated.append(provider)
    return credentials, rotated


def provision_tenant(data: dict[str, Any], actor_id: int) -> Tenant:
    tenant = create_tenant(data)
    record("tenant.create", tenant_id=tenant.id, target=tenant, user_id=actor_id,
           detail={"line": tenant.line_configured, "twilio": tenant.twilio_configured})
    return tenant


def change_tenant(tenant: Tenant, data: dict[str, Any], rotated: list[str], actor_id: int) -> Tenant:
    """Update a tenant; replaced credentials are recorded as a rotation of their own."""
    update_tenant(tenant, data)
    record("tenant.update", tenant_id=tenant.id, target=tenant, user_id=actor_id,
           detail={"fields": sorted(data)})
    if rotated:
        record("tenant.credentials_rotate", tenant_id=tenant.id, target=tenant, user_id=actor_id,
               detail={"providers": sorted(rotated)})
    db.session.flush()
    return tenant


def record_connection_test(tenant: Tenant, provider: str, ok: bool, actor_id: int) -> None:
    record("tenant.connection_test", tenant_id=tenant.id, target=tenant, user_id=actor_id,
           detail={"provider": provider, "ok": ok})


@dataclass
class TenantRow:
    tenant: Tenant
    residents: int


def tenant_overview() -> list[TenantRow]:
    """Every tenant with its number of residents (a count, nobody's details)."""
    tenants = db.session.scalars(select(Tenant).order_by(Tenant.name, Tenant.id)).all()
    with all_tenants():
        counts = dict(db.session.execute(
            select(Resident.tenant_id, func.count()).group_by(Resident.tenant_id)).all())
    return [TenantRow(t, counts.get(t.id, 0)) for t in tenants]


# Usage ----------------------------------------------------------------------------------------

_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
            "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_segments(text: str | None) -> int:
    """How many SMS segments a text is billed as (at least one).

    GSM-7 text: 160 septets in one segment, else 153 per segment (extended characters count two).
    Anything else, Japanese included, goes as UCS-2: 70 UTF-16 units in one, else 67 per segment.
    """
    text = text or ""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in text):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first instant of `month` and of the next, in Japan time."""
    start = month.replace(day=1)
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return (datetime.combine(start, time(0), tzinfo=PLATFORM_ZONE),
            datetime.combine(following, time(0), tzinfo=PLATFORM_ZONE))


@dataclass
class ChannelUsage:
    """One tenant's deliveries on one channel in a month."""

    channel: str
    by_status: dict[str, int] = field(default_factory=dict)
    accepted: int = 0  # the provider took it: a message sent or a call placed
    segments: int = 0  # SMS only: what Twilio bills

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def failed(self) -> int:
        return sum(self.by_status.get(status, 0) for status in FAILED)

    @property
    def pending(self) -> int:
        return sum(self.by_status.get(status, 0) for status in (*PENDING, "sending"))


@dataclass
class TenantUsage:
    tenant: Tenant
    channels: dict[str, ChannelUsage]

    @property
    def total(self) -> int:
        return sum(c.total for c in self.channels.values())


def usage(month: date) -> list[TenantUsage]:
    """Deliveries per tenant and channel created in `month`: by status, accepted, SMS segments."""
    start, end = month_bounds(month)
    in_month = (Delivery.created_at >= start, Delivery.created_at < end)
    rows = {t.id: TenantUsage(t, {c: ChannelUsage(c) for c in CHANNELS})
            for t in db.session.scalars(select(Tenant).order_by(Tenant.name, Tenant.id))}
    with all_tenants():
        counts = db.session.execute(
            select(Delivery.tenant_id, Delivery.channel, Delivery.status, func.count(),
                   func.count(Delivery.sent_at))
            .where(*in_month).group_by(Delivery.tenant_id, Delivery.channel, Delivery.status)).all()
        # Checks share a few texts per tenant: count segments once per distinct text.
        texts = db.session.execute(
            select(Delivery.tenant_id, Delivery.body, func.count())
            .where(*in_month, Delivery.channel == "sms", Delivery.sent_at.is_not(None))
            .group_by(Delivery.tenant_id, Delivery.body)).all()
    for tenant_id, channel, status, count, accepted in counts:
        if tenant_id not in rows:
            continue
        usage_row = rows[tenant_id].channels.setdefault(channel, ChannelUsage(channel))
        usage_row.by_status[status] = count
        usage_row.accepted += accepted
    for tenant_id, body, count in texts:
        if tenant_id in rows:
            rows[tenant_id].channels["sms"].segments += sms_segments(body) * count
    return list(rows.values())


# Failures -------------------------------------------------------------------------------------

# Phone numbers, LINE user ids and e-mail addresses a provider's error text might repeat.
_PERSONAL = re.compile(r"\+?\d[\d\s()-]{6,}\d|U[0-9a-f]{32}|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def redact(text: str | None) -> str:
    return _PERSONAL.sub("***", text or "")


@dataclass
class Failure:
    """A delivery that could not be made, without who it was for or what it said."""

    at: datetime
    tenant_name: str
    tenant_slug: str
    channel: str
    purpose: str
    status: str
    error: str


def recent_failures(limit: int = 50) -> list[Failure]:
    with all_tenants():
        rows = db.session.execute(
            select(Delivery.updated_at, Tenant.name, Tenant.slug, Delivery.channel,
                   Delivery.purpose, Delivery.status, Delivery.error)
            .join(Tenant, Tenant.id == Delivery.tenant_id)
            .where(Delivery.status.in_(FAILED))
            .order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit)).all()
    return [Failure(at, name, slug, channel, purpose, status, redact(error))
            for at, name, slug, channel, purpose, status, error in rows]


def failures_since(since: datetime) -> int:
    with all_tenants():
        return db.session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.status.in_(FAILED), Delivery.updated_at >= since)) or 0
