"""The alert-chain editor (通知順序): ordered steps, each a delay, a target and a channel.

Steps are rows of the form: blank rows are ignored, a row is dropped with its 削除 box, and
"行を追加" gives one more row, all without JavaScript. The API's AlertChainIn checks the steps,
so each row shows the API's errors for that step.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from admin_ui.audit_trail import audit
from admin_ui.records import delete_or_refuse, found_or_404
from admin_ui.schema_forms import Errors, domain_errors, flatten, integer_or_text
from admin_ui.session import requires, tenant_blueprint
from mimamori.extensions import db
from schemas.policies import AlertChainIn
from tenants.errors import DomainError
from tenants.models import AlertChain, AlertStep, CheckPolicy
from tenants.services import policies as service
from tenants.services import staff as staff_service
from tenants.types import utcnow

blueprint = tenant_blueprint("chains", __name__)

TARGETS = [("resident", _l("本人")), ("contacts", _l("緊急連絡先")),
           ("group_leader", _l("グループリーダー")), ("staff", _l("担当職員"))]
CHANNELS = [("line", "LINE"), ("sms", "SMS"), ("voice", _l("電話"))]
STEP_FIELDS = ("after_minutes", "target", "priority", "channel")
NEW_CHAIN_ROWS = 4
MAX_ROWS = 20
# Why a step may reach nobody right now (codes from staff_service.unreachable_steps).
REACH_NOTES = {
    "nobody_on_duty": ("warning", _l(
        "いま当番の職員がいないため、この段階は誰にも届かず飛ばされます。「職員」ページで当番か当番表を設定してください。")),
    "no_address": ("warning", _l(
        "いまの当番の職員に、連絡できる電話番号やLINEが登録されていません。「職員」ページで連絡先を登録してください。")),
    "no_leader": ("warning", _l(
        "リーダーが設定されたグループがないため、この段階は誰にも届かず飛ばされます。")),
    "per_resident": ("info", _l(
        "利用者ごとに登録された緊急連絡先に連絡します。該当する連絡先がない利用者では、この段階は飛ばされます。")),
}


def describe_step(step: AlertStep | dict[str, Any]) -> str:
    """One step as staff say it: 30分後 緊急連絡先(優先順位1) SMS."""
    get = step.get if isinstance(step, dict) else lambda key: getattr(step, key)
    target = str(dict(TARGETS).get(get("target"), get("target")))
    if get("target") == "contacts":
        target += (_("(優先順位%(n)s)", n=get("priority")) if get("priority") is not None
                   else _("(全員)"))
    channel = dict(CHANNELS).get(get("channel")) if get("channel") else None
    text = _("%(n)s分後", n=get("after_minutes")) + " " + target
    return f"{text} {channel}" if channel else text


def _blank_row() -> dict[str, str]:
    return dict.fromkeys(STEP_FIELDS, "")


def _rows_of(chain: AlertChain | None) -> list[dict[str, str]]:
    if chain is None:
        return [_blank_row() for _ in range(NEW_CHAIN_ROWS)]
    rows = [{"after_minutes": str(s.after_minutes), "target": s.target,
             "priority": "" if s.priority is None else str(s.priority),
             "channel": s.channel or ""} for s in chain.steps]
    return [*rows, _blank_row()]


def _rows_from(form: MultiDict) -> list[dict[str, str]]:
    """The rows as typed, without those whose 削除 box is ticked."""
    try:
        count = min(max(int(form.get("rows", "0")), 0), MAX_ROWS + 10)
    except ValueError:
        count = 0
    rows = []
    for index in range(count):
        if form.get(f"steps-{index}-remove"):
            continue
        rows.append({key: form.get(f"steps-{index}-{key}", "").strip() for key in STEP_FIELDS})
    return rows


def _is_blank(row: dict[str, str]) -> bool:
    return not any(row[key] for key in ("after_minutes", "target", "priority"))


def _step_body(row: dict[str, str]) -> dict[str, Any]:
    """A row as the API's step: fields left empty are left out, for the schema to name."""
    step: dict[str, Any] = {}
    after = integer_or_text(row["after_minutes"])
    if after is not None:
        step["after_minutes"] = after
    if row["target"]:
        step["target"] = row["target"]
    step["priority"] = integer_or_text(row["priority"])
    step["channel"] = row["channel"] or None
    return step


