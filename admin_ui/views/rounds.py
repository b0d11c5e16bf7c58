"""Immediate safety rounds (一斉安否確認): start one to a group or everyone, watch its live tally.

Starting a round is the API's sequence (RoundIn, the rounds service, the audit event, then the
queue); the round page's figures are refilled from `rounds.tally` every few seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from redis import RedisError
from sqlalchemy import func, select

from admin_ui.audit_trail import audit
from admin_ui.i18n import short_time
from admin_ui.schema_forms import Errors, domain_errors, flatten, integer_or_text
from admin_ui.session import requires, tenant_blueprint, visible_residents
from mimamori.extensions import db
from schemas.rounds import RoundIn
from tenants.errors import DomainError, NotFound
from tenants.models import Check, Group, GroupMember, Resident, Round, User
from tenants.services import rounds as service
from tenants.types import utcnow

log = logging.getLogger(__name__)

blueprint = tenant_blueprint("rounds", __name__)

REFRESH_SECONDS = 3
NAMES_SHOWN = 200


def _round_or_404(round_id: int) -> Round:
    try:
        return service.get_round(round_id)
    except NotFound:
        abort(404)


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
    from worker.clock import enqueue_batches

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
    try:
        round_, planned = service.start_round(
            g.tenant, data["message"], data["group_id"], utcnow(), user_id=current_user.id,
            window_minutes=data["response_window_minutes"])
    except DomainError as exc:
        db.session.rollback()
        return _index(values, domain_errors(exc), 422)
    audit("round.start", round_, detail={"targeted": round_.targeted})
    db.session.commit()
    try:
        enqueue_batches(g.tenant.id, planned.batch_keys)
    except RedisError:
        # The deliveries are in the database; the next tick queues them.
        log.warning("round %s: queue unavailable, the clock will send it", round_.id)
    flash(_("一斉安否確認を開始しました(対象 %(n)s 人)。", n=round_.targeted), "success")
    return redirect(url_for("rounds.show", round_id=round_.id))


def _figures(round_: Round) -> dict[str, Any]:
    """The tally and who has not answered yet (a commissioner sees only their residents)."""
    tally = service.tally(round_)
    answered = tally["answered"]
    rate = f"{answered / tally['targeted'] * 100:.0f}%" if tally["targeted"] else "—"
    waiting = visible_residents(
        select(Resident.name).join(Check, Check.resident_id == Resident.id)
        .where(Check.round_id == round_.id, Check.answered_at.is_(None))
        .order_by(Resident.name_kana, Resident.name))
    names = db.session.scalars(waiting.limit(NAMES_SHOWN + 1)).all()
    unanswered = db.session.scalar(select(func.count()).select_from(
        visible_residents(select(Resident.id).join(Check, Check.resident_id == Resident.id)
                          .where(Check.round_id == round_.id, Check.answered_at.is_(None)))
        .subquery())) or 0
    shown = "、".join(names[:NAMES_SHOWN]) or _("全員から応答がありました。")
    if unanswered > NAMES_SHOWN:
        shown += _(" ほか %(n)s 人", n=unanswered - NAMES_SHOWN)
    return {**{key: tally[key] for key in ("targeted", "answered", "pending", "missed", "failed")},
            "rate": rate, "unanswered": unanswered, "unanswered_names": shown,
            "updated_at": short_time(utcnow())}


@blueprint.get("/rounds/<int:round_id>")
@requires("read")
def show(round_id: int) -> Any:
    round_ = _round_or_404(round_id)
    group = db.session.get(Group, round_.group_id) if round_.group_id else None
    starter = db.session.get(User, round_.created_by_user_id) if round_.created_by_user_id else None
    return render_template("rounds/show.html", round=round_, group=group, starter=starter,
                           figures=_figures(round_), refresh_seconds=REFRESH_SECONDS)


@blueprint.get("/rounds/<int:round_id>/tally.json")
@requires("read")
def tally(round_id: int) -> Any:
    """The live figures of the round page, as JSON for its data-refresh-url."""
    return jsonify(_figures(_round_or_404(round_id)))
