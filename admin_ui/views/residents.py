"""Residents (利用者): the searchable list, one resident's page with its answer calendar, the
create and edit forms (checked by the API's own schema and services), pauses."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from sqlalchemy import String, cast, exists, func, or_, select
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from admin_ui.audit_trail import audit
from admin_ui.i18n import long_date
from admin_ui.labels import CHANNEL_LABELS, RELATION_LABELS
from admin_ui.messages import localise
from admin_ui.session import requires, tenant_blueprint, visible_residents
from admin_ui.support import (
    blank_to_none,
    day_bounds,
    equip,
    error_summary,
    local_today,
    messages_of,
    paginate,
    phone_display,
    put_errors,
    whole_number,
)
from mimamori.extensions import db
from schemas.residents import ContactIn, PauseIn, ResidentIn
from tenants.errors import DomainError
from tenants.japanese import normalise_kana, normalise_phone, normalise_text
from tenants.models import Check, CheckPolicy, Contact, Group, GroupMember, Incident, Resident
from tenants.models.residents import CHANNELS, RELATIONS, ResidentPause
from tenants.services import residents as service
from tenants.types import utcnow

blueprint = tenant_blueprint("residents", __name__)
equip(blueprint)

CALENDAR_DAYS = 30
STATUS_FILTERS = {
    "": _l("すべて"),
    "unanswered": _l("まだ応答がない方"),
    "sent": _l("応答待ち"),
    "answered": _l("応答あり"),
    "missed": _l("応答なし"),
    "failed": _l("送信失敗"),
    "none": _l("きょうは確認なし"),
}
CHANNEL_FILTERS = {
    "": _l("すべて"),
    "line": "LINE",
    "line_unlinked": _l("LINE(未連携)"),
    "sms": "SMS",
    "voice": _l("電話(音声)"),
}
PAUSED_FILTERS = {"": _l("すべて"), "yes": _l("休止中"), "no": _l("休止していない")}
CONTACT_CHANNELS = ["", "sms", "voice", "sms|voice", "voice|sms", "line", "line|sms|voice"]


def _channel_choice_label(value: str) -> str:
    if not value:
        return _("自動(登録内容から)")
    return " → ".join(str(CHANNEL_LABELS.get(c, c)) for c in value.split("|"))


# --- forms: they collect text; ResidentIn, ContactIn and PauseIn decide what is valid ----------

class ContactForm(Form):
    """One emergency contact (緊急連絡先) inside the resident form."""

    contact_id = HiddenField()
    name = StringField(_l("氏名"))
    relation = SelectField(_l("関係"), choices=[SelectChoice(r, RELATION_LABELS[r]) for r in RELATIONS],
                           default="relative", validate_choice=False)
    relation_note = StringField(_l("続柄など(任意)"))
    phone = StringField(_l("電話番号"), render_kw={"type": "tel", "autocomplete": "off"})
    channels = SelectField(_l("連絡方法"), validate_choice=False)
    line_user_id = StringField(_l("LINE ユーザーID(任意)"))
    priority = StringField(_l("優先順位"), default="1", render_kw={"inputmode": "numeric"})
    remove = BooleanField(_l("この連絡先を削除する"))

    def is_blank(self) -> bool:
        """An unused fieldset (the spare one at the end of the form) is not a contact."""
        return not any((field.data or "").strip() for field in
                       (self.name, self.phone, self.line_user_id, self.relation_note))


class ResidentForm(FlaskForm):
    name = StringField(_l("氏名"), render_kw={"autocomplete": "off"})
    name_kana = StringField(_l("フリガナ"), render_kw={"autocomplete": "off"})
    birth_date = StringField(_l("生年月日"))
    phone = StringField(_l("電話番号"), render_kw={"type": "tel", "autocomplete": "off"})
    channel_1 = SelectField(_l("1番目の連絡方法"), validate_choice=False)
    channel_2 = SelectField(_l("2番目の連絡方法"), validate_choice=False)
    channel_3 = SelectField(_l("3番目の連絡方法"), validate_choice=False)
    line_user_id = StringField(_l("LINE ユーザーID"))
    check_policy_id = SelectField(_l("見守り設定"), validate_choice=False)
    group_ids = SelectMultipleField(_l("グループ"), validate_choice=False)
    external_id = StringField(_l("管理番号"))
    address = StringField(_l("住所"))
    notes = TextAreaField(_l("備考"))
    contacts = FieldList(FormField(ContactForm))


def _resident_form(**kwargs: Any) -> ResidentForm:
    """The form with its choices: channels, this tenant's policies and groups."""
    form = ResidentForm(**kwargs)
    channel_choices = [SelectChoice("", _("なし")), *(SelectChoice(c, CHANNEL_LABELS[c]) for c in CHANNELS)]
    for field in (form.channel_1, form.channel_2, form.channel_3):
        field.choices = channel_choices
    form.channel_1.choices = [SelectChoice("", _("自動(LINE → SMS → 電話)")), *channel_choices[1:]]
    policies = db.session.scalars(select(CheckPolicy).order_by(CheckPolicy.name))
    form.check_policy_id.choices = [SelectChoice("", _("なし(定期の安否確認を送らない)")),
                                    *(SelectChoice(str(p.id), p.name) for p in policies)]
    form.group_ids.choices = [SelectChoice(str(g.id), g.name) for g in
                              db.session.scalars(select(Group).order_by(Group.name))]
    for entry in form.contacts:
        current = entry.form.channels.data or ""
        values = CONTACT_CHANNELS + ([current] if current not in CONTACT_CHANNELS else [])
        entry.form.channels.choices = [SelectChoice(v, _channel_choice_label(v)) for v in values]
    return form


