"""Immediate safety rounds (一斉安否確認): start one to a group or everyone, watch its live tally.

Starting a round is the API's sequence (RoundIn, the rounds service, the audit event, then the
queue); the round page's figures — the tally, its breakdown by group and area, and who has not
answered with their vulnerability notes — are refilled from `tally.json` every few seconds.
Escalating is the service's: pressing it twice opens no incident twice.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import func, select

from admin_ui import submissions
from admin_ui.audit_trail import audit
from admin_ui.earthquake_settings import shindo
from admin_ui.i18n import short_time
from admin_ui.records import found_or_404
from admin_ui.schema_forms import Errors, domain_errors, flatten, integer_or_text
from admin_ui.session import requires, tenant_blueprint, visible_residents
from admin_ui.support import phone_display
from admin_ui.views.earthquakes import decision, reports_by_event
from mimamori.extensions import db
from schemas.rounds import RoundIn
from tenants.errors import DomainError
from tenants.models import Check, EarthquakeTrigger, Group, GroupMember, Resident, Round, User
from tenants.services import rounds as service
from tenants.types import utcnow

blueprint = tenant_blueprint("rounds", __name__)
blueprint.context_processor(lambda: {"shindo": shindo, "submission_token": submissions.new_token})

REFRESH_SECONDS = 3
NAMES_SHOWN = 200
TALLY_FIELDS = ("targeted", "answered", "pending", "missed", "failed")
INCIDENT_STATES = {"open": _l("通知中"), "acknowledged": _l("対応中"), "resolved": _l("解決済み")}


def _targets() -> list[tuple[Any, str]]:
    """Everyone, then each group, with how many residents each reaches."""
    everyone = db.session.scalar(select(func.count(Resident.id))) or 0
    counts = dict(db.session.execute(select(GroupMember.group_id, func.count())
                                     .group_by(GroupMember.group_id)).all())
    groups = db.session.execute(select(Group.id, Group.name).order_by(Group.name)).all()
    return [("", _("全員(%(n)s人)", n=everyone))] + [
        (group_id, _("%(name)s(%(n)s人)", name=name, n=counts.get(group_id, 0)))
        for group_id, name in groups]


def _index(values: dict[str, str], errors: Errors, status: int = 200) -> Any:
    rounds = db.session.scalars(select(Round).order_by(Round.id.desc()).limit(50)).all()
    group_names = dict(db.session.execute(select(Group.id, Group.name)).all())
    return render_template("rounds/index.html", values=values, errors=errors, targets=_targets(),
                           group_names=group_names,
                           rounds=[service.tally(r) for r in rounds]), status


@blueprint.get("/rounds")
@requires("write")
def index() -> Any:
    return _index({"response_window_minutes": "180"}, {})


@blueprint.post("/rounds")
@requires("write")
def start() -> Any:
    """Send a check with this message to every resident of the group (or everyone) at once."""
    from worker.clock import enqueue_or_leave_to_clock

    values = {key: request.form.get(key, "") for key in ("group_id", "message",
                                                         "response_window_minutes")}
    body = {"group_id": integer_or_text(values["group_id"]), "message": values["message"],
            "response_window_minutes": integer_or_text(values["response_window_minutes"])}
    if body["response_window_minutes"] is None:
        del body["response_window_minutes"]
    try:
        data = RoundIn().load(body)
    except ValidationError as exc:
        return _index(values, flatten(exc.messages), 422)
    repeat = submissions.repeated("rounds.show", "round_id", "rounds.index",
                                  _("この一斉安否確認はすでに開始しています。二度は送りません。"))
    if repeat is not None:
        return repeat
    try:
        round_, planned = service.start_round(
            g.tenant, data["message"], data["group_id"], utcnow(), user_id=current_user.id,
            window_minutes=data["response_window_minutes"])
    except DomainError as exc:
        db.session.rollback()
        submissions.release()
        return _index(values, domain_errors(exc), 422)
    audit("round.start", round_, detail={"targeted": round_.targeted})
    db.session.commit()
    submissions.created(round_.id)
    enqueue_or_leave_to_clock(g.tenant.id, planned.batch_keys, f"round {round_.id}")
    flash(_("一斉安否確認を開始しました(対象 %(n)s 人)。", n=round_.targeted), "success")
    return redirect(url_for("rounds.show", round_id=round_.id))


def _rate(counts: dict[str, int]) -> str:
    return f"{counts['answered'] / counts['targeted'] * 100:.0f}%" if counts["targeted"] else "—"


def _breakdown(round_: Round) -> dict[str, Any]:
    """The tally per community group, per area, and of those in no area, each row with its
    figures under "<row key>-<figure>" for the page's live refresh."""
    groups, areas, without_area = service.by_group(round_)
    rows = {"groups": [], "areas": []}
    for part, tallies in (("groups", groups), ("areas", areas)):
        for t in tallies:
            rows[part].append({"key": f"group-{t['group_id']}", "name": t["name"], "rate": _rate(t),
                               **{k: t[k] for k in TALLY_FIELDS}})
    rows["without_area"] = {"key": "without-area", "rate": _rate(without_area),
                            **{k: without_area[k] for k in TALLY_FIELDS}}
    flat = {f"{row['key']}-{k}": row[k] for row in [*rows["groups"], *rows["areas"],
                                                      rows["without_area"]]
            for k in (*TALLY_FIELDS, "rate")}
    return {"rows": rows, "flat": flat}


