"""Groups (グループ・つながり): community groups and areas with a leader and members."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import LineUserId, Phone, StrictSchema, Text
from tenants.models.groups import GROUP_KINDS


class GroupIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default="community", validate=validate.OneOf(GROUP_KINDS))
    leader_resident_id = fields.Integer(strict=True, load_default=None, allow_none=True)
    leader_name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    leader_phone = Phone(load_default=None, allow_none=True)
    leader_line_user_id = LineUserId(load_default=None, allow_none=True)
    member_ids = fields.List(fields.Integer(strict=True), load_default=None, allow_none=True)


class GroupOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    leader_resident_id = fields.Integer(allow_none=True)
    leader_name = fields.String(allow_none=True)
    leader_phone = fields.String(allow_none=True)
    leader_line_user_id = fields.String(allow_none=True)
    member_ids = fields.Method("_member_ids")
    created_at = fields.DateTime()

    def _member_ids(self, group: object) -> list[int]:
        return sorted(m.resident_id for m in group.members)  # type: ignore[attr-defined]
