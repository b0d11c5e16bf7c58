"""Immediate safety rounds (一斉安否確認) with a live tally."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, current_principal, require_tenant
from api.pagination import next_cursor
from mimamori.extensions import db
from schemas.common import PageArgs
from schemas.rounds import BreakdownOut, EscalationOut, RoundIn, RoundOut, RoundPage
from tenants.models import Round
from tenants.services import rounds as service
from tenants.services.policies import bound_tenant
from tenants.types import utcnow

blp = Blueprint("rounds", __name__, url_prefix="/api/v1/rounds",
                description="Immediate one-off safety rounds (一斉安否確認), e.g. after an earthquake.")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Rounds(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, RoundPage)
    def get(self, args: dict[str, Any]) -> Any:
        """Rounds, newest first, each with its tally."""
        statement = select(Round)
        if args["cursor"] is not None:
            statement = statement.where(Round.id < args["cursor"])
        found = db.session.scalars(statement.order_by(Round.id.desc()).limit(args["limit"] + 1)).all()
        page = found[:args["limit"]]
        return {"items": [service.tally(r) for r in page],
                "next": next_cursor(page[-1].id) if len(found) > len(page) else None}

    @blp.arguments(RoundIn)
    @blp.response(201, RoundOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Send a check to every resident of a group (or the whole tenant) at once."""
        from worker.clock import enqueue_or_leave_to_clock

        now = utcnow()
        tenant = bound_tenant()
        round_, planned = service.start_round(
            tenant, data["message"], data.get("group_id"), now,
            user_id=current_principal().user_id, window_minutes=data["response_window_minutes"])
        audit("round.start", round_, detail={"targeted": round_.targeted})
        db.session.commit()
        enqueue_or_leave_to_clock(tenant.id, planned.batch_keys, f"round {round_.id}")
        return service.tally(round_)


@blp.route("/<id:round_id>")
class RoundById(MethodView):
    @blp.response(200, RoundOut)
    def get(self, round_id: int) -> Any:
        """The live tally: targeted, answered, pending, missed, failed."""
        return service.tally(service.get_round(round_id))


@blp.route("/<id:round_id>/breakdown")
class RoundBreakdown(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, BreakdownOut)
    def get(self, args: dict[str, Any], round_id: int) -> Any:
        """The tally per group and per area, and who has not answered yet with their
        vulnerability notes (a page of them; `?cursor=` for the next)."""
        round_ = service.get_round(round_id)
        after, limit = args["cursor"], args["limit"]
        groups, areas, without_area = service.by_group(round_)
        waiting = service.unanswered(round_, after, limit)
        page = waiting[:limit]
        return {"round": service.tally(round_), "groups": groups, "areas": areas,
                "without_area": without_area, "unanswered": page,
                "next": next_cursor(page[-1]["check_id"]) if len(waiting) > limit else None}


@blp.route("/<id:round_id>/escalate")
class EscalateRound(MethodView):
    @blp.response(200, EscalationOut)
    def post(self, round_id: int) -> Any:
        """Start the normal alert chain for everyone who has not answered the round: an incident
        each, on the resident's own policy's chain (the clock fires its steps). Again: nothing new."""
        round_ = service.get_round(round_id)
        escalation = service.escalate(round_, utcnow())
        audit("round.escalate", round_, detail={"opened": escalation["opened"]})
        db.session.commit()
        return escalation
