"""Residents (利用者) with inline contacts (緊急連絡先), and pauses; shared by API and CSV import."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import (
    Id,
    JapaneseDate,
    Kana,
    LineUserId,
    Note,
    PageArgs,
    Phone,
    StrictSchema,
    Text,
    channel_list,
    id_list,
    page_of,
)
from tenants.models.residents import RELATIONS


class ContactIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    relation = fields.String(load_default="relative", validate=validate.OneOf(RELATIONS))
    relation_note = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    phone = Phone(load_default=None, allow_none=True)
    line_user_id = LineUserId(load_default=None, allow_none=True)
    channels = channel_list(load_default=None, allow_none=True)
    priority = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=99))


class ContactOut(StrictSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    name = fields.String()
    relation = fields.String()
    relation_note = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    line_user_id = fields.String(allow_none=True)
    channels = fields.List(fields.String())
    priority = fields.Integer()


class ResidentIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    name_kana = Kana(load_default=None, allow_none=True, validate=validate.Length(max=200))
    birth_date = JapaneseDate(load_default=None, allow_none=True)
    phone = Phone(load_default=None, allow_none=True)
    line_user_id = LineUserId(load_default=None, allow_none=True)
    channels = channel_list(load_default=None, allow_none=True)
    check_policy_id = Id(strict=True, load_default=None, allow_none=True)
    group_ids = id_list(load_default=list)
    contacts = fields.List(fields.Nested(ContactIn), load_default=list,
                           validate=validate.Length(max=50))
    external_id = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))
    address = Text(load_default=None, allow_none=True, validate=validate.Length(max=300))
    notes = Note(load_default=None, allow_none=True, validate=validate.Length(max=4000))

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        birth = data.get("birth_date")
        if birth and not date(1880, 1, 1) <= birth <= date.today():
            raise ValidationError("The birth date is not plausible.", "birth_date")


class PauseOut(StrictSchema):
    id = fields.Integer()
    from_ = fields.Date(attribute="starts_on", data_key="from")
    until = fields.Date()
    reason = fields.String(allow_none=True)


class ResidentOut(StrictSchema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    name = fields.String()
    name_kana = fields.String(allow_none=True)
    birth_date = fields.Date(allow_none=True)
    phone = fields.String(allow_none=True)
    line_user_id = fields.String(allow_none=True)
    line_linked = fields.Boolean()
    channels = fields.List(fields.String())
    check_policy_id = fields.Integer(allow_none=True)
    group_ids = fields.List(fields.Integer())
    contacts = fields.List(fields.Nested(ContactOut))
    address = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    link_code = fields.String()
    link_code_expires_at = fields.DateTime(allow_none=True)
    paused_until = fields.Date(allow_none=True)
    pauses = fields.List(fields.Nested(PauseOut),
                         metadata={"description": "Pauses not over yet."})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if attr == "pauses":
            today = obj.tenant.local_today()
            return [pause for pause in obj.pauses if pause.until > today]
        return super().get_attribute(obj, attr, default)


class PauseIn(StrictSchema):
    from_ = JapaneseDate(data_key="from", load_default=None, allow_none=True)
    until = JapaneseDate(required=True)
    reason = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))


class ResidentListArgs(PageArgs):
    q = fields.String(load_default=None, validate=validate.Length(max=200),
                      metadata={"description": "Name or kana contains"})
    group_id = Id(load_default=None)
    check_policy_id = Id(load_default=None)


ResidentPage = page_of(ResidentOut)
