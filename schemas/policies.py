"""Check policies (見守り設定) with their schedules, and alert chains (通知順序) with their steps."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import (
    ClockTime,
    Id,
    JapaneseDate,
    StrictSchema,
    Text,
    page_of,
    positive_minutes,
)
from tenants.models.policies import STEP_TARGETS
from tenants.models.residents import CHANNELS
from tenants.schedules import WEEKDAYS, ScheduleError, to_rrule

WEEK_MINUTES = 7 * 24 * 60


class ScheduleIn(StrictSchema):
    """{"freq": "daily"|"weekly", "interval", "weekdays", "time"} or {"rrule": "..."}."""

    freq = fields.String(validate=validate.OneOf(("daily", "weekly")))
    interval = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=365))
    weekdays = fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)),
                           validate=validate.Length(min=1, max=7))
    time = ClockTime()
    rrule = fields.String(validate=validate.Length(min=1, max=500))

    @validates_schema
    def _one_form(self, data: dict[str, Any], **_: Any) -> None:
        if "rrule" in data:
            extra = set(data) - {"rrule", "interval"}
            if extra:
                raise ValidationError("Give either rrule alone or freq and time.", "rrule")
            try:
                to_rrule({"rrule": data["rrule"]})
            except ScheduleError as exc:
                raise ValidationError(str(exc), "rrule") from exc
            return
        if "freq" not in data:
            raise ValidationError("Give freq (daily or weekly) and time, or an rrule.", "freq")
        if "time" not in data:
            raise ValidationError("Say at what time checks go out (HH:MM).", "time")
        if data["freq"] == "weekly" and not data.get("weekdays"):
            raise ValidationError("Choose the weekdays (MO … SU).", "weekdays")
        if data["freq"] == "daily" and data.get("weekdays"):
            raise ValidationError("Weekdays go with freq weekly.", "weekdays")


def schedule_as_dict(data: dict[str, Any]) -> dict[str, Any]:
    """The schedule as stored and shown: times as HH:MM."""
    if "rrule" in data:
        return {"rrule": data["rrule"].strip().upper().removeprefix("RRULE:")}
    result = {"freq": data["freq"], "interval": data.get("interval", 1),
              "time": data["time"].strftime("%H:%M")}
    if data["freq"] == "weekly":
        result["weekdays"] = data["weekdays"]
    return result


class CheckPolicyIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    schedule = fields.Nested(ScheduleIn, required=True)
    starts_on = JapaneseDate(load_default=None, allow_none=True)
    reminder_after_minutes = positive_minutes(WEEK_MINUTES, load_default=None, allow_none=True)
    response_window_minutes = fields.Integer(
        strict=True, load_default=23 * 60, validate=validate.Range(min=5, max=WEEK_MINUTES)
    )
    alert_chain_id = Id(strict=True, load_default=None, allow_none=True)
    voice_retries = fields.Integer(strict=True, load_default=2, validate=validate.Range(min=0, max=5))
    voice_retry_minutes = fields.Integer(strict=True, load_default=10,
                                         validate=validate.Range(min=1, max=240))

    @validates_schema
    def _reminder_inside_window(self, data: dict[str, Any], **_: Any) -> None:
        reminder = data.get("reminder_after_minutes")
        window = data.get("response_window_minutes")
        if reminder and window and reminder >= window:
            raise ValidationError(
                "The reminder must go out before the response window ends.",
                "reminder_after_minutes",
            )


class CheckPolicyOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    schedule = fields.Dict()
    rrule = fields.String()
    starts_on = fields.Date()
    reminder_after_minutes = fields.Integer(allow_none=True)
    response_window_minutes = fields.Integer()
    alert_chain_id = fields.Integer(allow_none=True)
    voice_retries = fields.Integer()
    voice_retry_minutes = fields.Integer()
    next_occurrences = fields.List(fields.String())
    created_at = fields.DateTime()


class PreviewIn(StrictSchema):
    schedule = fields.Nested(ScheduleIn, required=True)
    starts_on = JapaneseDate(load_default=None, allow_none=True)
    count = fields.Integer(strict=True, load_default=10, validate=validate.Range(min=1, max=100))


class PreviewArgs(StrictSchema):
    count = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class AlertStepIn(StrictSchema):
    after_minutes = positive_minutes(WEEK_MINUTES, required=True)
    target = fields.String(required=True, validate=validate.OneOf(STEP_TARGETS))
    priority = fields.Integer(strict=True, load_default=None, allow_none=True,
                              validate=validate.Range(min=1, max=99))
    channel = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CHANNELS))

    @validates_schema
    def _priority_for_contacts(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("priority") is not None and data.get("target") != "contacts":
            raise ValidationError("Only a contacts step has a priority.", "priority")


class AlertChainIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    steps = fields.List(fields.Nested(AlertStepIn), required=True,
                        validate=validate.Length(min=1, max=20))

    @validates_schema
    def _in_time_order(self, data: dict[str, Any], **_: Any) -> None:
        steps = data.get("steps") or []
        for index in range(1, len(steps)):
            if steps[index]["after_minutes"] < steps[index - 1]["after_minutes"]:
                raise ValidationError(
                    {str(index): {"after_minutes": ["Must not be earlier than the step before."]}},
                    "steps",
                )


class AlertStepOut(StrictSchema):
    position = fields.Integer()
    after_minutes = fields.Integer()
    target = fields.String()
    priority = fields.Integer(allow_none=True)
    channel = fields.String(allow_none=True)


class AlertChainOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    steps = fields.List(fields.Nested(AlertStepOut))
    created_at = fields.DateTime()


class PreviewOut(StrictSchema):
    occurrences = fields.List(fields.String(), metadata={
        "description": "The next instants checks go out, ISO 8601 in the tenant's zone."})


CheckPolicyPage = page_of(CheckPolicyOut)
AlertChainPage = page_of(AlertChainOut)
