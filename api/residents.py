"""Residents (利用者) with their contacts and pauses."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import or_, select

from api.auth import audit, require_tenant
from api.pagination import paginate
from mimamori.extensions import db
from schemas.residents import (
    ContactIn,
    ContactOut,
    PauseIn,
    ResidentIn,
    ResidentListArgs,
    ResidentOut,
    ResidentPage,
)
from tenants.models import GroupMember, Resident
from tenants.services import residents as service
from tenants.types import utcnow

blp = Blueprint("residents", __name__, url_prefix="/api/v1/residents",
                description="Residents (利用者), their contacts (緊急連絡先) and pauses.")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Residents(MethodView):
    @blp.arguments(ResidentListArgs, location="query")
    @blp.response(200, ResidentPage)
    def get(self, args: dict[str, Any]) -> Any:
        """List residents; `q` matches name or kana, `group_id` and `check_policy_id` filter."""
        statement = select(Resident)
        if args.get("q"):
            needle = args["q"].strip()
            statement = statement.where(or_(Resident.name.contains(needle, autoescape=True),
                                            Resident.name_kana.contains(needle, autoescape=True)))
        if args.get("group_id") is not None:
            statement = statement.where(Resident.id.in_(
                select(GroupMember.resident_id).where(GroupMember.group_id == args["group_id"])))
        if args.get("check_policy_id") is not None:
            statement = statement.where(Resident.check_policy_id == args["check_policy_id"])
        return paginate(statement, Resident, args)

    @blp.arguments(ResidentIn)
    @blp.response(201, ResidentOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a resident, with contacts inline; phones are stored as E.164."""
        resident = service.create_resident(data)
        audit("resident.create", resident)
        db.session.commit()
        return resident


@blp.route("/<id:resident_id>")
class ResidentById(MethodView):
    @blp.response(200, ResidentOut)
    def get(self, resident_id: int) -> Any:
        return service.get_resident(resident_id)

    @blp.arguments(ResidentIn(partial=True))
    @blp.response(200, ResidentOut)
    def patch(self, data: dict[str, Any], resident_id: int) -> Any:
        """Change a resident; `contacts` and `group_ids`, when given, replace the lists."""
        resident = service.update_resident(service.get_resident(resident_id), data)
        audit("resident.update", resident, detail={"fields": sorted(data)})
        db.session.commit()
        return resident

    @blp.response(204)
    def delete(self, resident_id: int) -> None:
        """Remove a resident and everything recorded about them."""
        resident = service.get_resident(resident_id)
        audit("resident.delete", resident)
        service.delete_resident(resident)
        db.session.commit()


@blp.route("/<id:resident_id>/link-code")
class LinkCode(MethodView):
    @blp.response(201, ResidentOut)
    def post(self, resident_id: int) -> Any:
        """Issue a new LINE link code (the old one stops working), valid for 14 days.

        Answers the resident with the new `link_code` and `link_code_expires_at`; 409 when the
        resident is already linked to LINE.
        """
        resident = service.issue_link_code(service.get_resident(resident_id), utcnow())
        audit("resident.link_code", resident)
        db.session.commit()
        return resident


@blp.route("/<id:resident_id>/contacts")
class Contacts(MethodView):
    @blp.response(200, ContactOut(many=True))
    def get(self, resident_id: int) -> Any:
        return service.get_resident(resident_id).contacts

    @blp.arguments(ContactIn)
    @blp.response(201, ContactOut)
    def post(self, data: dict[str, Any], resident_id: int) -> Any:
        contact = service.add_contact(service.get_resident(resident_id), data)
        audit("contact.create", contact)
        db.session.commit()
        return contact


@blp.route("/<id:resident_id>/contacts/<id:contact_id>")
class ContactById(MethodView):
    @blp.response(200, ContactOut)
    def get(self, resident_id: int, contact_id: int) -> Any:
        return service.get_contact(service.get_resident(resident_id), contact_id)

    @blp.arguments(ContactIn(partial=True))
    @blp.response(200, ContactOut)
    def patch(self, data: dict[str, Any], resident_id: int, contact_id: int) -> Any:
        contact = service.get_contact(service.get_resident(resident_id), contact_id)
        service.update_contact(contact, data)
        audit("contact.update", contact, detail={"fields": sorted(data)})
        db.session.commit()
        return contact

    @blp.response(204)
    def delete(self, resident_id: int, contact_id: int) -> None:
        contact = service.get_contact(service.get_resident(resident_id), contact_id)
        audit("contact.delete", contact)
        service.delete_contact(contact)
        db.session.commit()


@blp.route("/<id:resident_id>/pause")
class Pause(MethodView):
    @blp.arguments(PauseIn)
    @blp.response(200, ResidentOut)
    def post(self, data: dict[str, Any], resident_id: int) -> Any:
        """Pause checks from `from` (default today) until `until`, the day checks resume.

        Answers the resident, whose `paused_until` and `pauses` show the new pause.
        """
        resident = service.get_resident(resident_id)
        pause = service.pause_resident(resident, data["until"], data.get("from_"),
                                       data.get("reason"))
        audit("resident.pause", resident, detail={"from": str(pause.starts_on),
                                                  "until": str(pause.until)})
        db.session.commit()
        return resident

    @blp.response(204)
    def delete(self, resident_id: int) -> None:
        """Resume checks now."""
        resident = service.get_resident(resident_id)
        service.resume_resident(resident)
        audit("resident.resume", resident)
        db.session.commit()
