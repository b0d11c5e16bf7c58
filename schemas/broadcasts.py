"""Broadcasts: information messages from staff to a group or the whole tenant."""

from __future__ import annotations

import unicodedata
from typing import Any

from marshmallow import ValidationError, fields, validate

from schemas.common import Id, StrictSchema, page_of

# Fits one long SMS (Japanese text goes as UCS-2; carriers in Japan join up to 670 characters)
# with the tenant's name in front, and is still readable when spoken on a call.
MAX_MESSAGE = 500


class MessageText(fields.String):
    """Text as staff wrote it, line breaks kept (an evacuation notice has several lines)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = unicodedata.normalize("NFC", super()._deserialize(value, attr, data, **kwargs))
        text = "\n".join(line.strip() for line in text.strip().splitlines())
        if not text:
            raise ValidationError("Must not be blank.")
        return text


class BroadcastIn(StrictSchema):
    group_id = Id(strict=True, load_default=None, allow_none=True)
    message = MessageText(required=True, validate=validate.Length(
        max=MAX_MESSAGE, error=f"At most {MAX_MESSAGE} characters, so it fits one SMS."))


class BroadcastOut(StrictSchema):
    """Delivery counts follow each person's latest delivery (a LINE failure then an SMS: sent)."""

    id = fields.Integer()
    group_id = fields.Integer(allow_none=True)
    message = fields.String()
    created_at = fields.DateTime()
    targeted = fields.Integer()
    unreachable = fields.Integer()
    sent = fields.Integer()
    pending = fields.Integer()
    failed = fields.Integer()
    statuses = fields.Dict(keys=fields.String(), values=fields.Integer())
    channels = fields.Dict(keys=fields.String(), values=fields.Integer())


BroadcastPage = page_of(BroadcastOut)