def _form_from_resident(resident: Resident) -> ResidentForm:
    contacts = [{"contact_id": str(c.id), "name": c.name, "relation": c.relation,
                 "relation_note": c.relation_note, "phone": phone_display(c.phone),
                 "channels": "|".join(c.channels or []), "line_user_id": c.line_user_id,
                 "priority": str(c.priority)} for c in resident.contacts]
    next_priority = max([c.priority for c in resident.contacts], default=0) + 1
    contacts.append({"priority": str(next_priority)})
    channels = [*(resident.channels or []), "", "", ""]
    data = {"name": resident.name, "name_kana": resident.name_kana,
            "birth_date": resident.birth_date.isoformat() if resident.birth_date else "",
            "phone": phone_display(resident.phone), "channel_1": channels[0], "channel_2": channels[1],
            "channel_3": channels[2], "line_user_id": resident.line_user_id,
            "check_policy_id": str(resident.check_policy_id or ""),
            "group_ids": [str(g) for g in resident.group_ids], "external_id": resident.external_id,
            "address": resident.address, "notes": resident.notes, "contacts": contacts}
    return _resident_form(formdata=None, data=data)


def _resident_payload(form: ResidentForm) -> dict[str, Any]:
    """The form as the JSON API would receive it."""
    channels = [f.data for f in (form.channel_1, form.channel_2, form.channel_3) if f.data]
    raw = blank_to_none({
        "name": form.name.data or "", "name_kana": form.name_kana.data, "birth_date": form.birth_date.data,
        "phone": form.phone.data, "line_user_id": form.line_user_id.data,
        "check_policy_id": form.check_policy_id.data, "external_id": form.external_id.data,
        "address": form.address.data, "notes": form.notes.data,
    })
    raw["name"] = raw["name"] or ""
    raw["channels"] = channels or None
    raw["check_policy_id"] = whole_number(raw["check_policy_id"])
    raw["group_ids"] = [whole_number(g) for g in form.group_ids.data or []]
    return raw


def _contact_payload(entry: ContactForm) -> dict[str, Any]:
    raw = blank_to_none({"name": entry.name.data or "", "relation": entry.relation.data,
                         "relation_note": entry.relation_note.data, "phone": entry.phone.data,
                         "line_user_id": entry.line_user_id.data, "priority": entry.priority.data})
    raw["name"] = raw["name"] or ""
    raw["channels"] = (entry.channels.data or "").split("|") if entry.channels.data else None
    raw["priority"] = whole_number(raw["priority"]) if raw["priority"] is not None else 1
    raw["relation"] = raw["relation"] or "relative"
    return raw


