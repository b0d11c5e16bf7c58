"""The dashboard's error pages: its layout, in Japanese, with a way home; the API keeps
answering problem+json, and a server error's page needs no database."""

from __future__ import annotations

import re

import pytest
from flask_login.utils import _create_identifier
from playwright.sync_api import expect
from werkzeug.exceptions import ServiceUnavailable

from tests.fixtures.browser import screenshot, sign_in
from wsgi import create_app

SECRET_DETAIL = "山田 花子 090-1234-5678 at the bottom of the stack"


def test_an_unknown_page_is_a_japanese_404_with_a_way_home(live_server, page, tenant, make_user):
    """Does a mistyped address show a Japanese page in the dashboard's layout, with a link
    that leads back to the dashboard?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    response = page.goto(f"{live_server}/t/musashino/no-such-page")
    assert response.status == 404
    assert page.locator("html").get_attribute("lang") == "ja"
    expect(page.get_by_role("heading", name=re.compile("ページが見つかりません"))).to_be_visible()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()  # the usual header
    assert "Not Found" not in page.content()
    screenshot(page, "error-404")
    page.get_by_role("link", name="ホームへ戻る").click()
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()


def test_a_stale_form_is_a_japanese_400_with_a_way_home(live_server, page, tenant, make_user):
    """When a form's CSRF token no longer matches, is the refusal a Japanese page that says
    what to do and leads home, rather than Werkzeug's "Bad Request"?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    page.evaluate("document.querySelectorAll('input[name=csrf_token]')"
                  ".forEach(input => { input.value = 'stale'; })")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="ログアウト").click()
    assert answer.value.status == 400
    expect(page.get_by_role("heading", name=re.compile("ページの有効期限が切れました"))).to_be_visible()
    expect(page.get_by_text("ページを読み込み直してから")).to_be_visible()
    assert "Bad Request" not in page.content() and "CSRF" not in page.content()
    screenshot(page, "error-400-csrf")
    page.get_by_role("link", name="ホームへ戻る").click()
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()


def _sign_in(client, login) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    client.post("/login", data={"csrf_token": token, "email": login.email,
                                "password": login.password})


def test_a_forbidden_page_is_a_japanese_403(clean_app, client, tenant, make_user):
    """Does a viewer opening an admin page get a Japanese 403 page with a way home?"""
    login = make_user("etsuran@city.musashino.jp", "viewer", tenant.id)
    _sign_in(client, login)
    response = client.get("/t/musashino/staff/")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "このページを表示する権限がありません" in page and "ホームへ戻る" in page


def test_ids_beyond_any_row_are_a_japanese_404(clean_app, client, tenant, make_user):
    """Does a dashboard address with an id no row can have answer 404, not a server error?"""
    login = make_user("kanri@city.musashino.jp", "admin", tenant.id)
    _sign_in(client, login)
    for path in ("residents", "incidents", "rounds", "groups", "policies", "chains", "staff"):
        response = client.get(f"/t/musashino/{path}/{2**31}")
        assert response.status_code == 404, path
        assert "ホームへ戻る" in response.get_data(as_text=True)


def test_api_and_webhook_errors_stay_problem_json(client):
    """Do the API and webhooks keep answering their errors as problem+json?"""
    for path in ("/api/v1/no-such-thing", "/webhooks/line/no-such-tenant"):
        response = client.get(path)
        assert response.status_code >= 400
        assert response.mimetype == "application/problem+json", path


@pytest.fixture
def failing_app(app, redis_url):
    """The app with an unreachable database and two pages that fail: any touch of the database
    while showing the error page would fail too."""
    application = create_app(
        {"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "REDIS_URL": redis_url,
         "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:9/unreachable",
         "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}}},
        instance_path=app.instance_path)  # the suite's keys: crypto's keyring is process-wide

    @application.get("/boom")
    def boom():
        raise RuntimeError(SECRET_DETAIL)

    @application.get("/resting")
    def resting():
        raise ServiceUnavailable(retry_after=30)

    yield application
    # The limiter and login manager are shared objects: give them back to the suite's app.
    from mimamori.extensions import limiter
    limiter.reset()


def _signed_in_cookie(client):
    """A session that names a user and a server-side session, as a signed-in browser's does."""
    with client.application.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()  # the same browser, as session protection checks
    with client.session_transaction() as session:
        session["_user_id"] = "1.abcdefabcdef"
        session["_fresh"] = True
        session["_id"] = identifier
        session["sid"] = "token"


def test_a_server_error_page_shows_no_traceback_and_needs_no_database(failing_app):
    """When a page fails (the database may be the cause), is the answer a Japanese 500 page
    with a way home, telling nothing of what failed?"""
    client = failing_app.test_client()
    _signed_in_cookie(client)
    response = client.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "システムでエラーが発生しました" in page and "ホームへ戻る" in page
    assert 'lang="ja"' in page
    for leak in ("Traceback", "RuntimeError", "山田", "090-1234-5678", "Internal Server Error"):
        assert leak not in page


def test_an_outage_page_is_japanese_and_keeps_retry_after(failing_app):
    """Does a 503 (the database unreachable) get a Japanese page that keeps its Retry-After?"""
    client = failing_app.test_client()
    _signed_in_cookie(client)
    response = client.get("/resting")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "ただいま一時的に利用できません" in response.get_data(as_text=True)
