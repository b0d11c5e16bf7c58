"""Connection tests (接続テスト) of a tenant's LINE channel and Twilio account, for operators.

Each answers in one line that never repeats a credential: LINE's bot-info endpoint and Twilio's
account endpoint are read-only, so a test changes nothing at the provider.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
import urllib3
from linebot.v3.messaging import ApiException
from twilio.base.exceptions import TwilioRestException

from worker import line, sms


@dataclass
class ConnectionResult:
    ok: bool
    detail: str  # the bot's or account's name, or what went wrong; never a secret


def probe_line(api_base_url: str, access_token: str) -> ConnectionResult:
    """Ask LINE for the channel's bot (GET /v2/bot/info) with the channel access token."""
    try:
        info = line.bot_info(api_base_url, access_token)
    except ApiException as exc:
        return ConnectionResult(False, line._describe(exc.status or 0, exc.body))
    except urllib3.exceptions.HTTPError as exc:
        return ConnectionResult(False, f"LINE unreachable: {type(exc).__name__}")
    name = " ".join(part for part in (info["display_name"], info["basic_id"]) if part)
    return ConnectionResult(True, name)


def probe_twilio(api_base_url: str, account_sid: str, auth_token: str) -> ConnectionResult:
    """Fetch the account (GET /2010-04-01/Accounts/<sid>.json) with its SID and auth token."""
    client = sms.twilio_client(api_base_url, account_sid, auth_token)
    try:
        account = client.api.v2010.accounts(account_sid).fetch()
    except TwilioRestException as exc:
        # Twilio's message may repeat the request's URL; its status and code say what failed.
        return ConnectionResult(False, f"Twilio {exc.status} error {exc.code}")
    except requests.RequestException as exc:
        return ConnectionResult(False, f"Twilio unreachable: {type(exc).__name__}")
    # The account resource also carries the auth token: only its name and status leave here.
    return ConnectionResult(account.status == "active",
                            f"{account.friendly_name} ({account.status})")
