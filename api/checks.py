"""Checks (安否確認) and incidents (未確認案件): reading them, and the actions staff take."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, current_principal, require_tenant
from api.pagination import paginate
from mimamori.extensions import db
from schemas.checks import (
    CheckListArgs,
    CheckOut,
    CheckPage,
    IncidentListArgs,
    IncidentOut,
    IncidentPage,
)
from schemas.rounds import AcknowledgeIn, NoteIn, ResolveIn
from tenants.errors import Conflict
from tenants.models import Check, Incident
from tenants.services import checks as check_service
from tenants.services import incidents as incident_service
from tenants.services.lookup import get_or_404
from tenants.types import utcnow

checks = Blueprint("checks", __name__, url_prefix="/api/v1/checks",
                   description="Safety checks (安否確認) sent to residents.")
incidents = Blueprint("incidents", __name__, url_prefix="/api/v1/incidents",
                      description="Incidents (未確認案件): unanswered checks under escalation.")
for _blueprint in (checks, incidents):
    _blueprint.before_request(require_tenant)
blueprints = [checks, incidents]


@checks.route("")
class Checks(MethodView):
    @checks.arguments(CheckListArgs, location="query")
    @checks.response(200, CheckPage)
    def get(self, args: dict[str, Any]) -> Any:
        statement = select(Check)
        if args.get("resident_id") is not None:
            statement = statement.where(Check.resident_id == args["resident_id"])
        if args.get("status"):
            statement = statement.where(Check.status == args["status"])
        return paginate(statement, Check, args)


@checks.route("/<id:check_id>")
class CheckById(MethodView):
    @checks.response(200, CheckOut)
    def get(self, check_id: int) -> Any:
        return get_or_404(Check, check_id, "check")


@incidents.route("")
class Incidents(MethodView):
    @incidents.arguments(IncidentListArgs, location="query")
    @incidents.response(200, IncidentPage)
    def get(self, args: dict[str, Any]) -> Any:
        statement = select(Incident)
        if args.get("status"):
            statement = statement.where(Incident.status == args["status"])
        if args.get("resident_id") is not None:
            statement = statement.where(Incident.resident_id == args["resident_id"])
        return paginate(statement, Incident, args)


@incidents.route("/<id:incident_id>")
class IncidentById(MethodView):
    @incidents.response(200, IncidentOut)
    def get(self, incident_id: int) -> Any:
        return incident_service.get_incident(incident_id)


@incidents.route("/<id:incident_id>/acknowledge")
class AcknowledgeIncident(MethodView):
    @incidents.arguments(AcknowledgeIn)
    @incidents.response(200, IncidentOut)
    def post(self, data: dict[str, Any], incident_id: int) -> Any:
        """Someone will go and see: the alert chain stops; the incident waits for its outcome."""
        incident = incident_service.get_incident(incident_id)
        if not incident_service.acknowledge(incident, data.get("by") or "職員", utcnow(),
                                            data.get("note")):
            raise Conflict(f"the incident is already {incident.status}",
                           {"status": [f"Already {incident.status}."]})
        audit("incident.acknowledge", incident)
        db.session.commit()
        return incident


@incidents.route("/<id:incident_id>/resolve")
class ResolveIncident(MethodView):
    @incidents.arguments(ResolveIn)
    @incidents.response(200, IncidentOut)
    def post(self, data: dict[str, Any], incident_id: int) -> Any:
        """Record the outcome (safe, hospitalised, deceased, unreachable, false_alarm, other)."""
        incident = incident_service.get_incident(incident_id)
        incident_service.resolve(incident, data["outcome"], data.get("note"),
                                 current_principal().user_id, utcnow())
        audit("incident.resolve", incident, detail={"outcome": data["outcome"]})
        db.session.commit()
        return incident


@incidents.route("/<id:incident_id>/notes")
class IncidentNotes(MethodView):
    @incidents.arguments(NoteIn)
    @incidents.response(201, IncidentOut)
    def post(self, data: dict[str, Any], incident_id: int) -> Any:
        """Add a note to the incident's timeline (calls made, visits, what was found)."""
        incident = incident_service.get_incident(incident_id)
        incident_service.add_note(incident, data["note"], utcnow())
        db.session.commit()
        db.session.refresh(incident)
        return incident


@checks.route("/<id:check_id>/answer")
class AnswerCheck(MethodView):
    @checks.arguments(NoteIn(partial=True))
    @checks.response(200, CheckOut)
    def post(self, data: dict[str, Any], check_id: int) -> Any:
        """Record an answer staff received another way (the resident phoned the office)."""
        check = get_or_404(Check, check_id, "check")
        now = utcnow()
        if not check_service.answer(check, "staff", now):
            raise Conflict("the check is already answered", {"status": ["Already answered."]})
        incident = db.session.scalar(select(Incident).where(Incident.check_id == check.id))
        if incident is not None and data.get("note"):
            incident_service.add_note(incident, data["note"], now)
        audit("check.answer", check)
        db.session.commit()
        return check
