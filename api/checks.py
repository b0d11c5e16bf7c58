"""Checks (安否確認) and incidents (未確認案件), read-only until the engine writes them."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import require_tenant
from api.pagination import paginate
from mimamori.extensions import db
from schemas.checks import CheckListArgs, CheckOut, IncidentListArgs, IncidentOut
from tenants.errors import NotFound
from tenants.models import Check, Incident

checks = Blueprint("checks", __name__, url_prefix="/api/v1/checks",
                   description="Safety checks (安否確認) sent to residents.")
incidents = Blueprint("incidents", __name__, url_prefix="/api/v1/incidents",
                      description="Incidents (未確認案件): unanswered checks under escalation.")
for _blueprint in (checks, incidents):
    _blueprint.before_request(require_tenant)
blueprints = [checks, incidents]


def _get(model: Any, object_id: int) -> Any:
    found = db.session.get(model, object_id)
    if found is None:
        raise NotFound(f"no {model.__tablename__[:-1]} {object_id}")
    return found


@checks.route("")
class Checks(MethodView):
    @checks.arguments(CheckListArgs, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        statement = select(Check)
        if args.get("resident_id") is not None:
            statement = statement.where(Check.resident_id == args["resident_id"])
        if args.get("status"):
            statement = statement.where(Check.status == args["status"])
        return paginate(statement, Check, CheckOut())


@checks.route("/<int:check_id>")
class CheckById(MethodView):
    @checks.response(200, CheckOut)
    def get(self, check_id: int) -> Any:
        return _get(Check, check_id)


@incidents.route("")
class Incidents(MethodView):
    @incidents.arguments(IncidentListArgs, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        statement = select(Incident)
        if args.get("status"):
            statement = statement.where(Incident.status == args["status"])
        if args.get("resident_id") is not None:
            statement = statement.where(Incident.resident_id == args["resident_id"])
        return paginate(statement, Incident, IncidentOut())


@incidents.route("/<int:incident_id>")
class IncidentById(MethodView):
    @incidents.response(200, IncidentOut)
    def get(self, incident_id: int) -> Any:
        return _get(Incident, incident_id)
