"""Signing in to the dashboard in a real browser: roles, the second factor, tenant isolation."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import expect

from tests.fixtures.browser import screenshot, sign_in


def test_staff_signs_in_to_their_tenant(live_server, page, tenant, make_user):
    """Does a staff member land on their own tenant's page, in Japanese, after signing in?"""
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    sign_in(page, live_server, login)
    expect(page).to_have_url(re.compile(r"/t/musashino/$"))
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    japanese_date = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日\([月火水木金土日]\)$")
    expect(page.locator("h1 small")).to_have_text(japanese_date)
    screenshot(page, "dashboard-today")


def test_wrong_password_is_refused(live_server, page, tenant, make_user):
    """Is a wrong password refused without saying which part was wrong?"""
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    login.password = "not the password"
    sign_in(page, live_server, login)
    expect(page.get_by_role("alert")).to_contain_text("メールアドレスまたはパスワードが違います")
    expect(page).to_have_url(re.compile(r"/login"))


def test_another_tenants_pages_are_not_found(live_server, page, make_tenant, make_user):
    """Can a user of tenant A reach tenant B's pages by editing the URL?"""
    a = make_tenant("tenant-a", "A市")
    make_tenant("tenant-b", "B市")
    sign_in(page, live_server, make_user("a@a.jp", "admin", a.id))
    expect(page).to_have_url(re.compile(r"/t/tenant-a/$"))
    response = page.goto(f"{live_server}/t/tenant-b/")
    assert response.status == 404
    assert "B市" not in page.content()


def test_operator_must_enrol_a_second_factor(live_server, page, make_user):
    """Is an operator without 2FA made to set it up before reaching the console?"""
    login = make_user("ops@mimamori.example", "operator", None)
    sign_in(page, live_server, login)
    expect(page).to_have_url(re.compile(r"/account/2fa$"))
    page.goto(f"{live_server}/ops/")
    expect(page).to_have_url(re.compile(r"/account/2fa$"))
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("確認コード(6桁)").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="設定する").click()
    expect(page.get_by_role("heading", name="自治体・社協")).to_be_visible()


def test_operator_with_2fa_needs_the_code(live_server, page, make_user):
    """With 2FA enrolled, does the console stay closed until the code is given?"""
    login = make_user("ops@mimamori.example", "operator", None, totp=True)
    page.goto(f"{live_server}/login")
    page.get_by_label("メールアドレス").fill(login.email)
    page.get_by_label("パスワード").fill(login.password)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(re.compile(r"/login/2fa"))
    assert page.goto(f"{live_server}/ops/").url.split("?")[0].endswith("/login/2fa")
    page.get_by_label("確認コード(6桁)").fill("000000")
    page.get_by_role("button", name="確認").click()
    expect(page.get_by_role("alert")).to_contain_text("確認コードが違います")
    page.get_by_label("確認コード(6桁)").fill(login.code())
    page.get_by_role("button", name="確認").click()
    expect(page.get_by_role("heading", name="自治体・社協")).to_be_visible()


def test_form_without_csrf_token_is_refused(live_server, page, tenant, make_user):
    """Is a form posted without its CSRF token refused?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    response = page.request.post(f"{live_server}/logout")
    assert response.status == 400
    response = page.request.post(f"{live_server}/login",
                                 form={"email": "x@y.jp", "password": "whatever"})
    assert "メールアドレスまたはパスワードが違います" not in response.text()


def test_english_is_available(live_server, page, tenant, make_user):
    """Can a user switch the interface to English, and keep it?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.select_option("#locale", "en")
    expect(page.get_by_role("heading", name="Today's safety checks")).to_be_visible()


def test_security_headers(live_server, page):
    """Do pages carry a strict CSP and refuse framing?"""
    response = page.goto(f"{live_server}/login")
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
