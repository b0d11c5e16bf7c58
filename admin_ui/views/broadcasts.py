"""Broadcasts (お知らせ配信): information to a group or everyone, composed, confirmed, then sent.

Sending is the API's sequence (BroadcastIn, the broadcasts service, the audit event, then the
queue). Before that, the confirmation page shows whom the message will reach on which channel,
each person's first working channel as sending chooses it. The broadcast's page refills its
delivery counts from `broadcasts.counts` every few seconds, as the round page does its tally.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import func, select

from admin_ui import submissions
from admin_ui.audit_trail import audit
from admin_ui.i18n import short_time
from admin_ui.labels import DELIVERY_STATUS_LABELS
from admin_ui.records import found_or_404
from admin_ui.schema_forms import Errors, domain_errors, flatten, integer_or_text
from admin_ui.session import requires, tenant_blueprint
from admin_ui.support import equip, paginate
from mimamori.extensions import db
from schemas.broadcasts import MAX_MESSAGE, BroadcastIn
from tenants import messages
from tenants.errors import DomainError, NotFound
from tenants.models import Broadcast, Group, GroupMember, Resident, User
from tenants.services import broadcasts as service
from tenants.services import groups
from tenants.services.deliveries import first_working, quiet_hours_end
from tenants.types import utcnow

blueprint = tenant_blueprint("broadcasts", __name__)
blueprint.context_processor(lambda: {"submission_token": submissions.new_token})
equip(blueprint)

REFRESH_SECONDS = 3
PAGE_SIZE = 20
CHANNELS = ("line", "sms", "voice")
# The status breakdown on a broadcast's page: waiting, then reached, then not reached.
STATUSES = tuple(s for s in (*service.PENDING, *service.SENT, *service.FAILED) if s != "answered")


def _targets() -> list[tuple[Any, str]]:
    """Everyone, then each group, with how many residents each holds."""
    everyone = db.session.scalar(select(func.count(Resident.id))) or 0
    counts = dict(db.session.execute(select(GroupMember.group_id, func.count(GroupMember.id))
                                     .group_by(GroupMember.group_id)).all())
    found = db.session.execute(select(Group.id, Group.name).order_by(Group.name)).all()
    return [("", _("全員(%(n)s人)", n=everyone))] + [
        (group_id, _("%(name)s(%(n)s人)", name=name, n=counts.get(group_id, 0)))
        for group_id, name in found]


def _values() -> dict[str, str]:
    return {key: request.form.get(key, "") for key in ("group_id", "message")}


def _checked(values: dict[str, str]) -> tuple[dict[str, Any] | None, Errors]:
    """The form as the API's schema reads it, and the group it names found in this tenant."""
    try:
        data = BroadcastIn().load({"group_id": integer_or_text(values["group_id"]),
                                   "message": values["message"]})
    except ValidationError as exc:
        return None, flatten(exc.messages)
    if data["group_id"] is not None:
        try:
            groups.get_group(data["group_id"])
        except NotFound:
            return None, {"group_id": [_("そのグループは見つかりません。")]}
    return data, {}


def _compose(values: dict[str, str], errors: Errors, status: int = 200) -> Any:
    return render_template("broadcasts/new.html", values=values, errors=errors,
                           targets=_targets(), max_message=MAX_MESSAGE), status


def _reach(group_id: int | None) -> dict[str, Any]:
    """How many the message would reach on each channel: each person's first working channel,
    chosen as sending chooses it, and those no channel reaches."""
    people = select(Resident.channels, Resident.phone, Resident.line_user_id, Resident.line_blocked)
    if group_id is not None:
        people = people.where(Resident.id.in_(
            select(GroupMember.resident_id).where(GroupMember.group_id == group_id)))
    reached: Counter[str | None] = Counter()
    for channels, phone, line_user_id, blocked in db.session.execute(people):
        choice = first_working(g.tenant, channels, phone, line_user_id, blocked)
        reached[choice[0] if choice else None] += 1
    unreachable = reached.pop(None, 0)
    return {"targeted": sum(reached.values()) + unreachable, "unreachable": unreachable,
            "channels": [(channel, reached[channel]) for channel in CHANNELS if reached[channel]]}


