"""Groups (グループ・つながり): the list, one group with its members and digests, create and edit."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from sqlalchemy import func, select
from wtforms import BooleanField, SelectChoice, SelectField, SelectMultipleField, StringField

from admin_ui.audit_trail import audit
from admin_ui.labels import GROUP_KIND_LABELS
from admin_ui.messages import localise
from admin_ui.session import requires, tenant_blueprint, visible_residents
from admin_ui.support import (
    blank_to_none,
    equip,
    error_summary,
    messages_of,
    paginate,
    put_errors,
    whole_number,
)
from admin_ui.views.residents import search_residents
from mimamori.extensions import db
from schemas.groups import GroupIn
from tenants.errors import DomainError
from tenants.models import Delivery, Group, GroupDigest, GroupMember, Resident
from tenants.models.groups import DEFAULT_DIGEST_AFTER_MINUTES, GROUP_KINDS
from tenants.services import digests
from tenants.services import groups as service

blueprint = tenant_blueprint("groups", __name__)
equip(blueprint)

SEARCH_LIMIT = 50
DIGESTS_PER_PAGE = 10


class GroupForm(FlaskForm):
    name = StringField(_l("グループ名"))
    kind = SelectField(_l("種類"), choices=[SelectChoice(k, GROUP_KIND_LABELS[k]) for k in GROUP_KINDS],
                       validate_choice=False)
    leader_resident_id = SelectField(_l("リーダー(メンバーから選ぶ)"), validate_choice=False)
    leader_name = StringField(_l("リーダーの氏名(メンバー以外の方)"))
    leader_phone = StringField(_l("リーダーの電話番号"), render_kw={"type": "tel"})
    leader_line_user_id = StringField(_l("リーダーの LINE ユーザーID(任意)"))
    digest_enabled = BooleanField(_l("つながりのお知らせを送る"))
    digest_hours = StringField(_l("安否確認の何時間後"), render_kw={"inputmode": "numeric"})
    digest_minutes = StringField(_l("と何分後"), render_kw={"inputmode": "numeric"})
    digest_member_ids = SelectMultipleField(_l("お知らせを受け取るメンバー"), validate_choice=False)


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
    form.digest_member_ids.choices = [SelectChoice(str(m.id), m.name) for m in members]
    return form


def _delay(form: GroupForm) -> tuple[Any, str]:
    """Hours and minutes as the schema's minutes, and the field its error is shown beside; what
    is no whole number goes on as typed, for the schema to refuse."""
    hours = whole_number(form.digest_hours.data or "0")
    minutes = whole_number(form.digest_minutes.data or "0")
    if not isinstance(hours, int):
        return hours, "digest_hours"
    if not isinstance(minutes, int):
        return minutes, "digest_minutes"
    return hours * 60 + minutes, "digest_hours"


def _payload(form: GroupForm) -> dict[str, Any]:
    raw = blank_to_none({field: form[field].data for field in
                         ("name", "kind", "leader_resident_id", "leader_name", "leader_phone",
                          "leader_line_user_id")})
    raw["name"] = raw["name"] or ""
    raw["leader_resident_id"] = whole_number(raw["leader_resident_id"])
    raw["digest_enabled"] = form.digest_enabled.data
    raw["digest_after_minutes"] = _delay(form)[0]
    if form.digest_member_ids.choices:  # a new group has no members to choose yet
        raw["digest_member_ids"] = [whole_number(v) for v in form.digest_member_ids.data or []]
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
        errors = dict((exc.messages if isinstance(exc, ValidationError) else exc.errors) or {})
        delay, beside = _delay(form)
        if "digest_after_minutes" in errors and isinstance(delay, int):
            errors["digest_after_minutes"] = [_("1分後から7日後(168時間後)までで入力してください。")]
        general = put_errors(form, errors, {"digest_after_minutes": beside})
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
        return render_template("groups/form.html", form=form, group=None, digest_lines={},
                               general=general, errors=error_summary([form])), 422
    form.digest_hours.data, form.digest_minutes.data = _hours_minutes(
        DEFAULT_DIGEST_AFTER_MINUTES)
    return render_template("groups/form.html", form=form, group=None, digest_lines={}, general=[],
                           errors=[])


@blueprint.route("/groups/<id:group_id>/edit", methods=["GET", "POST"])
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
        group = _group_or_404(group_id)
        return render_template("groups/form.html", form=form, group=group,
                               digest_lines=_on_line(group), general=general,
                               errors=error_summary([form])), 422
    form = _form(group, formdata=None, data={
        "name": group.name, "kind": group.kind, "leader_resident_id": str(group.leader_resident_id or ""),
        "leader_name": group.leader_name, "leader_phone": group.leader_phone,
        "leader_line_user_id": group.leader_line_user_id, "digest_enabled": group.digest_enabled,
        "digest_member_ids": [str(m.resident_id) for m in group.members if m.receives_digest]})
    form.digest_hours.data, form.digest_minutes.data = _hours_minutes(group.digest_after_minutes)
    return render_template("groups/form.html", form=form, group=group, general=[], errors=[],
                           digest_lines=_on_line(group))


def _on_line(group: Group) -> dict[str, bool]:
    """Which members a digest can reach: a linked LINE account they have not blocked."""
    return {str(m.id): bool(m.line_user_id and not m.line_blocked) for m in _members(group)}


def _hours_minutes(minutes: int) -> tuple[str, str]:
    return str(minutes // 60), str(minutes % 60)


@blueprint.get("/groups/<id:group_id>")
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
    opted_in = set(db.session.scalars(select(GroupMember.resident_id).where(
        GroupMember.group_id == group.id, GroupMember.receives_digest.is_(True))))
    page = paginate(select(GroupDigest).where(GroupDigest.group_id == group.id)
                    .order_by(GroupDigest.scheduled_at.desc(), GroupDigest.id.desc()),
                    GroupDigest.id, size=DIGESTS_PER_PAGE)
    return render_template("groups/show.html", group=group, members=members, found=found,
                           query=query, leader=leader, search_limit=SEARCH_LIMIT,
                           digest_readers=[m for m in members if m.id in opted_in],
                           leader_on_line=_leader_on_line(group), digest_page=page,
                           digest_history=_digest_history(group, page.items))


def _leader_on_line(group: Group) -> bool:
    """Whether the digest can reach the leader (a member's linked LINE, or the outside
    leader's LINE user id)."""
    if group.leader_resident_id:
        resident = db.session.get(Resident, group.leader_resident_id)
        return bool(resident and resident.line_user_id and not resident.line_blocked)
    return bool(group.leader_line_user_id)


def _digest_history(group: Group, sent: list[GroupDigest]) -> list[dict[str, Any]]:
    """Each digest with whom it named (and where each stands now) and to whom it went — names
    only, and for a commissioner only the residents they are assigned."""
    named = {digest.id: digests.describe(digest) for digest in sent}
    everyone = {p["resident_id"] for people in named.values() for p in people}
    latest: dict[int, dict[tuple[str, int | None], str]] = {}
    for digest_id, kind, person_id, status in db.session.execute(
            select(Delivery.digest_id, Delivery.recipient_type, Delivery.recipient_id,
                   Delivery.status)
            .where(Delivery.digest_id.in_([d.id for d in sent])).order_by(Delivery.id)):
        latest.setdefault(digest_id, {})[(kind, person_id)] = status
        if kind == "member" and person_id is not None:
            everyone.add(person_id)
    names = dict(db.session.execute(visible_residents(
        select(Resident.id, Resident.name).where(Resident.id.in_(everyone)))).all())
    leader = digests.leader_name(group)
    history = []
    for digest in sent:
        readers = [{"name": leader if kind == "leader" else names[person_id], "status": status,
                    "leader": kind == "leader"}
                   for (kind, person_id), status in latest.get(digest.id, {}).items()
                   if kind == "leader" or person_id in names]
        history.append({"digest": digest, "readers": readers,
                        "named": [p for p in named[digest.id] if p["resident_id"] in names]})
    return history


@blueprint.post("/groups/<id:group_id>/members")
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
