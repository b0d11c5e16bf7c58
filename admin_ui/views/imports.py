"""CSV onboarding (利用者の一括登録): upload, a dry run that lists every error, then commit.

The file waits between the two steps in Redis under its SHA-256, for this user and tenant only,
for an hour. Committing takes it out (so a double click imports once) and runs the same import
again, all or nothing: whatever changed since the preview is checked anew.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from admin_ui.audit_trail import audit
from admin_ui.messages import localise
from admin_ui.session import can, tenant_blueprint
from admin_ui.support import equip
from mimamori.extensions import db
from tenants.errors import DomainError
from tenants.services import importing
from worker.queues import redis_connection

blueprint = tenant_blueprint("imports", __name__)
equip(blueprint)

KEEP_SECONDS = 3600
DIGEST = re.compile(r"^[0-9a-f]{64}$")

# What each column holds, for the list of headers on the page (docs/csv-import.md in full).
COLUMN_NOTES = {
    "external_id": _l("市の台帳の番号。同じ番号の方は更新されます。"),
    "name": _l("必須。"),
    "name_kana": _l("ひらがな・半角カナも可。"),
    "birth_date": _l("1940-04-01、1940/4/1、昭和15年4月1日、S15.4.1 など。"),
    "phone": _l("市外局番から。090-1234-5678 など。"),
    "line_user_id": _l("通常は空欄(本人が連携コードで連携します)。"),
    "channels": _l("LINE、SMS、電話を優先順に「|」で区切る。例: LINE|電話"),
    "check_policy": _l("見守り設定の名前。"),
    "check_policy_id": _l("見守り設定の番号(名前とどちらか一方)。"),
    "groups": _l("グループ名を「|」で区切る。"),
    "address": "",
    "notes": "",
    "contact_name": _l("緊急連絡先は1行に1人。"),
    "contact_phone": "",
    "contact_relation": _l("長男、民生委員、近所の方 など。"),
    "contact_channels": _l("空欄なら SMS → 電話。"),
}


def _key(digest: str) -> str:
    return f"mimamori:ui-import:{g.tenant.id}:{current_user.id}:{digest}"


def _take(key: str) -> bytes | None:
    """Get and delete at once: of two clicks on 取り込む, only one finds the file."""
    pipe = redis_connection().pipeline(transaction=True)
    pipe.get(key)
    pipe.delete(key)
    kept, _deleted = pipe.execute()
    return kept


def _column_label(field: str | None) -> str:
    if field in importing.COLUMNS:
        labels = importing.COLUMNS[field]
        return f"{labels[0]} ({field})" if labels else field
    return field or _("(見出しのない列)")


def _errors(result: importing.ImportResult) -> list[dict[str, Any]]:
    return [{"row": e["row"], "field": _column_label(e["field"]), "message": localise(e["message"])}
            for e in result.errors]


def _page(status: int = 200, **context: Any) -> Any:
    return render_template("imports/upload.html", columns=importing.COLUMNS, notes=COLUMN_NOTES,
                           may_import=can("write"), **context), status


@blueprint.get("/import")
def upload() -> Any:
    """The upload form and the supported headers; viewers see the headers without the form."""
    return _page()


@blueprint.post("/import")
def preview() -> Any:
    if not can("write"):
        abort(403)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(422, file_error=_("CSVファイルを選んでください。"))
    raw = upload.read()
    try:
        result = importing.import_residents(raw, upload.mimetype_params.get("charset"), dry_run=True)
    except DomainError as exc:
        db.session.rollback()
        return _page(422, file_error=localise(exc.message), filename=upload.filename)
    db.session.rollback()  # a dry run writes nothing; make sure of it
    digest = hashlib.sha256(raw).hexdigest()
    if not result.error_count:
        charset = upload.mimetype_params.get("charset", "")
        redis_connection().set(_key(digest), charset.encode() + b"\n" + raw, ex=KEEP_SECONDS)
    return _page(422 if result.error_count else 200, result=result, errors=_errors(result),
                 digest=digest, filename=upload.filename)


@blueprint.post("/import/commit")
def commit() -> Any:
    if not can("write"):
        abort(403)
    digest = request.form.get("digest", "")
    if not DIGEST.match(digest):
        abort(400)
    kept = _take(_key(digest))
    if kept is None:
        return _page(409, file_error=_("確認から時間がたったため、ファイルを保持していません。"
                                       "もう一度選んでください。"))
    charset, _newline, raw = kept.partition(b"\n")
    filename = request.form.get("filename", "")[:200]
    try:
        result = importing.import_residents(raw, charset.decode() or None, dry_run=False)
    except DomainError as exc:
        db.session.rollback()
        return _page(409, file_error=localise(exc.message), filename=filename)
    if result.error_count:
        db.session.rollback()
        return _page(422, result=result, errors=_errors(result), digest=digest, filename=filename)
    audit("resident.import", detail={"created": result.created, "updated": result.updated,
                                     "file": filename, "sha256": digest})
    db.session.commit()
    return redirect(url_for("imports.done", created=result.created, updated=result.updated))


@blueprint.get("/import/done")
def done() -> Any:
    counts = {key: request.args.get(key, "0") for key in ("created", "updated")}
    return render_template("imports/done.html", **{k: int(v) if v.isdigit() else 0
                                                    for k, v in counts.items()})
