"""Immediate safety rounds (一斉安否確認) with a live tally."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from redis import RedisError
from sqlalchemy import select

from api.auth import audit, current_principal, require_tenant
from mimamori.extensions import db
from schemas.rounds import RoundIn, RoundOut
from tenants.models import Round
from tenants.services import rounds as service
from tenants.services.policies import bound_tenant
from tenants.types import utcnow

log = logging.getLogger(__name__)

blp = Blueprint("rounds", __name__, url_prefix="/api/v1/rounds",
                description="Immediate one-off safety rounds (一斉安否確認), e.g. after an earthquake.")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Rounds(MethodView):
    def get(self) -> Any:
        """Rounds, newest first, each with its tally."""
        found = db.session.scalars(select(Round).order_by(Round.id.desc()).limit(100))
        return {"items": RoundOut(many=True).dump([service.tally(r) for r in found]), "next": None}

    @blp.arguments(RoundIn)
    @blp.response(201, RoundOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Send a check to every resident of a group (or the whole tenant) at once."""
        from worker.clock import enqueue_batches

        now = utcnow()
        tenant = bound_tenant()
        round_, planned = service.start_round(
            tenant, data["message"], data.get("group_id"), now,
            user_id=current_principal().user_id, window_minutes=data["response_window_minutes"])
        audit("round.start", round_, detail={"targeted": round_.targeted})
        db.session.commit()
        try:
            enqueue_batches(tenant.id, planned.batch_keys)
        except RedisError:
            # The deliveries are in the database; the next tick queues them.
            log.warning("round %s: queue unavailable, the clock will send it", round_.id)
        return service.tally(round_)


@blp.route("/<int:round_id>")
class RoundById(MethodView):
    @blp.response(200, RoundOut)
    def get(self, round_id: int) -> Any:
        """The live tally: targeted, answered, pending, missed, failed."""
        return service.tally(service.get_round(round_id))
