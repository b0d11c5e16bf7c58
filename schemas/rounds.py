"""Immediate rounds (一斉安否確認) and the incident actions staff take."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import Id, Note, StrictSchema, Text, page_of
from tenants.models.engine import OUTCOMES


class RoundIn(StrictSchema):
    group_id = Id(strict=True, load_default=None, allow_none=True)
    message = Text(required=True, validate=validate.Length(min=1, max=500))
    response_window_minutes = fields.Integer(strict=True, load_default=180,
                                             validate=validate.Range(min=5, max=7 * 24 * 60))


class RoundOut(StrictSchema):
    id = fields.Integer()
    group_id = fields.Integer(allow_none=True)
    message = fields.String()
    trigger = fields.String()
    created_at = fields.DateTime()
    targeted = fields.Integer()
    answered = fields.Integer()
    pending = fields.Integer()
    missed = fields.Integer()
    failed = fields.Integer()


class GroupTallyOut(StrictSchema):
    group_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    targeted = fields.Integer()
    answered = fields.Integer()
    pending = fields.Integer()
    missed = fields.Integer()
    failed = fields.Integer()


class TallyOut(StrictSchema):
    targeted = fields.Integer()
    answered = fields.Integer()
    pending = fields.Integer()
    missed = fields.Integer()
    failed = fields.Integer()


class UnansweredOut(StrictSchema):
    """Someone who has not answered the round, with what staff need to go and see."""

    check_id = fields.Integer()
    check_status = fields.String()
    channel = fields.String(allow_none=True)
    resident_id = fields.Integer()
    name = fields.String()
    name_kana = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    group_ids = fields.List(fields.Integer())
    incident_id = fields.Integer(allow_none=True)
    incident_status = fields.String(allow_none=True)


class BreakdownOut(StrictSchema):
    round = fields.Nested(RoundOut)
    groups = fields.List(fields.Nested(GroupTallyOut))
    areas = fields.List(fields.Nested(GroupTallyOut))
    without_area = fields.Nested(TallyOut)
    unanswered = fields.List(fields.Nested(UnansweredOut))
    next = fields.String(allow_none=True)


class EscalationOut(StrictSchema):
    round_id = fields.Integer()
    unanswered = fields.Integer()
    opened = fields.Integer()
    incident_ids = fields.List(fields.Integer())


class AcknowledgeIn(StrictSchema):
    by = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    note = Note(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ResolveIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    note = Note(load_default=None, allow_none=True, validate=validate.Length(max=4000))


class NoteIn(StrictSchema):
    note = Text(required=True, validate=validate.Length(min=1, max=4000))


RoundPage = page_of(RoundOut)