def _waiting(round_: Round, visible: set[int]) -> list[dict[str, Any]]:
    """Who has not answered, with their vulnerability notes: the first NAMES_SHOWN of those this
    user may see, read from the service a page at a time (a commissioner's few are spread out)."""
    group_names = dict(db.session.execute(select(Group.id, Group.name)).all())
    found: list[dict[str, Any]] = []
    after = None
    while len(found) < NAMES_SHOWN:
        page = service.unanswered(round_, after, NAMES_SHOWN)
        found += [row for row in page[:NAMES_SHOWN] if row["resident_id"] in visible]
        if len(page) <= NAMES_SHOWN:
            break
        after = page[NAMES_SHOWN - 1]["check_id"]
    return [{"name": row["name"], "name_kana": row["name_kana"] or "",
             "href": url_for("residents.show", resident_id=row["resident_id"]),
             "groups": "、".join(group_names[g] for g in row["group_ids"] if g in group_names),
             "notes": row["notes"] or "", "phone": phone_display(row["phone"]),
             "incident": str(INCIDENT_STATES.get(row["incident_status"] or "", ""))}
            for row in found[:NAMES_SHOWN]]


def _figures(round_: Round) -> dict[str, Any]:
    """The tally, its breakdown and who has not answered yet (a commissioner sees only their
    residents)."""
    tally = service.tally(round_)
    rate = _rate(tally)
    waiting = visible_residents(
        select(Resident.name).join(Check, Check.resident_id == Resident.id)
        .where(Check.round_id == round_.id, Check.answered_at.is_(None))
        .order_by(Resident.name_kana, Resident.name))
    names = db.session.scalars(waiting.limit(NAMES_SHOWN + 1)).all()
    visible = set(db.session.scalars(visible_residents(
        select(Resident.id).join(Check, Check.resident_id == Resident.id)
        .where(Check.round_id == round_.id, Check.answered_at.is_(None)))))
    unanswered = len(visible)
    shown = "、".join(names[:NAMES_SHOWN]) or _("全員から応答がありました。")
    if unanswered > NAMES_SHOWN:
        shown += _(" ほか %(n)s 人", n=unanswered - NAMES_SHOWN)
    return {**{key: tally[key] for key in TALLY_FIELDS}, **_breakdown(round_)["flat"],
            "rate": rate, "unanswered": unanswered, "unanswered_names": shown,
            "waiting": _waiting(round_, visible), "updated_at": short_time(utcnow())}


def _earthquakes(round_: Round) -> list[dict[str, Any]]:
    """The earthquakes (JMA events) that started this round or were folded into it."""
    triggers = db.session.scalars(select(EarthquakeTrigger).where(
        EarthquakeTrigger.round_id == round_.id).order_by(EarthquakeTrigger.report_at)).all()
    reports = reports_by_event([t.event_id for t in triggers])
    return [{"trigger": t, "decision": decision(t), "reports": reports.get(t.event_id, [])}
            for t in triggers]


@blueprint.get("/rounds/<id:round_id>")
@requires("read")
def show(round_id: int) -> Any:
    round_ = found_or_404(service.get_round, round_id)
    group = db.session.get(Group, round_.group_id) if round_.group_id else None
    starter = db.session.get(User, round_.created_by_user_id) if round_.created_by_user_id else None
    # The page lists the silent residents' notes and phones: the audit log says who saw them.
    audit("round.view", round_, detail={"page": "round"})
    db.session.commit()
    return render_template("rounds/show.html", round=round_, group=group, starter=starter,
                           figures=_figures(round_), breakdown=_breakdown(round_)["rows"],
                           earthquakes=_earthquakes(round_), refresh_seconds=REFRESH_SECONDS)


@blueprint.get("/rounds/<id:round_id>/tally.json")
@requires("read")
def tally(round_id: int) -> Any:
    """The live figures of the round page, as JSON for its data-refresh-url."""
    return jsonify(_figures(found_or_404(service.get_round, round_id)))


@blueprint.post("/rounds/<id:round_id>/escalate")
@requires("write")
def escalate(round_id: int) -> Any:
    """Start the normal alert chain for everyone who has not answered (an incident each); the
    service opens nothing twice, so a second press only says so."""
    round_ = found_or_404(service.get_round, round_id)
    escalation = service.escalate(round_, utcnow())
    audit("round.escalate", round_, detail={"opened": escalation["opened"]})
    db.session.commit()
    if escalation["opened"]:
        flash(_("応答がない %(n)s 人について通知順序を開始しました(未確認案件 %(n)s 件)。",
                n=escalation["opened"]), "success")
    elif escalation["unanswered"]:
        flash(_("通知順序はすでに開始しています。新しく開いた未確認案件はありません。"), "success")
    else:
        flash(_("全員から応答がありました。通知順序は開始していません。"), "success")
    return redirect(url_for("rounds.show", round_id=round_.id))