def _put_resident_errors(form: ResidentForm, errors: dict[str, Any]) -> list[str]:
    """Errors on the resident's fields beside them (the channel list's beside its first select)."""
    errors = dict(errors)
    contacts = errors.pop("contacts", None)
    general = put_errors(form, errors, {"channels": "channel_1"})
    if contacts and not isinstance(contacts, dict):  # about the list, not one contact
        general += [localise(message) for message in messages_of(contacts)]
    return general


# --- pages -------------------------------------------------------------------------------------

def resident_or_404(resident_id: int) -> Resident:
    """A resident of this tenant that this login may see; anyone else is not found."""
    resident = db.session.scalar(visible_residents(select(Resident).where(Resident.id == resident_id)))
    if resident is None:
        abort(404)
    return resident


def search_residents(statement: Any, text: str) -> Any:
    """Name or kana contains the text, spaces ignored; ひらがな finds カタカナ; a phone finds its owner."""
    text = normalise_text(text)
    needle = text.replace(" ", "")
    conditions = [func.replace(Resident.name, " ", "").contains(needle, autoescape=True),
                  func.replace(Resident.name_kana, " ", "").contains(needle, autoescape=True),
                  Resident.external_id == text]
    with suppress(ValueError):  # not kana
        kana = normalise_kana(text).replace(" ", "")
        conditions.append(func.replace(Resident.name_kana, " ", "").contains(kana, autoescape=True))
    if sum(ch.isdigit() for ch in text) >= 9:
        with suppress(ValueError):  # not a phone number
            conditions.append(Resident.phone == normalise_phone(text))
    return statement.where(or_(*conditions))


def _latest_status_today() -> Any:
    start, end = day_bounds(local_today())
    return (select(Check.status).where(Check.resident_id == Resident.id, Check.scheduled_at >= start,
                                       Check.scheduled_at < end)
            .order_by(Check.scheduled_at.desc(), Check.id.desc()).limit(1)
            .correlate(Resident).scalar_subquery())


def _paused_today() -> Any:
    day = local_today()
    return exists().select_from(ResidentPause).where(
        ResidentPause.resident_id == Resident.id, ResidentPause.starts_on <= day,
        ResidentPause.until > day)


@blueprint.get("/residents")
def index() -> Any:
    args = request.args
    statement = visible_residents(select(Resident))
    if args.get("q", "").strip():
        statement = search_residents(statement, args["q"])
    if args.get("group_id", "").isdigit():
        statement = statement.where(Resident.id.in_(
            select(GroupMember.resident_id).where(GroupMember.group_id == int(args["group_id"]))))
    policy = args.get("policy", "")
    if policy == "none":
        statement = statement.where(Resident.check_policy_id.is_(None))
    elif policy.isdigit():
        statement = statement.where(Resident.check_policy_id == int(policy))
    status = args.get("status", "")
    latest = _latest_status_today()
    if status == "unanswered":
        statement = statement.where(latest.in_(("sent", "missed", "failed")))
    elif status == "none":
        statement = statement.where(latest.is_(None))
    elif status in ("sent", "answered", "missed", "failed"):
        statement = statement.where(latest == status)
    channel = args.get("channel", "")
    channels_text = cast(Resident.channels, String)
    if channel == "line_unlinked":
        statement = statement.where(channels_text.contains('"line"'), Resident.line_user_id.is_(None))
    elif channel in CHANNELS:
        statement = statement.where(channels_text.contains(f'"{channel}"'))
    if args.get("paused") == "yes":
        statement = statement.where(_paused_today())
    elif args.get("paused") == "no":
        statement = statement.where(~_paused_today())
    statement = statement.order_by(Resident.name_kana.asc().nulls_last(), Resident.name, Resident.id)
    page = paginate(statement, Resident.id)
    ids = [r.id for r in page.items]
    start, end = day_bounds(local_today())
    today = dict(db.session.execute(
        select(Check.resident_id, Check.status).where(Check.resident_id.in_(ids),
                                                      Check.scheduled_at >= start,
                                                      Check.scheduled_at < end)
        .order_by(Check.scheduled_at, Check.id)).all()) if ids else {}
    groups = db.session.execute(select(GroupMember.resident_id, Group.name).join(
        Group, Group.id == GroupMember.group_id).where(GroupMember.resident_id.in_(ids))
        .order_by(Group.name)).all() if ids else []
    group_names: dict[int, list[str]] = {}
    for resident_id, name in groups:
        group_names.setdefault(resident_id, []).append(name)
    paused = set(db.session.scalars(select(Resident.id).where(Resident.id.in_(ids), _paused_today())))
    return render_template(
        "residents/index.html", page=page, today=today, group_names=group_names, paused=paused,
        groups=db.session.scalars(select(Group).order_by(Group.name)).all(),
        policies=db.session.scalars(select(CheckPolicy).order_by(CheckPolicy.name)).all(),
        status_filters=STATUS_FILTERS, channel_filters=CHANNEL_FILTERS, paused_filters=PAUSED_FILTERS)


