"""The operator console says loudly which tenants are sandboxes (checks recorded, never sent)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.fixtures.browser import screenshot, sign_in

BADGE = "サンドボックス（送信しません）"


@pytest.fixture
def ops(make_user):
    return make_user("ops@mimamori.example", "operator", None, totp=True)


def test_sandbox_tenants_carry_a_warning(clean_app, live_server, page, ops, make_tenant):
    """Does an operator see at a glance, in the list and on the tenant's page, that a tenant
    without LINE or Twilio sends nothing, and not on a tenant that sends?"""
    sandbox = make_tenant("demo", "デモ市")
    make_tenant("musashino", "武蔵野市", line={"channel_secret": "s" * 20,
                                              "channel_access_token": "t" * 40})
    sign_in(page, live_server, ops)
    expect(page.locator("tr[data-slug=demo]").get_by_text(BADGE)).to_be_visible()
    expect(page.locator("tr[data-slug=musashino]").get_by_text(BADGE)).to_have_count(0)
    page.get_by_role("link", name="デモ市").click()
    banner = page.get_by_role("alert").filter(has_text=BADGE)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("送信されません")
    screenshot(page, "console-sandbox-tenant")
    page.goto(f"{live_server}/ops/tenants/{sandbox.id + 1}")
    expect(page.get_by_role("alert").filter(has_text=BADGE)).to_have_count(0)
