"""Groups (グループ・つながり): community groups and areas with a leader and members."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from schemas.common import Id, LineUserId, Phone, StrictSchema, Text, id_list, page_of
from tenants.models.groups import DEFAULT_DIGEST_AFTER_MINUTES, GROUP_KINDS


class GroupIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default="community", validate=validate.OneOf(GROUP_KINDS))
    leader_resident_id = Id(strict=True, load_default=None, allow_none=True)
    leader_name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    leader_phone = Phone(load_default=None, allow_none=True)
    leader_line_user_id = LineUserId(load_default=None, allow_none=True)
    member_ids = id_list(load_default=None, allow_none=True)
    # The つながり digest: who has not answered, on LINE, this long after each check.
    digest_enabled = fields.Boolean(load_default=False)
    digest_after_minutes = fields.Integer(strict=True, load_default=DEFAULT_DIGEST_AFTER_MINUTES,
                                          validate=validate.Range(min=1, max=7 * 24 * 60))
    # Members who opted in to receive it (the leader always does when reachable on LINE).
    digest_member_ids = id_list(load_default=None, allow_none=True)


class GroupOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    leader_resident_id = fields.Integer(allow_none=True)
    leader_name = fields.String(allow_none=True)
    leader_phone = fields.String(allow_none=True)
    leader_line_user_id = fields.String(allow_none=True)
    member_ids = fields.List(fields.Integer())
    digest_enabled = fields.Boolean()
    digest_after_minutes = fields.Integer()
    digest_member_ids = fields.List(fields.Integer())
    created_at = fields.DateTime()

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if attr == "member_ids":
            return sorted(m.resident_id for m in obj.members)
        if attr == "digest_member_ids":
            return sorted(m.resident_id for m in obj.members if m.receives_digest)
        return super().get_attribute(obj, attr, default)


class DigestPersonOut(StrictSchema):
    resident_id = fields.Integer()
    name = fields.String()
    check_id = fields.Integer()
    check_status = fields.String()
    channel = fields.String(allow_none=True)
    answered_via = fields.String(allow_none=True)
    incident_id = fields.Integer(allow_none=True)
    incident_status = fields.String(allow_none=True)


class DigestOut(StrictSchema):
    """A digest sent to a group: whom it named and where each of them stands now."""

    id = fields.Integer()
    group_id = fields.Integer()
    occurrence = fields.String()
    scheduled_at = fields.DateTime()
    created_at = fields.DateTime()
    recipients = fields.Integer()
    acknowledged_at = fields.DateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    unanswered = fields.List(fields.Nested(DigestPersonOut))


GroupPage = page_of(GroupOut)
DigestPage = page_of(DigestOut)
