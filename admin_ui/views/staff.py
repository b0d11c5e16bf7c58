"""Staff management (職員) by a tenant's admins: logins, temporary passwords, commissioners' residents."""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired

from admin_ui.records import found_or_404
from admin_ui.session import requires, tenant_blueprint
from mimamori.extensions import db
from schemas.tenants import StaffIn
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.models.staff import TENANT_ROLES
from tenants.services import staff as staff_service
from tenants.types import utcnow

blueprint = tenant_blueprint("staff", __name__)

ROLE_LABELS = {
    "admin": _l("管理者"),
    "staff": _l("職員"),
    "viewer": _l("閲覧のみ"),
    "commissioner": _l("民生委員・ケースワーカー"),
}
# What the schema's rule for each field means, said the way staff read it.
FIELD_MESSAGES = {
    "email": _l("メールアドレスの形式で入力してください(例: hoken@city.example.jp)。"),
    "role": _l("役割を選んでください。"),
    "name": _l("氏名は200文字以内で入力してください。"),
}
SEARCH_LIMIT = 50
WEEKDAY_LABELS = [_l("月曜日"), _l("火曜日"), _l("水曜日"), _l("木曜日"), _l("金曜日"), _l("土曜日"),
                  _l("日曜日")]
# The duty forms' fields, said the way staff read them.
DUTY_MESSAGES = {
    "phone": _l("電話番号の形式で入力してください(例: 090-1234-5678)。"),
    "line_user_id": _l("LINEユーザーIDは U で始まる33文字です。"),
    "user_id": _l("当番にする職員を選んでください(停止中のアカウントは選べません)。"),
    "weekday": _l("曜日を選んでください。"),
    "starts_at": _l("開始時刻を 08:30 のように入力してください。"),
    "ends_at": _l("終了時刻を 17:15 のように入力してください。"),
}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class StaffForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[
        DataRequired(message=_l("メールアドレスを入力してください。"))])
    name = StringField(_l("氏名"))
    role = SelectField(_l("役割"), choices=[SelectChoice(role, ROLE_LABELS[role]) for role in TENANT_ROLES],
                       default="staff")


def _index(errors: dict[str, str] | None = None, entered: dict[str, str] | None = None,
           status: int = 200) -> Any:
    users = sorted(staff_service.tenant_staff(g.tenant.id),
                   key=lambda u: (not u.active, TENANT_ROLES.index(u.role), u.email))
    rota = staff_service.rota()
    on_duty = staff_service.on_duty_staff(g.tenant, utcnow())
    return render_template(
        "staff/index.html", users=users, roles=ROLE_LABELS, rota=rota, weekdays=WEEKDAY_LABELS,
        names={u.id: u.name or u.email for u in users}, on_duty=on_duty,
        on_duty_ids={u.id for u in on_duty}, reachable=staff_service.reachable,
        errors=errors or {}, entered=entered or {}), status


@blueprint.get("/staff/")
@requires("manage")
def index() -> Any:
    return _index()


def _clock(name: str, errors: dict[str, str]) -> time | None:
    match = _CLOCK.match(request.form.get(name, "").strip())
    if match is None:
        errors[name] = DUTY_MESSAGES[name]
        return None
    return time(int(match.group(1)), int(match.group(2)))


