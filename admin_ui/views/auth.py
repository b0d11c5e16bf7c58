"""Signing in and out, the second factor (TOTP), changing one's password and language."""

from __future__ import annotations

import hashlib
import io
from typing import Any
from urllib.parse import urlsplit

import pyotp
import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, select

from admin_ui.forms import CodeForm, LoginForm, PasswordForm
from admin_ui.i18n import LOCALES
from admin_ui.session import end_other_sessions, sign_in, sign_out
from mimamori.extensions import csrf, db, limiter
from tenants.models import Tenant, User
from tenants.services.audit import record
from tenants.services.staff import end_sessions, hash_password, verify_password
from tenants.types import utcnow

blueprint = Blueprint("auth", __name__)
ISSUER = "Mimamori"


# Failed attempts are counted per account (whether or not it exists, so a 429 says nothing about
# the address) and, with a much higher bound, per client address: a city's staff share one LGWAN
# gateway, and one person mistyping must not lock out their colleagues.
def _failed(response: Response) -> bool:
    return response.status_code == 401


def _account_key() -> str:
    email = (request.form.get("email") or "").strip().lower()[:254]
    return "account:" + hashlib.sha256(email.encode()).hexdigest()


def _signed_in_account_key() -> str:
    return f"account:{current_user.get_id() if current_user.is_authenticated else ''}"


def _per_account() -> str:
    return current_app.config["LOGIN_FAILURES_PER_ACCOUNT"]


def _per_address() -> str:
    return current_app.config["LOGIN_FAILURES_PER_ADDRESS"]


def _safe_next(default: str) -> str:
    target = request.args.get("next") or ""
    parts = urlsplit(target)
    # Only a path on this site: never an open redirect to another host.
    if target.startswith("/") and not target.startswith("//") and not parts.netloc:
        return target
    return default


def home_for(user: User) -> str:
    if user.is_operator:
        return url_for("console.tenants")
    slug = db.session.scalar(select(Tenant.slug).where(Tenant.id == user.tenant_id))
    return url_for("dashboard.today", slug=slug)


@blueprint.get("/")
def index() -> Any:
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit(_per_account, key_func=_account_key, methods=["POST"], deduct_when=_failed)
@limiter.limit(_per_address, key_func=get_remote_address, methods=["POST"], deduct_when=_failed)
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if not verify_password(user, form.password.data) or user is None or not user.active:
            record("auth.failed", tenant_id=user.tenant_id if user else None,
                   target=user, detail={"reason": "password"})
            db.session.commit()
            flash(_("メールアドレスまたはパスワードが違います。"), "error")
            return render_template("auth/login.html", form=form), 401
        sign_in(user)
        user.last_login_at = utcnow()
        record("auth.login", tenant_id=user.tenant_id, target=user, user_id=user.id)
        db.session.commit()
        if user.totp_secret:
            return redirect(url_for("auth.second_factor", next=_safe_next(home_for(user))))
        if user.is_operator:
            return redirect(url_for("auth.setup_second_factor"))
        return redirect(_safe_next(home_for(user)))
    return render_template("auth/login.html", form=form)


@blueprint.route("/login/2fa", methods=["GET", "POST"])
@limiter.limit(_per_account, key_func=_signed_in_account_key, methods=["POST"],
               deduct_when=_failed)
@limiter.limit(_per_address, key_func=get_remote_address, methods=["POST"], deduct_when=_failed)
@login_required
def second_factor() -> Any:
    if not current_user.totp_secret:
        return redirect(home_for(current_user))
    form = CodeForm()
    if form.validate_on_submit():
        if pyotp.TOTP(current_user.totp_secret).verify(form.code.data.strip(), valid_window=1):
            session["second_factor"] = current_user.id
            return redirect(_safe_next(home_for(current_user)))
        record("auth.failed", tenant_id=current_user.tenant_id, target=current_user,
               detail={"reason": "totp"})
        db.session.commit()
        flash(_("確認コードが違います。"), "error")
        return render_template("auth/second_factor.html", form=form), 401
    return render_template("auth/second_factor.html", form=form)


def _qr_svg(uri: str) -> Markup:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return Markup(buffer.getvalue().decode())  # generated here, not user input


@blueprint.route("/account/2fa", methods=["GET", "POST"])
@login_required
def setup_second_factor() -> Any:
    """Enrol an authenticator app: required for operators, offered to tenant admins."""
    if current_user.totp_secret and session.get("second_factor") != current_user.id:
        return redirect(url_for("auth.second_factor"))
    if not (current_user.is_operator or current_user.role == "admin"):
        abort(404)
    secret = session.get("totp_enrolment") or pyotp.random_base32()
    session["totp_enrolment"] = secret
    uri = pyotp.TOTP(secret).provisioning_uri(name=current_user.email, issuer_name=ISSUER)
    form = CodeForm()
    if form.validate_on_submit():
        if pyotp.TOTP(secret).verify(form.code.data.strip(), valid_window=1):
            current_user.totp_secret = secret
            session.pop("totp_enrolment", None)
            session["second_factor"] = current_user.id
            end_other_sessions(current_user)  # anyone signed in without it is signed out
            record("auth.totp_enrolled", tenant_id=current_user.tenant_id, target=current_user,
                   user_id=current_user.id)
            db.session.commit()
            flash(_("2段階認証を設定しました。"), "success")
            return redirect(home_for(current_user))
        flash(_("確認コードが違います。アプリに表示されている6桁を入力してください。"), "error")
    return render_template("auth/setup_second_factor.html", form=form, secret=secret,
                           qr=_qr_svg(uri))


@blueprint.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> Any:
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        user.password_hash = hash_password(form.password.data)
        user.must_change_password = False
        end_sessions(user, utcnow())  # whoever knew the old password is signed out everywhere
        record("auth.password_changed", tenant_id=user.tenant_id, target=user, user_id=user.id)
        second_factor = session.get("second_factor")
        sign_in(user)  # a fresh session: the session key follows the new password
        if second_factor == user.id:
            session["second_factor"] = user.id
        db.session.commit()
        flash(_("パスワードを変更しました。"), "success")
        return redirect(home_for(current_user))
    return render_template("auth/change_password.html", form=form)


@blueprint.post("/logout")
def logout() -> Any:
    csrf.protect()
    sign_out()
    return redirect(url_for("auth.login"))


@blueprint.post("/locale")
def set_locale() -> Any:
    """Switch the interface language (kept on the account when signed in)."""
    csrf.protect()
    locale = request.form.get("locale", "")
    if locale not in LOCALES:
        abort(400)
    session["locale"] = locale
    if current_user.is_authenticated:
        current_user.locale = locale
        db.session.commit()
    return redirect(_safe_next(url_for("auth.index")))