@dataclass
class CalendarDay:
    date: date
    status: str  # answered, missed, failed, sent, paused or none (see labels.DAY_LABELS)
    times: list[str]


# A day with several checks shows the one that most needs attention.
_DAY_ORDER = ("missed", "failed", "sent", "answered")


def _calendar(resident: Resident, last_day: date) -> list[CalendarDay]:
    first_day = last_day - timedelta(days=CALENDAR_DAYS - 1)
    start, end = day_bounds(first_day, CALENDAR_DAYS)
    zone = resident.tenant.zone
    by_day: dict[date, list[Check]] = {}
    for check in db.session.scalars(select(Check).where(
            Check.resident_id == resident.id, Check.scheduled_at >= start, Check.scheduled_at < end)
            .order_by(Check.scheduled_at)):
        by_day.setdefault(check.scheduled_at.astimezone(zone).date(), []).append(check)
    days = []
    for offset in range(CALENDAR_DAYS):
        day = first_day + timedelta(days=offset)
        checks = by_day.get(day, [])
        statuses = {c.status for c in checks}
        status = next((s for s in _DAY_ORDER if s in statuses), None)
        if status is None:
            status = "paused" if resident.pause_on(day) else "none"
        days.append(CalendarDay(day, status, [c.scheduled_at.astimezone(zone).strftime("%H:%M")
                                              for c in checks]))
    return days


def _weeks(days: list[CalendarDay]) -> list[list[CalendarDay | None]]:
    """Monday-first weeks for the calendar table, padded with empty cells."""
    cells: list[CalendarDay | None] = [None] * days[0].date.weekday() + list(days)
    cells += [None] * (-len(cells) % 7)
    return [cells[i:i + 7] for i in range(0, len(cells), 7)]


def _calendar_end() -> date:
    """The calendar's last day: `?until=` to look back (or ahead), else today."""
    try:
        return date.fromisoformat(request.args.get("until", ""))
    except ValueError:
        return local_today()


class PauseForm(FlaskForm):
    starts_on = StringField(_l("休止する最初の日"), render_kw={"type": "date"})
    until = StringField(_l("再開する日"), render_kw={"type": "date"})
    reason = StringField(_l("理由(任意)"), render_kw={"placeholder": _l("例: 入院、旅行")})