@blueprint.post("/staff/rota")
@requires("manage")
def add_duty() -> Any:
    """A line of the weekly rota (当番表): who is on duty on a weekday between two times."""
    errors: dict[str, str] = {}
    entered = {name: request.form.get(name, "") for name in
               ("user_id", "weekday", "starts_at", "ends_at")}
    starts_at, ends_at = _clock("starts_at", errors), _clock("ends_at", errors)
    weekday = entered["weekday"]
    if not (weekday.isdigit() and int(weekday) in staff_service.WEEKDAYS):
        errors["weekday"] = DUTY_MESSAGES["weekday"]
    user = None
    if entered["user_id"].isdigit() and len(entered["user_id"]) < 10:
        try:
            user = staff_service.tenant_user(g.tenant.id, int(entered["user_id"]))
        except NotFound:
            user = None
    if user is None:
        errors["user_id"] = DUTY_MESSAGES["user_id"]
    if errors or user is None or starts_at is None or ends_at is None:
        return _index(errors, entered, 422)
    try:
        staff_service.add_duty_slot(user, int(weekday), starts_at, ends_at, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        return _index({name: DUTY_MESSAGES[name] for name in exc.errors}, entered, 422)
    db.session.commit()
    flash(_("当番表に %(who)s さん(%(day)s %(start)s〜%(end)s)を追加しました。",
            who=user.name or user.email, day=WEEKDAY_LABELS[int(weekday)],
            start=starts_at.strftime("%H:%M"), end=ends_at.strftime("%H:%M")), "success")
    return redirect(url_for("staff.index") + "#rota-h")


@blueprint.post("/staff/rota/<id:slot_id>/delete")
@requires("manage")
def remove_duty(slot_id: int) -> Any:
    found_or_404(staff_service.remove_duty_slot, slot_id, current_user)
    db.session.commit()
    flash(_("当番表から1行削除しました。"), "success")
    return redirect(url_for("staff.index") + "#rota-h")


@blueprint.post("/staff/<id:user_id>/duty")
@requires("manage")
def set_duty(user_id: int) -> Any:
    """How the staff step reaches this person, and whether they are on duty (当番)."""
    user = found_or_404(staff_service.tenant_user, g.tenant.id, user_id)
    try:
        staff_service.set_contact(user, request.form.get("phone", ""),
                                  request.form.get("line_user_id", ""), actor=current_user)
        staff_service.set_on_duty(user, request.form.get("on_duty") == "1", actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        return _show(user, {name: DUTY_MESSAGES[name] for name in exc.errors},
                     {name: request.form.get(name, "") for name in ("phone", "line_user_id")},
                     422)
    db.session.commit()
    flash(_("当番と連絡先を保存しました。"), "success")
    return redirect(url_for("staff.show", user_id=user.id))


@blueprint.route("/staff/new", methods=["GET", "POST"])
@requires("manage")
def new() -> Any:
    form = StaffForm()
    if form.validate_on_submit():
        try:
            data = StaffIn(exclude=("password",)).load(
                {"email": form.email.data.strip(), "role": form.role.data,
                 "name": form.name.data or None})
            user, password = staff_service.invite_user(
                g.tenant.id, data["email"], data["role"], data.get("name"), actor=current_user)
        except ValidationError as exc:
            for name in exc.messages_dict:
                getattr(form, name).errors.append(FIELD_MESSAGES[name])
        except Conflict:
            db.session.rollback()
            form.email.errors.append(_("このメールアドレスはすでに登録されています。"))
        else:
            db.session.commit()
            # Shown in this answer only: never flashed into the session cookie, never stored.
            return render_template("staff/password.html", user=user, password=password,
                                   created=True, roles=ROLE_LABELS)
    return render_template("staff/new.html", form=form), 422 if form.is_submitted() else 200


@blueprint.get("/staff/<id:user_id>")
@requires("manage")
def show(user_id: int) -> Any:
    return _show(found_or_404(staff_service.tenant_user, g.tenant.id, user_id))


def _show(user: Any, errors: dict[str, str] | None = None, entered: dict[str, str] | None = None,
          status: int = 200) -> Any:
    query = request.args.get("q", "").strip()
    assigned, found = [], []
    if user.role == "commissioner":
        assigned_ids = staff_service.assigned_resident_ids(user)
        assigned = staff_service.residents_by_id(assigned_ids)
        found = staff_service.search_residents(query, exclude=assigned_ids, limit=SEARCH_LIMIT)
    return render_template("staff/show.html", user=user, roles=ROLE_LABELS, query=query,
                           assigned=assigned, found=found, search_limit=SEARCH_LIMIT,
                           has_rota=bool(staff_service.rota()), errors=errors or {},
                           entered=entered or {}), status


@blueprint.post("/staff/<id:user_id>/password")
@requires("manage")
def reset_password(user_id: int) -> Any:
    user = found_or_404(staff_service.tenant_user, g.tenant.id, user_id)
    try:
        password = staff_service.reset_password(user, actor=current_user)
    except Conflict:
        flash(_("自分のパスワードは「パスワードの変更」から変更してください。"), "error")
        return redirect(url_for("staff.show", user_id=user.id))
    db.session.commit()
    return render_template("staff/password.html", user=user, password=password, created=False,
                           roles=ROLE_LABELS)


@blueprint.post("/staff/<id:user_id>/active")
@requires("manage")
def set_active(user_id: int) -> Any:
    user = found_or_404(staff_service.tenant_user, g.tenant.id, user_id)
    active = request.form.get("active") == "1"
    try:
        staff_service.set_active(user, active, actor=current_user)
    except Conflict:
        flash(_("自分のアカウントは停止できません。"), "error")
    else:
        db.session.commit()
        flash(_("%(email)s を再開しました。", email=user.email) if active
              else _("%(email)s を停止しました。ログイン中の画面からも締め出されます。",
                     email=user.email), "success")
    return redirect(url_for("staff.show", user_id=user.id))


def _ids(name: str) -> list[int]:
    values = request.form.getlist(name)
    if not all(value.isdigit() for value in values):
        abort(400)
    return [int(value) for value in values]


@blueprint.post("/staff/<id:user_id>/residents")
@requires("manage")
def assign(user_id: int) -> Any:
    user = found_or_404(staff_service.tenant_user, g.tenant.id, user_id)
    if user.role != "commissioner":
        abort(404)
    try:
        added, removed = staff_service.assign_residents(user, _ids("resident"), _ids("shown"),
                                                        actor=current_user)
    except NotFound:
        abort(404)
    db.session.commit()
    flash(_("担当の利用者を更新しました(追加 %(added)s 人、解除 %(removed)s 人)。",
            added=len(added), removed=len(removed)), "success")
    return redirect(url_for("staff.show", user_id=user.id, q=request.form.get("q") or None))
