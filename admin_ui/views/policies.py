"""The check-policy editor (見守り設定): schedule, reminder, response window, alert chain.

The form is checked by the API's CheckPolicyIn and saved by the same service, so the editor
refuses exactly what the API refuses; "プレビュー" shows the next checks in the tenant's zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from admin_ui.audit_trail import audit
from admin_ui.records import delete_or_refuse, found_or_404
from admin_ui.schema_forms import Errors, blank_to_none, domain_errors, flatten, integer_or_text
from admin_ui.session import requires, tenant_blueprint
from mimamori.extensions import db
from schemas.policies import CheckPolicyIn, PreviewIn, schedule_as_dict
from tenants.errors import DomainError
from tenants.models import AlertChain, CheckPolicy, Resident
from tenants.services import policies as service

blueprint = tenant_blueprint("policies", __name__)

PREVIEW_COUNT = 5
WEEKDAYS = [("MO", _l("月")), ("TU", _l("火")), ("WE", _l("水")), ("TH", _l("木")),
            ("FR", _l("金")), ("SA", _l("土")), ("SU", _l("日"))]
# Fields the editor does not show keep their values when a policy is changed.
HIDDEN_FIELDS = ("voice_retries", "voice_retry_minutes")


def describe(schedule: dict[str, Any]) -> str:
    """A schedule as staff say it: 毎日 09:00, 2日ごと 21:00, 毎週 月・木 07:00."""
    if "rrule" in schedule:
        return f"RRULE {schedule['rrule']}"
    interval = int(schedule.get("interval") or 1)
    if schedule.get("freq") == "weekly":
        names = dict(WEEKDAYS)
        days = "・".join(str(names[d]) for d in schedule.get("weekdays", []) if d in names)
        every = _("毎週") if interval == 1 else _("%(n)s週ごと", n=interval)
        return f"{every} {days} {schedule.get('time', '')}"
    every = _("毎日") if interval == 1 else _("%(n)s日ごと", n=interval)
    return f"{every} {schedule.get('time', '')}"


def _values_of(policy: CheckPolicy | None) -> dict[str, Any]:
    """The form's fields as strings, from a saved policy or the defaults for a new one."""
    if policy is None:
        return {"mode": "daily", "interval_days": "1", "interval_weeks": "1", "time": "09:00",
                "weekdays": [], "reminder_after_minutes": "30", "response_window_minutes": "1380"}
    schedule = policy.schedule
    mode = "rrule" if "rrule" in schedule else schedule.get("freq", "daily")
    interval = str(schedule.get("interval") or 1)
    return {
        "name": policy.name, "mode": mode, "time": schedule.get("time", ""),
        "interval_days": interval if mode == "daily" else "1",
        "interval_weeks": interval if mode == "weekly" else "1",
        "weekdays": list(schedule.get("weekdays", [])), "rrule": schedule.get("rrule", ""),
        "starts_on": policy.starts_on.isoformat(),
        "reminder_after_minutes": "" if policy.reminder_after_minutes is None
        else str(policy.reminder_after_minutes),
        "response_window_minutes": str(policy.response_window_minutes),
        "alert_chain_id": "" if policy.alert_chain_id is None else str(policy.alert_chain_id),
    }


def _values_from(form: MultiDict) -> dict[str, Any]:
    values: dict[str, Any] = {key: form.get(key, "") for key in (
        "name", "mode", "interval_days", "interval_weeks", "time", "rrule", "starts_on",
        "reminder_after_minutes", "response_window_minutes", "alert_chain_id")}
    values["weekdays"] = form.getlist("weekdays")
    return values


def _schedule_body(values: dict[str, Any]) -> dict[str, Any]:
    """The schedule as the API takes it, from whichever way of repeating was chosen."""
    mode = values.get("mode")
    if mode == "rrule":
        return {"rrule": values.get("rrule", "")}
    if mode not in ("daily", "weekly"):
        return {}
    schedule: dict[str, Any] = {"freq": mode}
    interval = integer_or_text(values.get("interval_weeks" if mode == "weekly" else "interval_days"))
    if interval is not None:
        schedule["interval"] = interval
    if values.get("time", "").strip():
        schedule["time"] = values["time"].strip()
    if mode == "weekly" and values.get("weekdays"):
        schedule["weekdays"] = values["weekdays"]
    return schedule


