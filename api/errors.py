"""Errors as RFC 9457 problem details (`application/problem+json`) with per-field `errors`."""

from __future__ import annotations

import http
from typing import Any

import marshmallow
from flask import Response, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import fields
from werkzeug.exceptions import HTTPException

from tenants.errors import DomainError

PROBLEM_JSON = "application/problem+json"


class Problem(marshmallow.Schema):
    """An error (RFC 9457 problem details); `errors` names each refused field with its reasons."""

    class Meta:
        unknown = marshmallow.INCLUDE  # extension members, e.g. an import's row counts

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Entity"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(metadata={"example": "The request has invalid fields: phone"})
    errors = fields.Raw(metadata={
        "description": "Per field (nested fields nest), the reasons it was refused.",
        "example": {"phone": ["Not a valid phone number: '12'."]}})


def problem(status: int, title: str, detail: str | None = None,
            errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_errors(messages: Any) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {...}}); callers want the fields themselves."""
    if not isinstance(messages, dict):
        return {"_body": messages}
    flattened: dict[str, Any] = {}
    for location, errors in messages.items():
        if location in {"json", "query", "form", "files", "headers", "view_args"} and isinstance(
            errors, dict
        ):
            for field, value in errors.items():
                flattened["_body" if field == "_schema" else field] = value
        elif location in {"json", "query"}:
            flattened["_body"] = errors
        else:
            flattened[location] = errors
    return flattened


def _is_api_request() -> bool:
    return request.path.startswith(("/api/", "/webhooks/"))


def _exception_headers(error: HTTPException) -> dict[str, str]:
    """The headers the exception carries itself: `Allow` on a 405, `Retry-After` on a 503 or 429,
    `WWW-Authenticate` on a 401 (the body is ours, so not its Content-Type)."""
    return {name: value for name, value in error.get_headers()
            if name.lower() not in {"content-type", "content-length"}}


class ProblemApi(Api):
    """flask-smorest's Api answering every error under /api and /webhooks as problem+json, and
    documenting them so: every operation's default response is a `Problem`."""

    ERROR_SCHEMA = Problem

    def _register_responses(self) -> None:
        """flask-smorest's own, with our content type: it documents every error response
        (each status and the default) as application/json, which is not what we send."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not 100 <= status < 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error, as problem+json.", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Any:
        if not _is_api_request():
            return error
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or (_field_errors(data["messages"]) if "messages" in data else None)
        detail = data.get("message") or error.description
        if errors and error.code == 422:
            detail = "The request has invalid fields: " + ", ".join(sorted(errors))
        headers = {**_exception_headers(error), **(data.get("headers") or {})}
        return problem(error.code or 500, error.name, detail, errors, headers)


def handle_domain_error(error: DomainError) -> Response:
    return problem(error.status, _TITLES.get(error.status, "Error"), error.message, error.errors)


_TITLES = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity"}
