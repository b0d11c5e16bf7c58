"""Error pages of the dashboard: its layout, Japanese first, and a way back home.

The API and webhooks keep answering problem+json (their handler is the one registered before
this); every other path gets a page. A server error's page (5xx) touches neither the database nor
the signed-in user, since the failure may be the database itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from mimamori.extensions import login_manager

MACHINE_PATHS = ("/api/", "/webhooks/", "/healthz", "/readyz", "/metrics")

# What happened, and what to do about it, as staff read it.
PAGES: dict[int, tuple[Any, Any]] = {
    400: (_l("リクエストを処理できませんでした"),
          _l("入力内容を確認して、もう一度お試しください。")),
    403: (_l("このページを表示する権限がありません"),
          _l("必要な場合は、この自治体・社協の管理者に権限の変更を依頼してください。")),
    404: (_l("ページが見つかりません"),
          _l("URLが間違っているか、ページが削除された可能性があります。")),
    405: (_l("この操作はできません"),
          _l("画面のボタンやリンクから操作してください。")),
    413: (_l("ファイルが大きすぎます"),
          _l("ファイルを分けて、もう一度お試しください。")),
    429: (_l("操作が多すぎます"),
          _l("短い時間に操作が続いたため、一時的に受け付けを止めています。しばらく(15分ほど)待ってから、もう一度お試しください。")),
    500: (_l("システムでエラーが発生しました"),
          _l("ご不便をおかけしています。しばらくしてから、もう一度お試しください。続く場合は運営者へご連絡ください。")),
    503: (_l("ただいま一時的に利用できません"),
          _l("システムが一時的に応答していません。しばらくしてから、もう一度お試しください。")),
}
CSRF_PAGE = (_l("ページの有効期限が切れました"),
             _l("画面を開いてから時間がたったか、別の画面でログアウトしたため、送信を受け付けられませんでした。ページを読み込み直してから、もう一度操作してください。"))


def error_page(error: HTTPException) -> Response:
    """The dashboard's page for an HTTP error, keeping the error's headers (Retry-After, Allow)."""
    code = error.code or 500
    bare = code >= 500
    if bare:
        g.bare_page = True
        # Flask-Login's context processor loads the user for every template: not from here.
        g.setdefault("_login_user", login_manager.anonymous_user())
    title, advice = CSRF_PAGE if isinstance(error, CSRFError) else PAGES.get(
        code, PAGES[500 if bare else 400])
    body = render_template("errors/page.html", code=code, title=title, advice=advice, bare=bare)
    response = Response(body, code, mimetype="text/html")
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Pages for dashboard paths; machine paths keep the handler registered before (problem+json)."""
    machine: Callable[[HTTPException], Any] | None = (
        app.error_handler_spec[None][None].get(HTTPException))

    def handle(error: HTTPException) -> Any:
        if request.path.startswith(MACHINE_PATHS):
            return machine(error) if machine is not None else error
        return error_page(error)

    # Unhandled exceptions arrive as an InternalServerError wrapping them, handled here too; the
    # page never shows what was raised.
    app.register_error_handler(HTTPException, handle)
