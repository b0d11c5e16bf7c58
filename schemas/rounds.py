"""Immediate rounds (一斉安否確認) and the incident actions staff take."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import StrictSchema, Text
from tenants.models.engine import OUTCOMES


class RoundIn(StrictSchema):
    group_id = fields.Integer(strict=True, load_default=None, allow_none=True)
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


class AcknowledgeIn(StrictSchema):
    by = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ResolveIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))


class NoteIn(StrictSchema):
    note = Text(required=True, validate=validate.Length(min=1, max=4000))
