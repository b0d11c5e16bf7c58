"""Check policies (見守り設定) and alert chains (通知順序): creating, changing, previewing them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mimamori.extensions import db
from tenants.errors import Conflict, ValidationFailed
from tenants.models import AlertChain, AlertStep, CheckPolicy, Resident, Tenant
from tenants.schedules import next_occurrences, to_rrule
from tenants.services.lookup import delete_unless_used, get_or_404
from tenants.tenancy import bound_tenant_id
from tenants.types import utcnow

POLICY_FIELDS = ("name", "reminder_after_minutes", "response_window_minutes", "alert_chain_id",
                 "voice_retries", "voice_retry_minutes")


def bound_tenant() -> Tenant:
    tenant = db.session.get(Tenant, bound_tenant_id())
    assert tenant is not None
    return tenant


def get_policy(policy_id: int) -> CheckPolicy:
    return get_or_404(CheckPolicy, policy_id, "check policy")


def get_chain(chain_id: int) -> AlertChain:
    return get_or_404(AlertChain, chain_id, "alert chain")


def preview(schedule: dict[str, Any], starts_on: date | None, count: int,
            now: datetime | None = None) -> list[str]:
    """The next `count` occurrences as ISO instants in the tenant's zone."""
    tenant = bound_tenant()
    zone = ZoneInfo(tenant.timezone)
    now = now or utcnow()
    rule = to_rrule(schedule)
    instants = next_occurrences(rule, starts_on or tenant.local_today(now), zone, now, count)
    return [i.astimezone(zone).isoformat() for i in instants]


def with_next_occurrences(policy: CheckPolicy, count: int = 5) -> CheckPolicy:
    policy.next_occurrences = preview(policy.schedule, policy.starts_on, count)  # type: ignore[attr-defined]
    return policy


def _unique_name(model: Any, name: str, own_id: int | None) -> None:
    clash = db.session.scalar(select(model.id).where(model.name == name, model.id != own_id))
    if clash is not None:
        raise Conflict("name taken", {"name": ["This name is already used."]})


def _apply_policy(policy: CheckPolicy, data: dict[str, Any], schedule: dict[str, Any] | None) -> None:
    if data.get("alert_chain_id") is not None and db.session.get(
        AlertChain, data["alert_chain_id"]
    ) is None:
        raise ValidationFailed("unknown alert chain",
                               {"alert_chain_id": [f"No alert chain {data['alert_chain_id']}."]})
    if "name" in data:
        _unique_name(CheckPolicy, data["name"], policy.id)
    for field in POLICY_FIELDS:
        if field in data:
            setattr(policy, field, data[field])
    if schedule is not None:
        policy.schedule = schedule
        policy.rrule = to_rrule(schedule)
    if data.get("starts_on"):
        policy.starts_on = data["starts_on"]
    reminder, window = policy.reminder_after_minutes, policy.response_window_minutes
    if reminder and window and reminder >= window:
        raise ValidationFailed("reminder after window", {
            "reminder_after_minutes": ["The reminder must go out before the response window ends."]
        })


def create_policy(data: dict[str, Any], schedule: dict[str, Any]) -> CheckPolicy:
    policy = CheckPolicy(starts_on=data.get("starts_on") or bound_tenant().local_today())
    _apply_policy(policy, data, schedule)
    db.session.add(policy)
    db.session.flush()
    return policy


def update_policy(policy: CheckPolicy, data: dict[str, Any],
                  schedule: dict[str, Any] | None) -> CheckPolicy:
    _apply_policy(policy, data, schedule)
    db.session.flush()
    return policy


def delete_policy(policy: CheckPolicy) -> None:
    """Refused while residents follow it: deleting would silently stop their checks."""
    delete_unless_used(policy, Resident.check_policy_id,
                       "residents follow this policy; move them to another policy first")


def _set_steps(chain: AlertChain, steps: list[dict[str, Any]]) -> None:
    chain.steps.clear()
    db.session.flush()
    for position, step in enumerate(steps):
        chain.steps.append(AlertStep(position=position, after_minutes=step["after_minutes"],
                                     target=step["target"], priority=step.get("priority"),
                                     channel=step.get("channel")))


def create_chain(data: dict[str, Any]) -> AlertChain:
    _unique_name(AlertChain, data["name"], None)
    chain = AlertChain(name=data["name"])
    db.session.add(chain)
    _set_steps(chain, data["steps"])
    db.session.flush()
    return chain


def update_chain(chain: AlertChain, data: dict[str, Any]) -> AlertChain:
    if "name" in data:
        _unique_name(AlertChain, data["name"], chain.id)
        chain.name = data["name"]
    if "steps" in data:
        _set_steps(chain, data["steps"])
    db.session.flush()
    return chain


def delete_chain(chain: AlertChain) -> None:
    delete_unless_used(chain, CheckPolicy.alert_chain_id,
                       "check policies use this alert chain; change them first")
