"""Groups (グループ・つながり): the list, one group with its members, create and edit."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from sqlalchemy import func, select
from wtforms import SelectChoice, SelectField, StringField

from admin_ui.labels import GROUP_KIND_LABELS
from admin_ui.messages import localise
from admin_ui.session import requires, tenant_blueprint, visible_residents
from admin_ui.support import (
    audit,
    blank_to_none,
    equip,
    error_summary,
    messages_of,
    put_errors,
    whole_number,
)
from admin_ui.views.residents import search_residents
from mimamori.extensions import db
from schemas.groups import GroupIn
from tenants.errors import DomainError
from tenants.models import Group, GroupMember, Resident
from tenants.models.groups import GROUP_KINDS
from tenants.services import groups as service

blueprint = tenant_blueprint("groups", __name__)
equip(blueprint)

SEARCH_LIMIT = 50


class GroupForm(FlaskForm):
    name = StringField(_l("グループ名"))
    kind = SelectField(_l("種類"), choices=[SelectChoice(k, GROUP_KIND_LABELS[k]) for k in GROUP_KINDS],
                       validate_choice=False)
    leader_resident_id = SelectField(_l("リーダー(メンバーから選ぶ)"), validate_choice=False)
    leader_name = StringField(_l("リーダーの氏名(メンバー以外の方)"))
    leader_phone = StringField(_l("リーダーの電話番号"), render_kw={"type": "tel"})
    leader_line_user_id = StringField(_l("リーダーの LINE ユーザーID(任意)"))


def _group_or_404(group_id: int) -> Group:
    group = db.session.get(Group, group_id)  # scoped to the tenant by construction
    if group is None:
        abort(404)
    return group


def _members(group: Group) -> list[Resident]:
    return list(db.session.scalars(visible_residents(
        select(Resident).join(GroupMember, GroupMember.resident_id == Resident.id)
        .where(GroupMember.group_id == group.id))
        .order_by(Resident.name_kana.asc().nulls_last(), Resident.name, Resident.id)))


def _form(group: Group | None, **kwargs: Any) -> GroupForm:
    form = GroupForm(**kwargs)
    members = _members(group) if group else []
    form.leader_resident_id.choices = [SelectChoice("", _("選ばない")),
                                       *(SelectChoice(str(m.id), m.name) for m in members)]
    return form


def _payload(form: GroupForm) -> dict[str, Any]:
    raw = blank_to_none({field: form[field].data for field in
                         ("name", "kind", "leader_resident_id", "leader_name", "leader_phone",
                          "leader_line_user_id")})
    raw["name"] = raw["name"] or ""
    raw["leader_resident_id"] = whole_number(raw["leader_resident_id"])
    return raw


@blueprint.get("/groups")
def index() -> Any:
    visible = visible_residents(select(Resident.id))
    counts = dict(db.session.execute(
        select(GroupMember.group_id, func.count(GroupMember.id))
        .where(GroupMember.resident_id.in_(visible)).group_by(GroupMember.group_id)).all())
    groups = db.session.scalars(select(Group).order_by(Group.kind, Group.name)).all()
    leaders = {r.id: r for r in db.session.scalars(visible_residents(select(Resident).where(
        Resident.id.in_([g.leader_resident_id for g in groups if g.leader_resident_id]))))}
    return render_template("groups/index.html", groups=groups, counts=counts, leaders=leaders)


def _save(form: GroupForm, group: Group | None) -> tuple[Group | None, list[str]]:
    try:
        raw = _payload(form)
        # Only what the form shows: the schema's defaults must not reset settings edited
        # elsewhere; members are changed on the group's page.
        data = {key: value for key, value in GroupIn().load(raw).items() if key in raw}
        saved = service.update_group(group, data) if group else service.create_group(data)
    except (ValidationError, DomainError) as exc:
        db.session.rollback()
        errors = exc.messages if isinstance(exc, ValidationError) else exc.errors
        general = put_errors(form, errors or {})
        if not errors:
            general.append(localise(getattr(exc, "message", str(exc))))
        return None, general
    return saved, []


@blueprint.route("/groups/new", methods=["GET", "POST"])
@requires("write")
def create() -> Any:
    form = _form(None)
    if request.method == "POST":
        group, general = _save(form, None)
        if group is not None:
            audit("group.create", group)
            db.session.commit()
            flash(_("グループ「%(name)s」を作りました。", name=group.name), "success")
            return redirect(url_for("groups.show", group_id=group.id))
        return render_template("groups/form.html", form=form, group=None, general=general,
                               errors=error_summary([form])), 422
    return render_template("groups/form.html", form=form, group=None, general=[], errors=[])


@blueprint.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit(group_id: int) -> Any:
    group = _group_or_404(group_id)
    if request.method == "POST":
        form = _form(group)
        saved, general = _save(form, group)
        if saved is not None:
            audit("group.update", saved)
            db.session.commit()
            flash(_("グループ「%(name)s」を保存しました。", name=saved.name), "success")
            return redirect(url_for("groups.show", group_id=saved.id))
        return render_template("groups/form.html", form=form, group=_group_or_404(group_id),
                               general=general, errors=error_summary([form])), 422
    form = _form(group, formdata=None, data={
        "name": group.name, "kind": group.kind, "leader_resident_id": str(group.leader_resident_id or ""),
        "leader_name": group.leader_name, "leader_phone": group.leader_phone,
        "leader_line_user_id": group.leader_line_user_id})
    return render_template("groups/form.html", form=form, group=group, general=[], errors=[])


@blueprint.get("/groups/<int:group_id>")
def show(group_id: int) -> Any:
    group = _group_or_404(group_id)
    members = _members(group)
    found: list[Resident] = []
    query = request.args.get("q", "").strip()
    if query:
        found = list(db.session.scalars(search_residents(visible_residents(
            select(Resident).where(~Resident.id.in_(select(GroupMember.resident_id).where(
                GroupMember.group_id == group.id)))), query)
            .order_by(Resident.name_kana.asc().nulls_last(), Resident.id).limit(SEARCH_LIMIT)))
    leader = (db.session.scalar(visible_residents(select(Resident).where(
        Resident.id == group.leader_resident_id))) if group.leader_resident_id else None)
    return render_template("groups/show.html", group=group, members=members, found=found,
                           query=query, leader=leader, search_limit=SEARCH_LIMIT)


@blueprint.post("/groups/<int:group_id>/members")
@requires("write")
def members(group_id: int) -> Any:
    """Add the residents ticked in the search results; take out those ticked in the list."""
    group = _group_or_404(group_id)
    current = {m.resident_id for m in group.members}
    add = {int(v) for v in request.form.getlist("add") if v.isdigit()}
    remove = {int(v) for v in request.form.getlist("remove") if v.isdigit()}
    try:
        data = GroupIn(partial=True).load({"member_ids": sorted((current | add) - remove)})
        service.update_group(group, data)
    except (ValidationError, DomainError) as exc:
        db.session.rollback()
        messages = messages_of(exc.messages if isinstance(exc, ValidationError) else
                               (exc.errors or exc.message))
        for message in messages:
            flash(localise(message), "error")
        return redirect(url_for("groups.show", group_id=group_id))
    audit("group.update", group, {"added": sorted(add - current), "removed": sorted(remove & current)})
    db.session.commit()
    flash(_("メンバーを更新しました(追加 %(a)s人・削除 %(r)s人)。", a=len(add - current),
            r=len(remove & current)), "success")
    return redirect(url_for("groups.show", group_id=group_id))