def _render_resident(resident: Resident, pause_form: PauseForm | None = None, status: int = 200) -> Any:
    last_day = _calendar_end()
    days = _calendar(resident, last_day)
    today = local_today()
    incidents = db.session.scalars(select(Incident).where(Incident.resident_id == resident.id)
                                   .order_by(Incident.opened_at.desc()).limit(5)).all()
    if pause_form is None:
        pause_form = PauseForm(formdata=None, starts_on=today.isoformat())
    tally = {status: sum(d.status == status for d in days) for status in ("answered", "missed", "failed")}
    return render_template(
        "residents/show.html", resident=resident, weeks=_weeks(days), days=days, tally=tally,
        first_day=days[0].date, last_day=last_day, today=today,
        prev_until=(days[0].date - timedelta(days=1)).isoformat(),
        next_until=(last_day + timedelta(days=CALENDAR_DAYS)).isoformat() if last_day < today else None,
        pauses=[(p, p.until - timedelta(days=1)) for p in resident.pauses if p.until > today],
        paused_now=resident.pause_on(today),
        link_code_valid=(resident.link_code_expires_at is not None
                         and resident.link_code_expires_at > utcnow()),
        groups=db.session.scalars(select(Group).join(GroupMember, GroupMember.group_id == Group.id)
                                  .where(GroupMember.resident_id == resident.id).order_by(Group.name)).all(),
        incidents=incidents, pause_form=pause_form,
        pause_errors=error_summary([pause_form])), status


@blueprint.get("/residents/<id:resident_id>")
def show(resident_id: int) -> Any:
    resident = resident_or_404(resident_id)
    audit("resident.view", resident, {"page": "resident"})
    db.session.commit()
    return _render_resident(resident)


def _render_form(form: ResidentForm, resident: Resident | None, general: list[str],
                 status: int = 200) -> Any:
    return render_template("residents/form.html", form=form, resident=resident, general=general,
                           errors=error_summary([form])), status


@blueprint.route("/residents/new", methods=["GET", "POST"])
@requires("write")
def create() -> Any:
    if request.method == "GET":
        return _render_form(_resident_form(formdata=None, data={"contacts": [
            {"priority": "1"}, {"priority": "2"}]}), None, [])
    form = _resident_form()
    raw = _resident_payload(form)
    entries = [entry.form for entry in form.contacts]
    given = [(index, entry) for index, entry in enumerate(entries) if not entry.is_blank()]
    raw["contacts"] = [_contact_payload(entry) for _, entry in given]
    general: list[str] = []
    try:
        resident = service.create_resident(ResidentIn().load(raw))
    except (ValidationError, DomainError) as exc:
        db.session.rollback()
        errors = exc.messages if isinstance(exc, ValidationError) else exc.errors
        if not isinstance(errors, dict) or not errors:
            general.append(localise(getattr(exc, "message", str(exc))))
            errors = {}
        for position, contact_errors in (errors.get("contacts") or {}).items():
            general += put_errors(given[int(position)][1], contact_errors)
        general += _put_resident_errors(form, errors)
        return _render_form(form, None, general, 422)
    audit("resident.create", resident)
    db.session.commit()
    flash(_("%(name)sさんを登録しました。LINE連携コードは %(code)s です。", name=resident.name,
            code=resident.link_code), "success")
    return redirect(url_for("residents.show", resident_id=resident.id))


