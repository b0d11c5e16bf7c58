"""Broadcasts: staff send information (event notices, evacuation information) to a group or the
whole tenant, each person on their own first working channel, and watch the delivery counts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, current_principal, require_tenant
from api.pagination import next_cursor
from mimamori.extensions import db
from schemas.broadcasts import BroadcastIn, BroadcastOut, BroadcastPage
from schemas.common import PageArgs
from tenants.models import Broadcast
from tenants.services import broadcasts as service
from tenants.services.policies import bound_tenant
from tenants.types import utcnow

blp = Blueprint("broadcasts", __name__, url_prefix="/api/v1/broadcasts",
                description="Information messages to a group or the whole tenant (no answer asked).")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Broadcasts(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, BroadcastPage)
    def get(self, args: dict[str, Any]) -> Any:
        """Broadcasts, newest first, each with its delivery counts."""
        before, limit = args["cursor"], args["limit"]
        statement = select(Broadcast)
        if before is not None:
            statement = statement.where(Broadcast.id < before)
        found = db.session.scalars(statement.order_by(Broadcast.id.desc()).limit(limit + 1)).all()
        page = found[:limit]
        return {"items": [service.counts(b) for b in page],
                "next": next_cursor(page[-1].id) if len(found) > limit else None}

    @blp.arguments(BroadcastIn)
    @blp.response(201, BroadcastOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Send `message` to every member of `group_id` (null: every resident of the tenant)."""
        from worker.clock import enqueue_or_leave_to_clock

        tenant = bound_tenant()
        broadcast, batch_keys = service.send_broadcast(
            tenant, data["message"], data.get("group_id"), utcnow(),
            user_id=current_principal().user_id)
        audit("broadcast.send", broadcast, detail={"targeted": broadcast.targeted})
        db.session.commit()
        enqueue_or_leave_to_clock(tenant.id, batch_keys, f"broadcast {broadcast.id}")
        return service.counts(broadcast)


@blp.route("/<id:broadcast_id>")
class BroadcastById(MethodView):
    @blp.response(200, BroadcastOut)
    def get(self, broadcast_id: int) -> Any:
        """Delivery counts: targeted, sent, pending, failed, unreachable, by status and channel."""
        return service.counts(service.get_broadcast(broadcast_id))
