"""The audit log (操作記録): who viewed, changed or exported whose data in this tenant.

Audit events are not tenant-scoped rows (platform events have no tenant), so every query here
names this tenant explicitly.
"""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from admin_ui.session import requires, tenant_blueprint
from mimamori.extensions import db
from tenants.models import (
    AlertChain,
    ApiToken,
    AuditEvent,
    Check,
    CheckPolicy,
    Contact,
    Group,
    Incident,
    Resident,
    Round,
    User,
)

blueprint = tenant_blueprint("audit", __name__)

PAGE_SIZE = 50
# Known actions as staff read them; others are shown by their code.
ACTIONS = {
    "resident.view": _l("利用者を閲覧"), "resident.create": _l("利用者を登録"),
    "resident.update": _l("利用者を変更"), "resident.delete": _l("利用者を削除"),
    "resident.pause": _l("見守りを一時停止"), "resident.resume": _l("見守りを再開"),
    "resident.link_code": _l("LINE連携コードを発行"),
    "resident.import": _l("利用者を取り込み"), "resident.export": _l("利用者を出力"),
    "residents.export": _l("利用者一覧を出力"),
    "contact.create": _l("緊急連絡先を登録"), "contact.update": _l("緊急連絡先を変更"),
    "contact.delete": _l("緊急連絡先を削除"),
    "group.create": _l("グループを作成"), "group.update": _l("グループを変更"),
    "group.delete": _l("グループを削除"),
    "policy.create": _l("見守り設定を作成"), "policy.update": _l("見守り設定を変更"),
    "policy.delete": _l("見守り設定を削除"),
    "chain.create": _l("通知順序を作成"), "chain.update": _l("通知順序を変更"),
    "chain.delete": _l("通知順序を削除"),
    "round.start": _l("一斉安否確認を開始"), "check.answer": _l("応答を記録"),
    "incident.view": _l("未確認案件を閲覧"), "incident.acknowledge": _l("未確認案件を対応中に"),
    "incident.resolve": _l("未確認案件を解決"), "incident.note": _l("未確認案件にメモ"),
    "stats.export": _l("月次統計を出力"), "simulator.answer": _l("シミュレーターで応答"),
    "staff.create": _l("職員を登録"), "token.issue": _l("APIトークンを発行"),
    "staff.contact": _l("職員の連絡先を変更"), "staff.on_duty": _l("職員を当番に"),
    "staff.off_duty": _l("職員を当番から外す"), "staff.rota_add": _l("当番表に追加"),
    "staff.rota_remove": _l("当番表から削除"),
    "tenant.create": _l("自治体を作成"), "tenant.update": _l("自治体の設定を変更"),
    "auth.login": _l("ログイン"), "auth.failed": _l("ログイン失敗"),
    "auth.totp_enrolled": _l("2段階認証を設定"), "auth.password_changed": _l("パスワードを変更"),
    "demo.seed": _l("デモデータを作成"),
}
TARGET_TYPES = {"Resident": _l("利用者"), "Contact": _l("緊急連絡先"), "Group": _l("グループ"),
                "CheckPolicy": _l("見守り設定"), "AlertChain": _l("通知順序"),
                "Round": _l("一斉安否確認"), "Check": _l("安否確認"), "Incident": _l("未確認案件"),
                "User": _l("職員"), "ApiToken": _l("APIトークン"), "Tenant": _l("自治体")}


def action_label(action: str) -> str:
    label = ACTIONS.get(action)
    return f"{label}" if label is not None else action


def _names(events: list[AuditEvent]) -> dict[tuple[str, int], str]:
    """What each event's target is called now (whose data), looked up per type in one query."""
    wanted: dict[str, set[int]] = {}
    for event in events:
        if event.target_type and event.target_id is not None:
            wanted.setdefault(event.target_type, set()).add(event.target_id)
    names: dict[tuple[str, int], str] = {}

    def collect(kind: str, statement: Any) -> None:
        for target_id, name in db.session.execute(statement):
            names[(kind, target_id)] = name

    simple = {"Resident": Resident, "Group": Group, "CheckPolicy": CheckPolicy,
              "AlertChain": AlertChain}
    for kind, model in simple.items():
        if wanted.get(kind):
            collect(kind, select(model.id, model.name).where(model.id.in_(wanted[kind])))
    if wanted.get("Contact"):
        collect("Contact", select(Contact.id, Contact.name + " (" + Resident.name + ")")
                .join(Resident, Resident.id == Contact.resident_id)
                .where(Contact.id.in_(wanted["Contact"])))
    for kind, model in (("Incident", Incident), ("Check", Check)):
        if wanted.get(kind):
            collect(kind, select(model.id, Resident.name).join(
                Resident, Resident.id == model.resident_id).where(model.id.in_(wanted[kind])))
    if wanted.get("Round"):
        collect("Round", select(Round.id, Round.message).where(Round.id.in_(wanted["Round"])))
    names[("Tenant", g.tenant.id)] = g.tenant.name
    if wanted.get("User"):
        collect("User", select(User.id, User.email).where(
            User.id.in_(wanted["User"]), User.tenant_id == g.tenant.id))
    if wanted.get("ApiToken"):
        collect("ApiToken", select(ApiToken.id, ApiToken.name).where(
            ApiToken.id.in_(wanted["ApiToken"]), ApiToken.tenant_id == g.tenant.id))
    return names


def _target(event: AuditEvent, names: dict[tuple[str, int], str]) -> str:
    if event.target_type is None:
        detail = event.detail or {}
        return str(detail.get("month") or "")
    kind = str(TARGET_TYPES.get(event.target_type, event.target_type))
    if event.target_id is None:
        return kind
    name = names.get((event.target_type, event.target_id))
    if name is None:
        return _("%(kind)s #%(id)s(削除済み)", kind=kind, id=event.target_id)
    return f"{kind} {name if len(name) <= 30 else name[:29] + '…'}"


@blueprint.get("/audit")
@requires("manage")
def index() -> Any:
    action = request.args.get("action", "").strip()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    mine = AuditEvent.tenant_id == g.tenant.id
    statement = select(AuditEvent).where(mine)
    if action:
        statement = statement.where(AuditEvent.action == action)
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    events = db.session.scalars(statement.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    user_ids = {e.actor_user_id for e in events if e.actor_user_id}
    token_ids = {e.actor_token_id for e in events if e.actor_token_id}
    users = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
                 .all()) if user_ids else {}
    tokens = dict(db.session.execute(select(ApiToken.id, ApiToken.name).where(
        ApiToken.id.in_(token_ids))).all()) if token_ids else {}
    names = _names(events)
    rows = []
    for event in events:
        if event.actor_user_id:
            actor = users.get(event.actor_user_id, _("削除された職員"))
            if event.actor_token_id:
                actor += " " + _("(APIトークン「%(name)s」)", name=tokens.get(event.actor_token_id, ""))
        elif event.actor_token_id:
            actor = _("APIトークン「%(name)s」", name=tokens.get(event.actor_token_id) or "—")
        else:
            actor = _("システム")
        rows.append({"event": event, "actor": actor, "action": action_label(event.action),
                     "target": _target(event, names)})
    present = db.session.scalars(select(AuditEvent.action).where(mine).distinct()).all()
    choices = sorted(((a, action_label(a)) for a in present), key=lambda pair: pair[1])
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render_template("audit/index.html", rows=rows, action=action, choices=choices,
                           page=page, pages=pages, total=total)
