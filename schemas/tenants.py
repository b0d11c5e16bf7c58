"""Tenants, their staff and tokens, as operators create and see them (secrets go in, never out)."""

from __future__ import annotations

import functools
import re
from typing import Any
from zoneinfo import available_timezones

from marshmallow import ValidationError, fields, validate, validates

from schemas.common import (
    ClockTime,
    LineUserId,
    Phone,
    StrictSchema,
    Text,
    channel_list,
    page_of,
)
from schemas.earthquakes import EarthquakeSettings
from tenants.models.staff import TENANT_ROLES
from tenants.models.tenants import TENANT_KINDS
from tenants.services.earthquakes import settings as earthquake_settings

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MIN_PASSWORD_LENGTH = 10
SANDBOX_HELP = (
    "A sandbox tenant has neither LINE nor Twilio credentials: checks are recorded and never "
    "sent. Shown on every read; on a write it must be given as true to remove the last "
    "credentials, and if given it must match the credentials the tenant ends up with.")


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(value: str) -> None:
    """An IANA zone name: looked up among the known names, never opened as a path first."""
    if value not in _zone_names():
        raise ValidationError(f"Unknown time zone {value[:80]!r}; use an IANA name such as "
                              "Asia/Tokyo.")


class LineCredentials(StrictSchema):
    channel_secret = fields.String(required=True, validate=validate.Length(min=1, max=200))
    channel_access_token = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class TwilioCredentials(StrictSchema):
    account_sid = fields.String(
        required=True,
        validate=validate.Regexp(r"^AC\S{1,62}$", error="A Twilio account SID starts with AC."),
    )
    auth_token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    from_number = Phone(required=True)


class QuietHours(StrictSchema):
    start = ClockTime(required=True)
    end = ClockTime(required=True)


class OnDutyPerson(StrictSchema):
    name = Text(required=True, validate=validate.Length(max=200))
    phone = Phone(load_default=None, allow_none=True)
    line_user_id = LineUserId(load_default=None, allow_none=True)
    channels = channel_list(load_default=None, allow_none=True)


class TenantIn(StrictSchema):
    slug = fields.String(
        required=True,
        validate=validate.Regexp(
            SLUG, error="Use 1–63 lower-case letters, digits and hyphens, e.g. musashino."
        ),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default="municipality", validate=validate.OneOf(TENANT_KINDS))
    timezone = fields.String(load_default="Asia/Tokyo", validate=_zone)
    quiet_hours = fields.Nested(QuietHours, load_default=None)
    line = fields.Nested(LineCredentials, load_default=None, allow_none=True)
    twilio = fields.Nested(TwilioCredentials, load_default=None, allow_none=True)
    on_duty = fields.List(fields.Nested(OnDutyPerson), load_default=list,
                          validate=validate.Length(max=100))
    max_residents = fields.Integer(strict=True, allow_none=True, load_default=None,
                                   validate=validate.Range(min=1, max=10_000_000))
    twilio_calls_per_second = fields.Integer(strict=True, load_default=1,
                                             validate=validate.Range(min=1, max=100))
    # Earthquake rounds from JMA reports: areas, threshold, hold and fold window.
    earthquake = fields.Nested(EarthquakeSettings, load_default=None)
    sandbox = fields.Boolean(metadata={"description": SANDBOX_HELP})


class TenantUpdate(TenantIn):
    """Everything but the slug may change; credentials given here replace the stored ones."""

    class Meta:
        exclude = ("slug",)

    active = fields.Boolean()


class QuietHoursOut(StrictSchema):
    start = ClockTime()
    end = ClockTime()


class LineStateOut(StrictSchema):
    configured = fields.Boolean()


class TwilioStateOut(StrictSchema):
    configured = fields.Boolean()
    from_number = fields.String(allow_none=True)


class TenantOut(StrictSchema):
    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    kind = fields.String()
    timezone = fields.String()
    quiet_hours = fields.Nested(QuietHoursOut)
    line = fields.Nested(LineStateOut)
    twilio = fields.Nested(TwilioStateOut)
    on_duty = fields.List(fields.Dict())
    max_residents = fields.Integer(allow_none=True)
    twilio_calls_per_second = fields.Integer()
    earthquake = fields.Nested(EarthquakeSettings)
    sandbox = fields.Boolean(attribute="is_sandbox", metadata={"description": SANDBOX_HELP})
    active = fields.Boolean()
    created_at = fields.DateTime()

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """The nested parts are views of the tenant's columns (never its secrets)."""
        if attr == "quiet_hours":
            return {"start": obj.quiet_hours_start, "end": obj.quiet_hours_end}
        if attr == "line":
            return {"configured": obj.line_configured}
        if attr == "twilio":
            return {"configured": obj.twilio_configured, "from_number": obj.twilio_from_number}
        if attr == "earthquake":
            return earthquake_settings(obj)
        return super().get_attribute(obj, attr, default)


class TokenIn(StrictSchema):
    name = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))


class TokenOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    token = fields.String()
    tenant_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class StaffIn(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=validate.OneOf(TENANT_ROLES))
    password = fields.String(
        required=True, load_only=True,
        validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=256,
                                 error=f"Use at least {MIN_PASSWORD_LENGTH} characters."),
    )
    name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))

    @validates("email")
    def _lower(self, value: str, **_: Any) -> None:
        if value != value.strip():
            raise ValidationError("Remove the spaces around the address.")


class StaffOut(StrictSchema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String(allow_none=True)
    role = fields.String()
    tenant_id = fields.Integer(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


TenantPage = page_of(TenantOut)
