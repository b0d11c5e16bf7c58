"""Checks (安否確認) and incidents (未確認案件) as the API shows them."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import Id, PageArgs, StrictSchema, page_of
from tenants.models.engine import CHECK_STATUSES, INCIDENT_STATUSES


class CheckOut(StrictSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    policy_id = fields.Integer(allow_none=True)
    round_id = fields.Integer(allow_none=True)
    scheduled_at = fields.DateTime()
    status = fields.String()
    channel = fields.String(allow_none=True)
    reminder_sent_at = fields.DateTime(allow_none=True)
    window_ends_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)
    answered_via = fields.String(allow_none=True)


class CheckListArgs(PageArgs):
    resident_id = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(CHECK_STATUSES))


class TimelineEntry(StrictSchema):
    at = fields.DateTime()
    kind = fields.String()
    detail = fields.String()


class IncidentOut(StrictSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    check_id = fields.Integer()
    status = fields.String()
    escalated = fields.Boolean()
    opened_at = fields.DateTime()
    acknowledged_at = fields.DateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True)
    outcome_note = fields.String(allow_none=True)
    timeline = fields.List(fields.Nested(TimelineEntry), attribute="events")


class IncidentListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(INCIDENT_STATUSES))
    resident_id = Id(load_default=None)


CheckPage = page_of(CheckOut)
IncidentPage = page_of(IncidentOut)
