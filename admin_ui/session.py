"""Signed-in users: Flask-Login wiring, and the hooks that bind a tenant page to its tenant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from sqlalchemy import select

from mimamori.extensions import csrf, db
from tenants import tenancy
from tenants.models import Resident, ResidentAssignment, Tenant, User
from tenants.services import staff as staff_service
from tenants.types import utcnow

# What each role may do on its tenant's pages; operators have their own console.
PERMISSIONS = {
    "admin": {"read", "write", "manage", "export"},
    "staff": {"read", "write", "export"},
    "viewer": {"read"},
    "commissioner": {"read", "respond"},
}


def init_app(app: Flask, login_manager: LoginManager) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_user)


SESSION_TOKEN = "sid"  # the key of the server-side session's token in the signed cookie


def _lifetime() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def _load_user(key: str) -> User | None:
    """The signed-in user, while their server-side session lives (not signed out, revoked or
    timed out): a copy of the cookie taken before ログアウト opens nothing."""
    user_id = key.partition(".")[0]
    if not user_id.isdigit() or len(user_id) > 18:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.get_id() != key:
        return None  # the password changed since this session began
    token = session.get(SESSION_TOKEN)
    if not isinstance(token, str):
        return None
    found = staff_service.live_session(
        token, user.id, utcnow(), idle=timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"]),
        lifetime=_lifetime())
    if found is None:
        return None
    if db.session.is_modified(found):
        db.session.commit()  # last_seen_at, at most once a minute
    return user


def sign_in(user: User) -> None:
    """A new session (new cookie, new server-side row) for a user who gave their password."""
    previous = session.get(SESSION_TOKEN)
    if isinstance(previous, str):
        staff_service.end_session(previous, utcnow())  # this browser's last session ends here
    session.clear()
    token = staff_service.start_session(user, ip=request.remote_addr,
                                        user_agent=request.user_agent.string, now=utcnow(),
                                        lifetime=_lifetime())
    login_user(user)
    session[SESSION_TOKEN] = token


def sign_out() -> None:
    """ログアウト: the server-side session ends, so a copy of the cookie opens nothing."""
    token = session.get(SESSION_TOKEN)
    if isinstance(token, str):
        staff_service.end_session(token, utcnow())
        db.session.commit()
    logout_user()
    session.clear()


def end_other_sessions(user: User) -> int:
    """After a new second factor: every other browser is signed out."""
    token = session.get(SESSION_TOKEN)
    return staff_service.end_sessions(user, utcnow(), keep=token if isinstance(token, str) else None)


def fully_signed_in() -> bool:
    """Password and, where the account has one, the second factor."""
    if not current_user.is_authenticated:
        return False
    return not current_user.totp_secret or session.get("second_factor") == current_user.id


def _gate() -> Any:
    """Sign-in, second factor and a password change, in that order, before any page."""
    if request.method == "POST":
        csrf.protect()
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path))
    if current_user.totp_secret and session.get("second_factor") != current_user.id:
        return redirect(url_for("auth.second_factor", next=request.full_path))
    if current_user.is_operator and not current_user.totp_secret:
        return redirect(url_for("auth.setup_second_factor"))
    if current_user.must_change_password:
        return redirect(url_for("auth.change_password"))
    return None


def can(permission: str) -> bool:
    return current_user.is_authenticated and permission in PERMISSIONS.get(current_user.role, set())


def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _pop_slug(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.tenant_slug = (values or {}).pop("slug", None)


def _add_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "slug" not in values and g.get("tenant_slug"):
        values["slug"] = g.tenant_slug


def _enter_tenant() -> Any:
    """Only this tenant's own users get in; anyone else gets a 404, as for an unknown tenant."""
    gate = _gate()
    if gate is not None:
        return gate
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == g.tenant_slug))
    if tenant is None or current_user.tenant_id != tenant.id:
        abort(404)
    g.tenant = tenant
    g.tenant_binding = tenancy.set_bound(tenant.id)
    return None


def tenant_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of pages under /t/<slug>/ that only that tenant's signed-in users reach."""
    blueprint = Blueprint(name, import_name, url_prefix="/t/<slug>")
    blueprint.url_value_preprocessor(_pop_slug)
    blueprint.url_defaults(_add_slug)
    blueprint.before_request(_enter_tenant)
    blueprint.context_processor(lambda: {"tenant": g.get("tenant"), "can": can})
    return blueprint


def _enter_console() -> Any:
    gate = _gate()
    if gate is not None:
        return gate
    if not current_user.is_operator:
        abort(404)
    return None


def operator_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of the operator console under /ops/ (operators with a second factor only)."""
    blueprint = Blueprint(name, import_name, url_prefix="/ops")
    blueprint.before_request(_enter_console)
    blueprint.context_processor(lambda: {"can": can})
    return blueprint


def visible_residents(statement: Any) -> Any:
    """Narrow a query on residents to those a commissioner's login is assigned."""
    if current_user.role == "commissioner":
        assigned = select(ResidentAssignment.resident_id).where(
            ResidentAssignment.user_id == current_user.id)
        statement = statement.where(Resident.id.in_(assigned))
    return statement
