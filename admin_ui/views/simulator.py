"""The resident simulator (sandbox tenants only): what a resident received, and answering as them.

A sandbox tenant has no LINE or Twilio account, so its messages go nowhere; here staff see each
one as the resident would and answer it the way the resident would, through the same answer
rules as the webhooks (tenants.services.answers.simulated_answer).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from redis import RedisError
from sqlalchemy import select

from admin_ui.audit_trail import audit
from admin_ui.labels import PURPOSE_LABELS
from admin_ui.session import requires, tenant_blueprint
from mimamori.extensions import db
from tenants.models import Check, Delivery, Resident
from tenants.services import answers
from tenants.types import utcnow

log = logging.getLogger(__name__)

blueprint = tenant_blueprint("simulator", __name__)

SHOWN = 50
CHANNELS = {"line": "LINE", "sms": "SMS", "voice": _l("電話")}
STATUSES = {"queued": _l("送信待ち"), "retry": _l("再試行待ち"), "sending": _l("送信中"),
            "sent": _l("送信済み"), "delivered": _l("届きました"), "read": _l("既読"),
            "answered": _l("応答しました"), "blocked": _l("ブロック"), "failed": _l("届きませんでした"),
            "busy": _l("話し中"), "no_answer": _l("出ませんでした"), "canceled": _l("取り消し")}
ANSWERS = {"line": _l("元気です"), "sms": _l("「1」と返信する"), "voice": _l("1 を押す")}
# What reached the resident's phone (the answer rules accept an answer to these).
RECEIVED = ("sending", "sent", "delivered", "read")
OUTCOMES = {"answered": _l("応答しました。安否確認は「応答あり」になりました。"),
            "already_answered": _l("この安否確認には、すでに応答済みです。")}


@blueprint.before_request
def _sandbox_only() -> None:
    """Tenants with real providers have real residents answering: no simulator there."""
    if not g.tenant.is_sandbox:
        abort(404)


def _deliveries(resident: Resident) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Delivery, Check).outerjoin(Check, Check.id == Delivery.check_id)
        .where(Delivery.recipient_type == "resident", Delivery.recipient_id == resident.id)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(SHOWN)).all()
    return [{"delivery": d, "check": c, "channel": CHANNELS.get(d.channel, d.channel),
             "purpose": PURPOSE_LABELS.get(d.purpose, d.purpose),
             "status": STATUSES.get(d.status, d.status),
             "can_answer": c is not None and c.answered_at is None and d.status in RECEIVED}
            for d, c in rows]


@blueprint.get("/simulator")
@requires("write")
def index() -> Any:
    residents = db.session.execute(select(Resident.id, Resident.name).order_by(
        Resident.name_kana, Resident.name)).all()
    waiting = db.session.execute(
        select(Resident.id, Resident.name).where(Resident.id.in_(
            select(Check.resident_id).where(Check.answered_at.is_(None),
                                            Check.status.in_(("sent", "missed")))))
        .order_by(Resident.name_kana, Resident.name).limit(30)).all()
    chosen = request.args.get("resident", type=int)
    resident = db.session.get(Resident, chosen) if chosen else None
    if chosen and resident is None:
        abort(404)
    return render_template("simulator/index.html", residents=residents, waiting=waiting,
                           resident=resident,
                           deliveries=_deliveries(resident) if resident else [],
                           answers=ANSWERS)


@blueprint.post("/simulator/answer")
@requires("write")
def answer() -> Any:
    """Answer one message as its resident, by that message's channel."""
    delivery = db.session.get(Delivery, request.form.get("delivery", type=int) or 0)
    if delivery is None or delivery.recipient_type != "resident":
        abort(404)
    resident_id = delivery.recipient_id
    outcome = answers.simulated_answer(g.tenant, delivery, utcnow())
    if outcome.rejected:
        db.session.rollback()
        flash(_("この安否確認には応答できません。"), "error")
        return redirect(url_for("simulator.index", resident=resident_id))
    audit("simulator.answer", db.session.get(Resident, resident_id),
          detail={"delivery_id": delivery.id, "channel": delivery.channel,
                  "result": outcome.result})
    db.session.commit()
    if outcome.follow_up:
        from worker.clock import queue_deliveries

        try:
            queue_deliveries(g.tenant.id, outcome.follow_up, utcnow())
        except RedisError:
            log.warning("simulator: queue unavailable, the clock will send the follow-up")
    message = str(OUTCOMES.get(outcome.result, outcome.result))
    if outcome.reply:
        message += " " + _("返信:「%(text)s」", text=outcome.reply)
    flash(message, "success")
    return redirect(url_for("simulator.index", resident=resident_id))
