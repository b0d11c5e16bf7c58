"""The operator console (運営者): tenants across the platform, without residents' personal data."""

from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import select

from admin_ui.session import operator_blueprint
from mimamori.extensions import db
from tenants.models import Tenant

blueprint = operator_blueprint("console", __name__)


@blueprint.get("/")
def tenants() -> Any:
    rows = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    return render_template("console/tenants.html", tenants=rows)
