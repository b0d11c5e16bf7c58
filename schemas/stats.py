"""Monthly statistics for council reports (月次統計) as the API shows them."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import StrictSchema

# Years a check can have happened in; date arithmetic past 9999 would overflow.
MONTH = r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$"


class StatsArgs(StrictSchema):
    month = fields.String(load_default=None, validate=validate.Regexp(
        MONTH, error="Give the month as YYYY-MM, e.g. 2026-04."),
        metadata={"description": "YYYY-MM in the tenant's time zone (default: this month)",
                  "example": "2026-04"})


class DayOut(StrictSchema):
    date = fields.Date()
    checks = fields.Integer()
    answered = fields.Integer()
    response_rate = fields.Float(allow_none=True)


class StatsOut(StrictSchema):
    month = fields.String(metadata={"example": "2026-04"})
    checks = fields.Integer(metadata={"description": "scheduled checks of the month"})
    answered = fields.Integer()
    response_rate = fields.Float(allow_none=True, metadata={"description": "percent; null without checks"})
    median_answer_minutes = fields.Float(allow_none=True)
    incidents = fields.Dict(keys=fields.String(), values=fields.Integer(),
                            metadata={"description": "opened in the month, by outcome or status"})
    residents = fields.Integer()
    age_bands = fields.Dict(keys=fields.String(), values=fields.Integer())
    first_channels = fields.Dict(keys=fields.String(), values=fields.Integer())
    days = fields.List(fields.Nested(DayOut))
