"""The staff and operator dashboard: server-rendered pages calling the same services as the API."""

from __future__ import annotations

from flask import Blueprint, Flask

from mimamori.extensions import babel, csrf, limiter, login_manager

# Templates and self-served assets (city networks block CDNs: nothing is loaded from elsewhere).
assets = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/ui")


def init_admin(app: Flask) -> None:
    from admin_ui import errors, i18n, security, session
    from admin_ui.views import blueprints

    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked by the admin blueprints only
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session, not an hour
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Failed sign-ins (password or 2FA code): per account, and per client address much higher.
    app.config.setdefault("LOGIN_FAILURES_PER_ACCOUNT", "5 per 15 minutes")
    app.config.setdefault("LOGIN_FAILURES_PER_ADDRESS", "100 per 15 minutes")
    app.config.setdefault("SESSION_IDLE_MINUTES", 120)
    app.config.setdefault("SESSION_MAX_HOURS", 12)
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)  # before Babel reads its configuration
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    session.init_app(app, login_manager)
    security.init_app(app)
    errors.init_app(app)  # after the API's handler, which it keeps for /api and /webhooks
    app.register_blueprint(assets)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
