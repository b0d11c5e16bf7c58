"""The resident's page shows whether the LINE link code (連携コード) still works, and renews it."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import update

from mimamori.extensions import db
from tenants.models import Resident
from tenants.tenancy import bind_tenant
from tenants.types import utcnow
from tests.fixtures.browser import sign_in
from tests.ui_support import resident


def test_staff_renew_an_expired_link_code(live_server, page, tenant, make_user, clean_app):
    """A code handed out 15 days ago: does the page say it expired instead of showing it, and
    does staff get a new code valid for 14 days with one click?"""
    person = resident(tenant)
    with clean_app.app_context(), bind_tenant(tenant.id):
        db.session.execute(update(Resident).where(Resident.id == person["id"])
                           .values(link_code_expires_at=utcnow() - timedelta(days=1)))
        db.session.commit()
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/residents/{person['id']}")
    expect(page.get_by_text("連携コードの有効期限が切れています。")).to_be_visible()
    expect(page.locator(".code")).to_have_count(0)

    page.get_by_role("button", name="新しい連携コードを発行").click()

    renewed = tenant.api.get(f"/api/v1/residents/{person['id']}").get_json()
    assert renewed["link_code"] != person["link_code"]
    expect(page.locator(".code")).to_have_text(renewed["link_code"])
    expect(page.locator(".flash, [role=status], .messages").first).to_contain_text(renewed["link_code"])
    expect(page.get_by_text("まで有効", exact=False).first).to_be_visible()
