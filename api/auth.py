"""Bearer-token authentication for /api/v1, binding the caller's tenant for the request."""

from __future__ import annotations

from typing import Any

from flask import g, request

from api.errors import problem
from mimamori import logging as logs
from mimamori.extensions import db
from tenants import tenancy
from tenants.models import Tenant
from tenants.services.tokens import Principal, authenticate

PUBLIC_API_PATHS = {"/api/v1/openapi.json"}


def authenticate_request() -> Any:
    """Resolve the bearer token once per request; tenant tokens bind their tenant."""
    if not request.path.startswith("/api/v1/") or request.path in PUBLIC_API_PATHS:
        return None
    scheme, _, plain = request.headers.get("Authorization", "").partition(" ")
    principal = authenticate(plain.strip()) if scheme.lower() == "bearer" else None
    if principal is None:
        return problem(401, "Unauthorized", "A valid bearer token is required.",
                       headers={"WWW-Authenticate": 'Bearer realm="mimamori"'})
    db.session.commit()  # records last_used_at
    g.principal = principal
    if principal.tenant_id is not None:
        g.tenant_binding = tenancy.set_bound(principal.tenant_id)
        logs.bind(tenant=db.session.get(Tenant, principal.tenant_id).slug)
    return None


def release_tenant(_exc: BaseException | None) -> None:
    binding = g.pop("tenant_binding", None)
    if binding is not None:
        tenancy.reset_bound(binding)


def current_principal() -> Principal:
    return g.principal


def require_operator() -> Any:
    """Blueprint hook: operator tokens only."""
    if not current_principal().is_operator:
        return problem(403, "Forbidden", "This endpoint needs a platform operator token.")
    return None


def require_tenant() -> Any:
    """Blueprint hook: tenant tokens only (operators see no resident data through the API)."""
    if current_principal().is_operator:
        return problem(403, "Forbidden", "This endpoint needs a tenant token.")
    return None


def audit(action: str, target: Any = None, tenant_id: int | None = None,
          detail: dict[str, Any] | None = None) -> None:
    """Record what the caller did, attributed to its token and tenant."""
    from tenants.services.audit import record

    principal = current_principal()
    record(action, tenant_id=tenant_id if tenant_id is not None else principal.tenant_id,
           target=target, token_id=principal.token_id, user_id=principal.user_id, detail=detail)