def _policy_body(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": values.get("name", ""),
        "schedule": _schedule_body(values),
        "starts_on": blank_to_none(values.get("starts_on")),
        "reminder_after_minutes": integer_or_text(values.get("reminder_after_minutes")),
        "response_window_minutes": integer_or_text(values.get("response_window_minutes")),
        "alert_chain_id": integer_or_text(values.get("alert_chain_id")),
    }


def _preview(values: dict[str, Any]) -> tuple[list[datetime], Errors]:
    """The next checks of the schedule on the form, checked as the API's preview checks it."""
    try:
        data = PreviewIn().load({"schedule": _schedule_body(values),
                                 "starts_on": blank_to_none(values.get("starts_on")),
                                 "count": PREVIEW_COUNT})
    except ValidationError as exc:
        return [], flatten(exc.messages)
    instants = service.preview(schedule_as_dict(data["schedule"]), data["starts_on"], PREVIEW_COUNT)
    return [datetime.fromisoformat(i) for i in instants], {}


def _saved_preview(policy: CheckPolicy) -> list[datetime]:
    return [datetime.fromisoformat(i)
            for i in service.preview(policy.schedule, policy.starts_on, PREVIEW_COUNT)]


def _editor(policy: CheckPolicy | None, values: dict[str, Any], errors: Errors,
            preview: list[datetime] | None, status: int = 200) -> Any:
    chains = [(chain_id, name) for chain_id, name in db.session.execute(
        select(AlertChain.id, AlertChain.name).order_by(AlertChain.name))]
    followers = 0
    if policy is not None:
        followers = db.session.scalar(select(func.count(Resident.id)).where(
            Resident.check_policy_id == policy.id)) or 0
    return render_template("policies/edit.html", policy=policy, values=values, errors=errors,
                           preview=preview, chains=chains, weekdays=WEEKDAYS,
                           followers=followers), status


def _submit(policy: CheckPolicy | None) -> Any:
    values = _values_from(request.form)
    if request.form.get("action") == "preview":
        preview, errors = _preview(values)
        return _editor(policy, values, errors, preview, 200 if not errors else 422)
    schema = CheckPolicyIn() if policy is None else CheckPolicyIn(partial=HIDDEN_FIELDS)
    try:
        data = schema.load(_policy_body(values))
    except ValidationError as exc:
        return _editor(policy, values, flatten(exc.messages), None, 422)
    schedule = schedule_as_dict(data["schedule"])
    try:
        if policy is None:
            saved = service.create_policy(data, schedule)
            audit("policy.create", saved)
        else:
            saved = service.update_policy(policy, data, schedule)
            audit("policy.update", saved, detail={"fields": sorted(data)})
    except DomainError as exc:
        db.session.rollback()
        return _editor(policy, values, domain_errors(exc), None, 422)
    db.session.commit()
    flash(_("見守り設定「%(name)s」を保存しました。", name=saved.name), "success")
    return redirect(url_for("policies.index"))


@blueprint.get("/policies")
@requires("manage")
def index() -> Any:
    policies = db.session.scalars(select(CheckPolicy).order_by(CheckPolicy.name)).all()
    followers = dict(db.session.execute(
        select(Resident.check_policy_id, func.count(Resident.id))
        .where(Resident.check_policy_id.is_not(None)).group_by(Resident.check_policy_id)).all())
    rows = []
    for policy in policies:
        upcoming = service.preview(policy.schedule, policy.starts_on, 1)
        rows.append({"policy": policy, "schedule": describe(policy.schedule),
                     "followers": followers.get(policy.id, 0),
                     "next": datetime.fromisoformat(upcoming[0]) if upcoming else None})
    return render_template("policies/index.html", rows=rows)


@blueprint.route("/policies/new", methods=["GET", "POST"])
@requires("manage")
def create() -> Any:
    if request.method == "POST":
        return _submit(None)
    return _editor(None, _values_of(None), {}, None)


@blueprint.route("/policies/<id:policy_id>", methods=["GET", "POST"])
@requires("manage")
def edit(policy_id: int) -> Any:
    policy = found_or_404(service.get_policy, policy_id)
    if request.method == "POST":
        return _submit(policy)
    return _editor(policy, _values_of(policy), {}, _saved_preview(policy))


@blueprint.post("/policies/<id:policy_id>/delete")
@requires("manage")
def delete(policy_id: int) -> Any:
    policy = found_or_404(service.get_policy, policy_id)
    return delete_or_refuse(policy, service.delete_policy, "policy.delete",
                            _("見守り設定「%(name)s」を削除しました。", name=policy.name),
                            url_for("policies.index"), url_for("policies.edit", policy_id=policy_id))
