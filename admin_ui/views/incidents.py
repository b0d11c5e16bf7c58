"""Incidents (未確認案件): the list, open ones first, and one incident's timeline and actions."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import case, select
from wtforms import RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from admin_ui.audit_trail import audit
from admin_ui.labels import CHANNEL_LABELS, OUTCOME_LABELS
from admin_ui.session import can, tenant_blueprint, visible_residents
from admin_ui.support import equip, error_summary, paginate
from mimamori.extensions import db
from tenants.errors import DomainError
from tenants.models import Check, Incident, Resident
from tenants.models.engine import OUTCOMES
from tenants.services import checks as check_service
from tenants.services import incidents as service
from tenants.types import utcnow

blueprint = tenant_blueprint("incidents", __name__)
equip(blueprint)

FILTERS = {
    "unresolved": (_l("未解決(未対応・対応中)"), ("open", "acknowledged")),
    "open": (_l("未対応"), ("open",)),
    "acknowledged": (_l("対応中"), ("acknowledged",)),
    "resolved": (_l("解決済み"), ("resolved",)),
    "all": (_l("すべて"), ("open", "acknowledged", "resolved")),
}


class AcknowledgeForm(FlaskForm):
    by = StringField(_l("対応する人"), validators=[
        DataRequired(message=_l("対応する人の名前を入力してください。")), Length(max=200)])
    ack_note = TextAreaField(_l("メモ(任意)"), validators=[Optional(), Length(max=2000)])


class ResolveForm(FlaskForm):
    outcome = RadioField(_l("対応結果"), choices=[SelectChoice(o, OUTCOME_LABELS[o]) for o in OUTCOMES],
                         validators=[DataRequired(message=_l("対応結果を選んでください。"))])
    resolve_note = TextAreaField(_l("対応の記録"), validators=[Optional(), Length(max=4000)])


class NoteForm(FlaskForm):
    note = TextAreaField(_l("メモ"), validators=[DataRequired(message=_l("メモを入力してください。")),
                                               Length(max=4000)])


class AnswerForm(FlaskForm):
    answer_note = TextAreaField(_l("聞き取った内容(任意)"), validators=[Optional(), Length(max=4000)])


def _incident_or_404(incident_id: int) -> tuple[Incident, Resident]:
    """Only incidents of residents this login may see; anything else is not found."""
    found = db.session.execute(visible_residents(
        select(Incident, Resident).join(Resident, Resident.id == Incident.resident_id)
        .where(Incident.id == incident_id))).first()
    if found is None:
        abort(404)
    return found[0], found[1]


def _may_respond() -> bool:
    """Staff, and commissioners on their own residents' incidents, acknowledge and add notes."""
    return can("write") or can("respond")


@blueprint.get("/incidents")
def index() -> Any:
    chosen = request.args.get("status", "unresolved")
    if chosen not in FILTERS:
        chosen = "unresolved"
    statement = visible_residents(
        select(Incident, Resident, Check).join(Resident, Resident.id == Incident.resident_id)
        .join(Check, Check.id == Incident.check_id)
        .where(Incident.status.in_(FILTERS[chosen][1])))
    resident_id = request.args.get("resident_id", "")
    if resident_id.isdigit():
        statement = statement.where(Incident.resident_id == int(resident_id))
    statement = statement.order_by(
        case({"open": 0, "acknowledged": 1}, value=Incident.status, else_=2),
        Incident.escalated.desc(),
        # Unresolved: the longest waiting first; resolved: the latest first.
        case((Incident.status == "resolved", None), else_=Incident.opened_at),
        Incident.resolved_at.desc(), Incident.id)
    page = paginate(statement, Incident.id, scalars=False)
    return render_template("incidents/index.html", page=page, filters=FILTERS, chosen=chosen)


def _render(incident: Incident, resident: Resident, status: int = 200, **forms: Any) -> Any:
    check = db.session.get(Check, incident.check_id)
    defaults = {
        "ack_form": AcknowledgeForm(by=current_user.name or current_user.email, formdata=None),
        "resolve_form": ResolveForm(formdata=None),
        "note_form": NoteForm(formdata=None),
        "answer_form": AnswerForm(formdata=None),
    }
    defaults.update(forms)
    timeline = [(event, _event_text(event)) for event in incident.events]
    return render_template("incidents/show.html", incident=incident, resident=resident,
                           check=check, timeline=timeline, may_respond=_may_respond(),
                           errors=error_summary(defaults.values()), **defaults), status