def _editor(chain: AlertChain | None, name: str, rows: list[dict[str, str]], errors: Errors,
            status: int = 200) -> Any:
    used_by = []
    if chain is not None:
        used_by = db.session.scalars(select(CheckPolicy.name).where(
            CheckPolicy.alert_chain_id == chain.id).order_by(CheckPolicy.name)).all()
    reach = {target: REACH_NOTES[code] for target, code
             in staff_service.unreachable_steps(g.tenant, utcnow()).items()}
    return render_template("chains/edit.html", chain=chain, name=name, rows=rows, errors=errors,
                           targets=TARGETS, channels=CHANNELS, used_by=used_by,
                           max_rows=MAX_ROWS, reach=reach), status


def _submit(chain: AlertChain | None) -> Any:
    name = request.form.get("name", "")
    rows = _rows_from(request.form)
    if request.form.get("action") == "add_row":
        return _editor(chain, name, [*rows, _blank_row()][:MAX_ROWS], {})
    kept = [row for row in rows if not _is_blank(row)]
    try:
        data = AlertChainIn().load({"name": name, "steps": [_step_body(r) for r in kept]})
    except ValidationError as exc:
        return _editor(chain, name, [*kept, _blank_row()], flatten(exc.messages), 422)
    try:
        if chain is None:
            saved = service.create_chain(data)
            audit("chain.create", saved)
        else:
            saved = service.update_chain(chain, data)
            audit("chain.update", saved, detail={"fields": sorted(data)})
    except DomainError as exc:
        db.session.rollback()
        return _editor(chain, name, [*kept, _blank_row()], domain_errors(exc), 422)
    db.session.commit()
    flash(_("通知順序「%(name)s」を保存しました。", name=saved.name), "success")
    return redirect(url_for("chains.index"))


@blueprint.get("/chains")
@requires("manage")
def index() -> Any:
    chains = db.session.scalars(select(AlertChain).order_by(AlertChain.name)).all()
    used = db.session.execute(select(CheckPolicy.alert_chain_id, CheckPolicy.name)
                              .where(CheckPolicy.alert_chain_id.is_not(None))
                              .order_by(CheckPolicy.name)).all()
    used_by: dict[int, list[str]] = {}
    for chain_id, policy_name in used:
        used_by.setdefault(chain_id, []).append(policy_name)
    rows = [{"chain": c, "steps": [describe_step(s) for s in c.steps],
             "used_by": used_by.get(c.id, [])} for c in chains]
    return render_template("chains/index.html", rows=rows)


@blueprint.route("/chains/new", methods=["GET", "POST"])
@requires("manage")
def create() -> Any:
    if request.method == "POST":
        return _submit(None)
    return _editor(None, "", _rows_of(None), {})


@blueprint.route("/chains/<id:chain_id>", methods=["GET", "POST"])
@requires("manage")
def edit(chain_id: int) -> Any:
    chain = found_or_404(service.get_chain, chain_id)
    if request.method == "POST":
        return _submit(chain)
    return _editor(chain, chain.name, _rows_of(chain), {})


@blueprint.post("/chains/<id:chain_id>/delete")
@requires("manage")
def delete(chain_id: int) -> Any:
    chain = found_or_404(service.get_chain, chain_id)
    return delete_or_refuse(chain, service.delete_chain, "chain.delete",
                            _("通知順序「%(name)s」を削除しました。", name=chain.name),
                            url_for("chains.index"), url_for("chains.edit", chain_id=chain_id))
