"""The REST API under /api/v1 (flask-smorest), its authentication and its error shape."""

from __future__ import annotations

from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, request

from api.auth import authenticate_request, release_tenant
from api.errors import ProblemApi, handle_domain_error, problem
from api.routing import IdConverter, id_parameter
from tenants.errors import DomainError

MAX_JSON_BYTES = 1024 * 1024
# No body this API takes nests deeper than a few levels; deeper is an attack on the parser.
MAX_JSON_DEPTH = 32
BODY_METHODS = {"POST", "PUT", "PATCH"}
# Endpoints that take something other than JSON.
NON_JSON_PATHS = ("/api/v1/residents/import", "/api/v1/earthquakes/jma")


def _depth(value: Any) -> int:
    """How deep a parsed JSON value nests (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 0)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            if depth + 1 > MAX_JSON_DEPTH:
                break
            level.extend((child, depth + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _require_json_body() -> Any:
    if request.method not in BODY_METHODS or not request.path.startswith("/api/v1/"):
        return None
    if request.path.startswith(NON_JSON_PATHS):
        return None
    # Also bounds a body sent without Content-Length (chunked): reading past it answers 413.
    request.max_content_length = MAX_JSON_BYTES
    if (request.content_length or 0) > MAX_JSON_BYTES:
        return problem(413, "Content Too Large", f"JSON bodies are limited to {MAX_JSON_BYTES} bytes.")
    if request.content_length and not request.is_json:
        return problem(415, "Unsupported Media Type", "Send the body as application/json.")
    if request.is_json:
        try:
            # Malformed JSON gives None here; the view's parser answers 400 for it.
            too_deep = _depth(request.get_json(silent=True)) > MAX_JSON_DEPTH
        except RecursionError:  # the parser's own limit, far deeper than ours
            too_deep = True
        if too_deep:
            return problem(400, "Bad Request",
                           f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    return None


def _schema_name(schema: Any) -> str:
    """Partial (PATCH) variants of a schema get their own component name."""
    name = resolve_schema_cls(schema).__name__
    if not isinstance(schema, type) and schema.partial:
        name += "Patch"
    return name


def init_api(app: Flask) -> ProblemApi:
    app.config.setdefault("API_TITLE", "Mimamori")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.json.ensure_ascii = False  # Japanese stays readable in responses

    # Ids in paths are `<id:…>`: one the database cannot hold is no such row (404).
    app.url_map.converters["id"] = IdConverter
    api = ProblemApi(app, spec_kwargs={
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=_schema_name),
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    })
    api.register_converter(IdConverter, id_parameter)
    from api import (
        broadcasts,
        checks,
        earthquakes,
        groups,
        imports,
        policies,
        residents,
        rounds,
        stats,
        tenants,
    )

    for module in (tenants, residents, imports, groups, policies, checks, rounds, broadcasts,
                   earthquakes, stats):
        for blueprint in module.blueprints:
            # Blueprint names are app-wide and the dashboard names its pages after the same
            # resources (rounds.index, residents.index): the API's endpoints are "api-rounds.…".
            api.register_blueprint(blueprint, name=f"api-{blueprint.name}")

    app.before_request(_require_json_body)
    app.before_request(authenticate_request)
    app.teardown_request(release_tenant)
    app.register_error_handler(DomainError, handle_domain_error)
    return api