@blueprint.get("/broadcasts")
@requires("read")
def index() -> Any:
    page = paginate(select(Broadcast).order_by(Broadcast.id.desc()), Broadcast.id, size=PAGE_SIZE)
    group_names = dict(db.session.execute(select(Group.id, Group.name)).all())
    return render_template("broadcasts/index.html", page=page, group_names=group_names,
                           rows=[service.counts(b) for b in page.items], channels=CHANNELS)


@blueprint.route("/broadcasts/new", methods=["GET", "POST"])
@requires("write")
def compose() -> Any:
    """The form; a group's page links here with its group chosen, the confirmation page posts
    back here to change the message."""
    if request.method == "POST":
        return _compose(_values(), {})
    group_id = request.args.get("group_id", type=int)
    if group_id is not None and db.session.get(Group, group_id) is None:
        abort(404)
    return _compose({"group_id": str(group_id or ""), "message": ""}, {})


@blueprint.post("/broadcasts/confirm")
@requires("write")
def confirm() -> Any:
    """What will be sent, to how many on which channel; nothing is sent yet."""
    values = _values()
    data, errors = _checked(values)
    if data is None:
        return _compose(values, errors, 422)
    group = db.session.get(Group, data["group_id"]) if data["group_id"] else None
    reach = _reach(data["group_id"])
    texts = [(channel, messages.broadcast_text(g.tenant.name, data["message"], channel))
             for channel, _count in reach["channels"]]
    calls_wait = quiet_hours_end(g.tenant, utcnow()) if any(
        channel == "voice" for channel, _count in reach["channels"]) else None
    return render_template("broadcasts/confirm.html", data=data, group=group, reach=reach,
                           texts=texts, calls_wait=calls_wait)


@blueprint.post("/broadcasts")
@requires("write")
def send() -> Any:
    """Send the confirmed message: one delivery per resident reached, queued once committed."""
    from worker.clock import enqueue_or_leave_to_clock

    values = _values()
    data, errors = _checked(values)
    if data is None:
        return _compose(values, errors, 422)
    repeat = submissions.repeated("broadcasts.show", "broadcast_id", "broadcasts.index",
                                  _("このお知らせはすでに送信しました。二度は送りません。"))
    if repeat is not None:
        return repeat
    try:
        broadcast, batch_keys = service.send_broadcast(
            g.tenant, data["message"], data["group_id"], utcnow(), user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        submissions.release()
        return _compose(values, domain_errors(exc), 422)
    audit("broadcast.send", broadcast, detail={"targeted": broadcast.targeted})
    db.session.commit()
    submissions.created(broadcast.id)
    enqueue_or_leave_to_clock(g.tenant.id, batch_keys, f"broadcast {broadcast.id}")
    flash(_("お知らせを送信しました(対象 %(n)s 人)。", n=broadcast.targeted), "success")
    return redirect(url_for("broadcasts.show", broadcast_id=broadcast.id))


def _figures(broadcast: Broadcast) -> dict[str, Any]:
    """The delivery counts, flat, so that each has its [data-field] on the page."""
    counts = service.counts(broadcast)
    figures = {key: counts[key] for key in ("targeted", "sent", "pending", "failed", "unreachable")}
    figures.update({f"channel_{c}": counts["channels"].get(c, 0) for c in CHANNELS})
    figures.update({f"status_{s}": counts["statuses"].get(s, 0) for s in STATUSES})
    figures["updated_at"] = short_time(utcnow())
    return figures


@blueprint.get("/broadcasts/<id:broadcast_id>")
@requires("read")
def show(broadcast_id: int) -> Any:
    broadcast = found_or_404(service.get_broadcast, broadcast_id)
    group = db.session.get(Group, broadcast.group_id) if broadcast.group_id else None
    sender = (db.session.get(User, broadcast.created_by_user_id)
              if broadcast.created_by_user_id else None)
    return render_template("broadcasts/show.html", broadcast=broadcast, group=group,
                           sender=sender, figures=_figures(broadcast), channels=CHANNELS,
                           statuses=[(s, DELIVERY_STATUS_LABELS[s]) for s in STATUSES],
                           refresh_seconds=REFRESH_SECONDS)


@blueprint.get("/broadcasts/<id:broadcast_id>/counts.json")
@requires("read")
def counts(broadcast_id: int) -> Any:
    """The live counts of the broadcast's page, as JSON for its data-refresh-url."""
    return jsonify(_figures(found_or_404(service.get_broadcast, broadcast_id)))
