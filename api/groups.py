"""Groups (グループ・つながり)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, require_tenant
from api.pagination import next_cursor, paginate
from mimamori.extensions import db
from schemas.common import PageArgs
from schemas.groups import DigestPage, GroupIn, GroupOut, GroupPage
from tenants.models import Group, GroupDigest
from tenants.services import digests
from tenants.services import groups as service

blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups",
                description="Community groups and areas (グループ・つながり).")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Groups(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, GroupPage)
    def get(self, args: dict[str, Any]) -> Any:
        return paginate(select(Group), Group, args)

    @blp.arguments(GroupIn)
    @blp.response(201, GroupOut)
    def post(self, data: dict[str, Any]) -> Any:
        group = service.create_group(data)
        audit("group.create", group)
        db.session.commit()
        return group


@blp.route("/<id:group_id>")
class GroupById(MethodView):
    @blp.response(200, GroupOut)
    def get(self, group_id: int) -> Any:
        return service.get_group(group_id)

    @blp.arguments(GroupIn(partial=True))
    @blp.response(200, GroupOut)
    def patch(self, data: dict[str, Any], group_id: int) -> Any:
        """Change a group; `member_ids`, when given, replaces the members."""
        group = service.update_group(service.get_group(group_id), data)
        audit("group.update", group, detail={"fields": sorted(data)})
        db.session.commit()
        return group

    @blp.response(204)
    def delete(self, group_id: int) -> None:
        group = service.get_group(group_id)
        audit("group.delete", group)
        service.delete_group(group)
        db.session.commit()


@blp.route("/<id:group_id>/digests")
class GroupDigests(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, DigestPage)
    def get(self, args: dict[str, Any], group_id: int) -> Any:
        """The digests sent to the group, newest first: whom each named (by name) and where
        each of them stands now — answered since (by LINE, SMS or a call), incident, nothing."""
        group = service.get_group(group_id)
        before, limit = args["cursor"], args["limit"]
        statement = select(GroupDigest).where(GroupDigest.group_id == group.id)
        if before is not None:
            statement = statement.where(GroupDigest.id < before)
        found = db.session.scalars(statement.order_by(GroupDigest.id.desc()).limit(limit + 1)).all()
        page = found[:limit]
        items = [{"id": d.id, "group_id": d.group_id, "occurrence": d.occurrence,
                  "scheduled_at": d.scheduled_at, "created_at": d.created_at,
                  "recipients": d.recipients, "acknowledged_at": d.acknowledged_at,
                  "acknowledged_by": d.acknowledged_by, "unanswered": digests.describe(d)}
                 for d in page]
        return {"items": items,
                "next": next_cursor(page[-1].id) if len(found) > limit else None}