@blueprint.route("/residents/<id:resident_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit(resident_id: int) -> Any:
    resident = resident_or_404(resident_id)
    if request.method == "GET":
        return _render_form(_form_from_resident(resident), resident, [])
    form = _resident_form()
    general: list[str] = []
    raw = _resident_payload(form)
    failed = False
    try:
        # Only what the form shows (a schema default must not overwrite a field it does not);
        # contacts are changed one by one below, keeping their ids.
        data = {key: value for key, value in ResidentIn().load(raw).items() if key in raw}
    except ValidationError as exc:
        general += _put_resident_errors(form, exc.messages)
        failed, data = True, {}
    changes = []
    owned = {c.id: c for c in resident.contacts}
    for entry in (e.form for e in form.contacts):
        contact_id = entry.contact_id.data
        if contact_id and (not contact_id.isdigit() or int(contact_id) not in owned):
            abort(400)
        contact = owned.get(int(contact_id)) if contact_id else None
        if contact is not None and entry.remove.data:
            changes.append((entry, contact, None))
            continue
        if contact is None and entry.is_blank():
            continue
        try:
            changes.append((entry, contact, ContactIn().load(_contact_payload(entry))))
        except ValidationError as exc:
            general += put_errors(entry, exc.messages)
            failed = True
    if not failed:
        try:
            failed = _apply_edit(resident, data, changes, general)
        except DomainError as exc:  # a rule on the resident itself (reachability, a clash)
            general += _put_resident_errors(form, exc.errors) if exc.errors else [localise(exc.message)]
            failed = True
    if failed:
        db.session.rollback()
        return _render_form(form, resident, general, 422)
    db.session.commit()
    flash(_("%(name)sさんの登録内容を保存しました。", name=resident.name), "success")
    return redirect(url_for("residents.show", resident_id=resident.id))


def _apply_edit(resident: Resident, data: dict[str, Any],
                changes: list[tuple[ContactForm, Contact | None, dict[str, Any] | None]],
                general: list[str]) -> bool:
    """The resident's fields, then each contact, through the API's services; True if refused."""
    service.update_resident(resident, data)
    audit("resident.update", resident, {"fields": sorted(data)})
    for entry, contact, contact_data in changes:
        try:
            if contact_data is None and contact is not None:
                audit("contact.delete", contact)
                service.delete_contact(contact)
            elif contact is None and contact_data is not None:
                audit("contact.create", service.add_contact(resident, contact_data))
            elif contact is not None and contact_data is not None:
                service.update_contact(contact, contact_data)
                audit("contact.update", contact, {"fields": sorted(contact_data)})
        except DomainError as exc:
            general += put_errors(entry, exc.errors) if exc.errors else [localise(exc.message)]
            return True
    return False


@blueprint.post("/residents/<id:resident_id>/pause")
@requires("write")
def pause(resident_id: int) -> Any:
    resident = resident_or_404(resident_id)
    form = PauseForm()
    raw = blank_to_none({"from": form.starts_on.data, "until": form.until.data,
                         "reason": form.reason.data})
    try:
        data = PauseIn().load({key: value for key, value in raw.items() if value is not None})
        created = service.pause_resident(resident, data["until"], data.get("from_"), data.get("reason"))
    except (ValidationError, DomainError) as exc:
        db.session.rollback()
        errors = exc.messages if isinstance(exc, ValidationError) else exc.errors
        general = put_errors(form, errors or {}, {"from": "starts_on"})
        if not errors:
            general.append(localise(getattr(exc, "message", str(exc))))
        for message in general:
            flash(message, "error")
        return _render_resident(resident, form, 422)
    audit("resident.pause", resident, {"from": str(created.starts_on), "until": str(created.until)})
    db.session.commit()
    flash(_("安否確認を休止しました。%(until)sから再開します。", until=long_date(created.until)), "success")
    return redirect(url_for("residents.show", resident_id=resident.id))


@blueprint.post("/residents/<id:resident_id>/link-code")
@requires("write")
def renew_link_code(resident_id: int) -> Any:
    """A new LINE link code, when the old one expired or was lost; the old one stops working."""
    resident = resident_or_404(resident_id)
    try:
        service.issue_link_code(resident, utcnow())
    except DomainError:
        db.session.rollback()
        flash(_("LINEは連携済みです。"), "error")
        return redirect(url_for("residents.show", resident_id=resident.id))
    audit("resident.link_code", resident)
    db.session.commit()
    flash(_("新しい連携コード %(code)s を発行しました。%(day)sまで有効です。", code=resident.link_code,
            day=long_date(resident.link_code_expires_at)), "success")
    return redirect(url_for("residents.show", resident_id=resident.id))


@blueprint.post("/residents/<id:resident_id>/resume")
@requires("write")
def resume(resident_id: int) -> Any:
    resident = resident_or_404(resident_id)
    service.resume_resident(resident)
    audit("resident.resume", resident)
    db.session.commit()
    flash(_("安否確認を再開しました。次の予定から送ります。"), "success")
    return redirect(url_for("residents.show", resident_id=resident.id))
