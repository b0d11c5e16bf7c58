"""Earthquake rounds: a tenant's subscription, its triggers, and what a JMA report did."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from schemas.common import StrictSchema, page_of
from tenants import jma
from tenants.models.earthquakes import TRIGGER_STATUSES


class Intensity(fields.String):
    """A JMA seismic intensity: "5-" or as people write it, "5弱" / "震度５弱"; stored as "5-"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return jma.normalise_intensity(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError("Use a JMA intensity: 1, 2, 3, 4, 5弱, 5強, 6弱, 6強 or 7 "
                                  "(or 5-, 5+, 6-, 6+).") from exc


class EarthquakeSettings(StrictSchema):
    """Which areas are the tenant's, how strong a shake starts a round, and how long to wait."""

    city_codes = fields.List(fields.String(validate=validate.Regexp(
        r"^\d{5}$", error="A municipality code (全国地方公共団体コード) has 5 digits, e.g. 13203 "
                          "for 武蔵野市; leave out the check digit.")),
        load_default=list, validate=validate.Length(max=200))
    area_codes = fields.List(fields.String(validate=validate.Regexp(
        r"^\d{3}$", error="A seismic intensity area (地震情報／細分区域) has 3 digits, e.g. 351 "
                          "for 東京都多摩東部.")),
        load_default=list, validate=validate.Length(max=200))
    min_intensity = Intensity(load_default="5-")
    hold_minutes = fields.Integer(strict=True, load_default=10,
                                  validate=validate.Range(min=0, max=120))
    fold_minutes = fields.Integer(strict=True, load_default=60,
                                  validate=validate.Range(min=0, max=24 * 60))


class TriggerOut(StrictSchema):
    id = fields.Integer()
    event_id = fields.String()
    status = fields.String(metadata={"enum": list(TRIGGER_STATUSES)})
    max_intensity = fields.String()
    area_name = fields.String()
    matched_codes = fields.List(fields.String())
    report_at = fields.DateTime()
    last_report_at = fields.DateTime()
    fire_at = fields.DateTime()
    fired_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    round_id = fields.Integer(allow_none=True)
    folded_into_id = fields.Integer(allow_none=True)


class TouchedOut(StrictSchema):
    tenant_id = fields.Integer()
    trigger_id = fields.Integer(allow_none=True)
    change = fields.String()
    status = fields.String()
    max_intensity = fields.String()
    fire_at = fields.DateTime()


class JmaResultOut(StrictSchema):
    """What one JMA report did: `result` is triggered, updated, cancelled, reinstated,
    below_threshold, no_subscribed_area, nothing_to_cancel, duplicate, drill, test, stale or
    unsupported_title."""

    event_id = fields.String()
    title = fields.String()
    status = fields.String()
    info_type = fields.String()
    serial = fields.String()
    report_at = fields.DateTime()
    max_intensity = fields.String(allow_none=True)
    result = fields.String()
    triggers = fields.List(fields.Nested(TouchedOut))


TriggerPage = page_of(TriggerOut)