def _event_text(event: Any) -> str:
    """The engine writes some codes into its text (an outcome, an answer recorded by staff);
    staff read the word instead."""
    data = event.data or {}
    if event.kind == "resolution" and data.get("outcome") in OUTCOME_LABELS:
        outcome = data["outcome"]
        return event.detail.replace(f"対応結果: {outcome}",
                                    f"{_('対応結果')}: {OUTCOME_LABELS[outcome]}", 1)
    if event.kind == "answer" and data.get("via") == "staff":
        return event.detail.replace("(staff)", f"({CHANNEL_LABELS['staff']})", 1)
    return event.detail


@blueprint.get("/incidents/<id:incident_id>")
def show(incident_id: int) -> Any:
    incident, resident = _incident_or_404(incident_id)
    # The page discloses the resident's and their contacts' personal data; the audit log
    # names the incident by its resident.
    audit("incident.view", incident, {"resident_id": resident.id})
    db.session.commit()
    return _render(incident, resident)


def _back(incident: Incident) -> Any:
    return redirect(url_for("incidents.show", incident_id=incident.id))


@blueprint.post("/incidents/<id:incident_id>/acknowledge")
def acknowledge(incident_id: int) -> Any:
    if not _may_respond():
        abort(403)
    incident, resident = _incident_or_404(incident_id)
    form = AcknowledgeForm()
    if not form.validate():
        return _render(incident, resident, 422, ack_form=form)
    if not service.acknowledge(incident, form.by.data.strip(), utcnow(), form.ack_note.data or None):
        flash(_("この案件はすでに対応中か解決済みです。"), "error")
        return _back(incident)
    audit("incident.acknowledge", incident, {"by": form.by.data.strip()})
    db.session.commit()
    flash(_("対応中にしました。通知順序による連絡は止まりました。"), "success")
    return _back(incident)


@blueprint.post("/incidents/<id:incident_id>/resolve")
def resolve(incident_id: int) -> Any:
    if not can("write"):
        abort(403)
    incident, resident = _incident_or_404(incident_id)
    form = ResolveForm()
    if not form.validate():
        return _render(incident, resident, 422, resolve_form=form)
    try:
        service.resolve(incident, form.outcome.data, form.resolve_note.data or None,
                        current_user.id, utcnow())
    except DomainError:
        db.session.rollback()
        flash(_("この案件はすでに解決済みです。"), "error")
        return _back(incident)
    audit("incident.resolve", incident, {"outcome": form.outcome.data})
    db.session.commit()
    flash(_("「%(outcome)s」として解決しました。", outcome=OUTCOME_LABELS[form.outcome.data]), "success")
    return _back(incident)


@blueprint.post("/incidents/<id:incident_id>/notes")
def add_note(incident_id: int) -> Any:
    if not _may_respond():
        abort(403)
    incident, resident = _incident_or_404(incident_id)
    form = NoteForm()
    if not form.validate():
        return _render(incident, resident, 422, note_form=form)
    service.add_note(incident, form.note.data.strip(), utcnow())
    audit("incident.note", incident)
    db.session.commit()
    flash(_("メモを追加しました。"), "success")
    return _back(incident)


@blueprint.post("/incidents/<id:incident_id>/answer")
def answer(incident_id: int) -> Any:
    """The resident phoned or was seen: record their answer as staff (本人から連絡あり)."""
    if not can("write"):
        abort(403)
    incident, resident = _incident_or_404(incident_id)
    form = AnswerForm()
    if not form.validate():
        return _render(incident, resident, 422, answer_form=form)
    check = db.session.get(Check, incident.check_id)
    now = utcnow()
    if check is None or not check_service.answer(check, "staff", now):
        flash(_("この安否確認にはすでに応答があります。"), "error")
        return _back(incident)
    if form.answer_note.data and form.answer_note.data.strip():
        service.add_note(incident, form.answer_note.data.strip(), now)
    audit("check.answer", check, {"incident_id": incident.id})
    db.session.commit()
    flash(_("本人からの連絡を記録しました。案件は「無事」として解決しました。"), "success")
    return _back(incident)
