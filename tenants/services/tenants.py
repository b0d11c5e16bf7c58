"""Provisioning tenants (operators only): create, update, rotate credentials, issue tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mimamori.extensions import db
from tenants.errors import Conflict, ValidationFailed
from tenants.models import Tenant
from tenants.services import earthquakes
from tenants.services.lookup import get_or_404


def get_tenant(tenant_id: int) -> Tenant:
    return get_or_404(Tenant, tenant_id, "tenant")


def tenant_by_slug(slug: str) -> Tenant | None:
    return db.session.scalar(select(Tenant).where(Tenant.slug == slug))


def _apply(tenant: Tenant, data: dict[str, Any]) -> None:
    for field in ("name", "kind", "timezone", "max_residents", "twilio_calls_per_second",
                  "on_duty", "active"):
        if field in data:
            setattr(tenant, field, data[field])
    if data.get("earthquake"):
        earthquakes.apply_settings(tenant, data["earthquake"])
    if data.get("quiet_hours"):
        tenant.quiet_hours_start = data["quiet_hours"]["start"]
        tenant.quiet_hours_end = data["quiet_hours"]["end"]
    if "line" in data:
        line = data["line"] or {}
        tenant.line_channel_secret = line.get("channel_secret")
        tenant.line_channel_access_token = line.get("channel_access_token")
    if "twilio" in data:
        twilio = data["twilio"] or {}
        tenant.twilio_account_sid = twilio.get("account_sid")
        tenant.twilio_auth_token = twilio.get("auth_token")
        tenant.twilio_from_number = twilio.get("from_number")


def _sandbox_after(tenant: Tenant | None, data: dict[str, Any]) -> bool:
    """Whether the tenant is a sandbox once `data` is applied: no LINE and no Twilio."""
    line = bool(data["line"]) if "line" in data else bool(tenant and tenant.line_configured)
    twilio = bool(data["twilio"]) if "twilio" in data else bool(tenant and tenant.twilio_configured)
    return not (line or twilio)


def _check_sandbox(tenant: Tenant | None, data: dict[str, Any]) -> None:
    """A tenant never becomes a sandbox (checks recorded, never sent) by accident.

    Removing the last credentials of a tenant that sends needs `"sandbox": true`; a `sandbox`
    given must match the credentials the tenant ends up with.
    """
    becomes = _sandbox_after(tenant, data)
    wanted = data.get("sandbox")
    if wanted is None and becomes and tenant is not None and not tenant.is_sandbox:
        raise ValidationFailed("removing every credential would stop all sending", {"sandbox": [
            "Without LINE and Twilio credentials the tenant becomes a sandbox: checks are "
            "recorded and never sent. Send \"sandbox\": true to confirm."]})
    if wanted is not None and wanted != becomes:
        message = ("A sandbox has no LINE or Twilio credentials: send \"line\": null and "
                   "\"twilio\": null too." if wanted else
                   "A tenant without LINE or Twilio credentials can only be a sandbox: give "
                   "\"line\" or \"twilio\" credentials.")
        raise ValidationFailed("sandbox does not match the credentials", {"sandbox": [message]})


def create_tenant(data: dict[str, Any]) -> Tenant:
    if tenant_by_slug(data["slug"]) is not None:
        raise Conflict("slug taken", {"slug": ["A tenant with this slug exists."]})
    _check_sandbox(None, data)
    tenant = Tenant(slug=data["slug"])
    _apply(tenant, data)
    db.session.add(tenant)
    db.session.flush()
    return tenant


def update_tenant(tenant: Tenant, data: dict[str, Any]) -> Tenant:
    _check_sandbox(tenant, data)
    _apply(tenant, data)
    db.session.flush()
    return tenant
