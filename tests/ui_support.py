"""Shared steps of the resident and incident page tests: policies, missed checks, assignments."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import ResidentAssignment, User
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fixtures.api import TenantHandle
from tests.fixtures.engine import Engine, tokyo

DAY1 = "2030-04-01"  # far enough ahead that residents created now precede every occurrence


def daily_policy(tenant: TenantHandle, **overrides: Any) -> dict[str, Any]:
    """毎日9時 (reminder 30 min, window 60 min) with the standard chain, from DAY1."""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    return created(tenant.api.post("/api/v1/check-policies", policy_body(
        chain["id"], starts_on=DAY1, **overrides)))


def resident(tenant: TenantHandle, **fields: Any) -> dict[str, Any]:
    return created(tenant.api.post("/api/v1/residents", resident_body(**fields)))


def miss_a_check(engine: Engine, day: str = DAY1) -> None:
    """The 09:00 check goes out and nobody answers until the window closes at 10:00."""
    engine.run(tokyo(f"{day} 09:00"))
    engine.run(tokyo(f"{day} 10:00"))


def open_incidents(tenant: TenantHandle) -> list[dict[str, Any]]:
    return tenant.api.get("/api/v1/incidents?status=open").get_json()["items"]


def assign(app: Flask, email: str, *resident_ids: int) -> None:
    """Give a commissioner's login its residents, as an admin would."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        for resident_id in resident_ids:
            db.session.add(ResidentAssignment(tenant_id=user.tenant_id, user_id=user.id,
                                              resident_id=resident_id))
        db.session.commit()
