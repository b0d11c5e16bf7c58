"""Groups (グループ・つながり)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, require_tenant
from api.pagination import paginate
from mimamori.extensions import db
from schemas.groups import GroupIn, GroupOut
from tenants.models import Group
from tenants.services import groups as service

blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups",
                description="Community groups and areas (グループ・つながり).")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Groups(MethodView):
    def get(self) -> Any:
        return paginate(select(Group), Group, GroupOut())

    @blp.arguments(GroupIn)
    @blp.response(201, GroupOut)
    def post(self, data: dict[str, Any]) -> Any:
        group = service.create_group(data)
        audit("group.create", group)
        db.session.commit()
        return group


@blp.route("/<int:group_id>")
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
