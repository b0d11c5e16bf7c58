"""Errors as RFC 9457 problem details (`application/problem+json`) with per-field `errors`."""

from __future__ import annotations

from typing import Any

from flask import Response, json, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from tenants.errors import DomainError

PROBLEM_JSON = "application/problem+json"


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


class ProblemApi(Api):
    """flask-smorest's Api answering every error under /api and /webhooks as problem+json."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        if not _is_api_request():
            return error
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or (_field_errors(data["messages"]) if "messages" in data else None)
        detail = data.get("message") or error.description
        if errors and error.code == 422:
            detail = "The request has invalid fields: " + ", ".join(sorted(errors))
        # The exception's own headers (Retry-After of a 503, Allow of a 405) go along.
        headers = {name: value for name, value in error.get_headers()
                   if name.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        return problem(error.code or 500, error.name, detail, errors, headers)


def handle_domain_error(error: DomainError) -> Response:
    return problem(error.status, _TITLES.get(error.status, "Error"), error.message, error.errors)


_TITLES = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity"}
