"""What the operator console counts and hides: SMS segments, months, masked errors, kept secrets."""

from __future__ import annotations

from datetime import date

import pytest

from tenants.models import Tenant
from tenants.services.platform import credential_changes, month_bounds, redact, sms_segments


@pytest.mark.parametrize(("text", "segments"), [
    ("あ" * 70, 1),  # Japanese goes as UCS-2: 70 characters fit one segment
    ("あ" * 71, 2),  # ... beyond that, 67 per segment
    ("あ" * 134, 2),
    ("あ" * 135, 3),
    ("a" * 69 + "あ", 1),  # one Japanese character makes the whole text UCS-2
    ("a" * 70 + "あ", 2),
    ("a" * 160, 1),  # plain GSM-7 text: 160 in one, then 153 per segment
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("€" * 80, 1),  # GSM-7 extension characters take two septets
    ("€" * 81, 2),
    ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
    ("😀" * 36, 2),
    ("", 1),
    (None, 1),
])
def test_sms_segments_are_counted_as_twilio_bills(text, segments):
    """Is a text counted as the number of SMS segments the provider bills for it?"""
    assert sms_segments(text) == segments


def test_months_are_counted_in_japan_time():
    """Does April start at midnight in Tokyo (15:00 UTC the day before) and December end with the year?"""
    start, end = month_bounds(date(2030, 4, 17))
    assert start.isoformat() == "2030-04-01T00:00:00+09:00"
    assert end.isoformat() == "2030-05-01T00:00:00+09:00"
    assert month_bounds(date(2030, 12, 1))[1].isoformat() == "2031-01-01T00:00:00+09:00"


@pytest.mark.parametrize("error", [
    "The 'To' number +819012345678 is not a valid phone number.",
    "could not reach 090-1234-5678",
    "to[0]: U4af4980629ab1f5c3b2b0b5e1c1c5d7e is blocked",
    "mail to yamada.hanako@example.jp bounced",
])
def test_errors_shown_to_operators_lose_personal_data(error):
    """Does a provider error lose phone numbers, LINE ids and addresses before an operator sees it?"""
    shown = redact(error)
    assert "***" in shown
    for secret in ("9012345678", "1234-5678", "U4af4980629", "yamada.hanako"):
        assert secret not in shown


def test_error_codes_are_kept():
    """Are a provider's short error codes kept, since they say what went wrong?"""
    assert redact("Twilio 400 error 21211") == "Twilio 400 error 21211"
    assert redact("LINE 401: Authentication failed.") == "LINE 401: Authentication failed."


def test_blank_credentials_keep_the_stored_ones():
    """When an operator leaves a secret blank, is the stored one kept and no rotation recorded?"""
    tenant = Tenant(slug="x", name="X", line_channel_secret="s", line_channel_access_token="t",
                    twilio_account_sid="AC1", twilio_auth_token="a", twilio_from_number="+815012345678")
    typed = {"line": {"channel_secret": "", "channel_access_token": " "},
             "twilio": {"from_number": "+815012345678"}}
    nothing, rotated = credential_changes(tenant, typed)
    assert nothing == {"twilio": {"account_sid": "AC1", "auth_token": "a",
                                  "from_number": "+815012345678"}}
    assert rotated == []
    token_only, rotated = credential_changes(tenant, {"line": {"channel_access_token": "new"}})
    assert token_only == {"line": {"channel_secret": "s", "channel_access_token": "new"}}
    assert rotated == ["line"]


def test_a_new_tenant_has_nothing_to_keep():
    """On a new tenant, is half a set of credentials passed on as typed, for the schema to refuse?"""
    typed, rotated = credential_changes(None, {"line": {"channel_secret": "s", "channel_access_token": ""}})
    assert typed == {"line": {"channel_secret": "s"}} and rotated == []
