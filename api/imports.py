"""CSV onboarding of residents: POST /api/v1/residents/import (text/csv or a multipart upload)."""

from __future__ import annotations

from typing import Any

from flask import Response, json, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from api.auth import audit, require_tenant
from api.errors import PROBLEM_JSON, Problem, problem
from mimamori.extensions import db
from schemas.common import StrictSchema
from tenants.services import importing

# Body types that carry the CSV file itself; browsers on Windows label .csv files as Excel's.
CSV_TYPES = {"", "text/csv", "application/csv", "text/plain", "application/vnd.ms-excel",
             "application/octet-stream"}

blp = Blueprint("imports", __name__, url_prefix="/api/v1/residents/import",
                description="CSV onboarding of residents (利用者の一括登録).")
blp.before_request(require_tenant)
blueprints = [blp]


# These shapes belong to this endpoint alone, so they live beside it rather than in schemas/.
class ImportArgs(StrictSchema):
    dry_run = fields.Boolean(load_default=False,
                             metadata={"description": "Check the file and count; write nothing."})


class ImportRowError(StrictSchema):
    row = fields.Integer(metadata={"description": "The row as Excel numbers it (the header is 1)."})
    field = fields.String(allow_none=True,
                          metadata={"description": "The column's English name, e.g. phone."})
    message = fields.String()


class ImportOut(StrictSchema):
    created = fields.Integer()
    updated = fields.Integer()
    errors = fields.List(fields.Nested(ImportRowError))
    error_count = fields.Integer(metadata={"description": "All errors; `errors` lists 1000 at most."})
    dry_run = fields.Boolean()


class ImportProblem(Problem):
    """Rows refused: the problem document with the counts and `errors` as a list of rows (a bad
    query parameter is refused as any other request, `errors` naming it)."""

    created = fields.Integer()
    updated = fields.Integer()
    error_count = fields.Integer()
    dry_run = fields.Boolean()


CSV_BODY = {
    "required": True,
    "description": "The register as CSV in UTF-8 (with or without BOM) or Shift_JIS (CP932); "
                   "a `charset` in the Content-Type is honoured. See docs/csv-import.md.",
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }},
    },
}


def _upload() -> tuple[bytes, str | None] | Response:
    """The file's bytes and declared charset, from the body or the multipart field `file`."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            return problem(400, "Bad Request", "Put the CSV file in the form field `file`.")
        return upload.read(), upload.mimetype_params.get("charset")
    if request.mimetype not in CSV_TYPES:
        return problem(415, "Unsupported Media Type",
                       "Send the CSV file as text/csv, or as multipart/form-data in the field `file`.")
    return request.get_data(), request.mimetype_params.get("charset")


@blp.route("")
class ResidentImport(MethodView):
    @blp.arguments(ImportArgs, location="query")
    @blp.doc(requestBody=CSV_BODY)
    @blp.response(200, ImportOut)
    @blp.alt_response(400, schema=ImportProblem, content_type=PROBLEM_JSON,
                      description="The body is not CSV text in UTF-8 or Shift_JIS, or is empty "
                                  "(problem+json with these keys too); nothing was written.")
    @blp.alt_response(422, schema=ImportProblem, content_type=PROBLEM_JSON,
                      description="Some rows have errors, or the file's structure is broken "
                                  "(problem+json with these keys too); nothing was written.")
    def post(self, args: dict[str, Any]) -> Any:
        """Create and update residents from a CSV export of the city's register, all or nothing.

        Residents are matched by 管理番号 (external_id), else by name and birth date; matched ones
        are updated with the row's non-empty cells. `errors` names each bad row as Excel numbers
        it, with the column's English name as `field`.
        """
        upload = _upload()
        if isinstance(upload, Response):
            return upload
        try:
            result = importing.import_residents(*upload, dry_run=args["dry_run"])
        except importing.UnreadableCsv as exc:
            return _unreadable(exc, args["dry_run"])
        if result.errors:
            return _rows_refused(result)
        if not result.dry_run:
            audit("resident.import", detail={"created": result.created, "updated": result.updated})
            db.session.commit()
        return result.as_dict()


def _unreadable(exc: importing.UnreadableCsv, dry_run: bool) -> Response:
    """A file that is not CSV text at all, in the import's own shape: one error, on its row."""
    result = importing.ImportResult(dry_run=dry_run)
    result.add_error(exc.row or 1, None, exc.message)
    body = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": exc.message,
            **result.as_dict()}
    return Response(json.dumps(body, ensure_ascii=False), 400, mimetype=PROBLEM_JSON)


def _rows_refused(result: importing.ImportResult) -> Response:
    listed = len(result.errors)
    noun = "error" if result.error_count == 1 else "errors"
    detail = f"{result.error_count} {noun} in the file; nothing was written."
    if result.error_count > listed:
        detail += f" The first {listed} are listed."
    body = {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": detail, **result.as_dict()}
    return Response(json.dumps(body, ensure_ascii=False), 422, mimetype=PROBLEM_JSON)
