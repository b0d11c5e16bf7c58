"""Operator endpoints: provisioning tenants, their API tokens and their staff."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, require_operator
from api.pagination import paginate
from mimamori.extensions import db
from schemas.common import PageArgs
from schemas.tenants import (
    StaffIn,
    StaffOut,
    TenantIn,
    TenantOut,
    TenantPage,
    TenantUpdate,
    TokenIn,
    TokenOut,
)
from tenants.models import Tenant
from tenants.services import staff as staff_service
from tenants.services import tenants as tenant_service
from tenants.services import tokens

blp = Blueprint("tenants", __name__, url_prefix="/api/v1/tenants",
                description="Tenants (operators only). Secrets go in and never come out.")
blp.before_request(require_operator)
blueprints = [blp]


@blp.route("")
class Tenants(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, TenantPage)
    def get(self, args: dict[str, Any]) -> Any:
        """List tenants."""
        return paginate(select(Tenant), Tenant, args)

    @blp.arguments(TenantIn)
    @blp.response(201, TenantOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a tenant, optionally with its LINE channel and Twilio credentials."""
        tenant = tenant_service.create_tenant(data)
        audit("tenant.create", tenant, tenant_id=tenant.id)
        db.session.commit()
        return tenant


@blp.route("/<id:tenant_id>")
class TenantById(MethodView):
    @blp.response(200, TenantOut)
    def get(self, tenant_id: int) -> Any:
        return tenant_service.get_tenant(tenant_id)

    @blp.arguments(TenantUpdate(partial=True))
    @blp.response(200, TenantOut)
    def patch(self, data: dict[str, Any], tenant_id: int) -> Any:
        """Change a tenant; `line` or `twilio` given here replace (rotate) the stored credentials.

        `null` removes them; removing the last ones makes the tenant a sandbox (nothing is sent),
        which needs `"sandbox": true` besides (422 otherwise).
        """
        tenant = tenant_service.update_tenant(tenant_service.get_tenant(tenant_id), data)
        audit("tenant.update", tenant, tenant_id=tenant.id, detail={"fields": sorted(data)})
        db.session.commit()
        return tenant


@blp.route("/<id:tenant_id>/tokens")
class TenantTokens(MethodView):
    @blp.arguments(TokenIn)
    @blp.response(201, TokenOut)
    def post(self, data: dict[str, Any], tenant_id: int) -> Any:
        """Issue a tenant-scoped API token; its value is shown in this answer only."""
        tenant = tenant_service.get_tenant(tenant_id)
        token, plain = tokens.issue(tenant.id, data["name"] or "")
        audit("token.issue", token, tenant_id=tenant.id)
        db.session.commit()
        return {"id": token.id, "name": token.name, "token": plain, "tenant_id": tenant.id,
                "created_at": token.created_at}


@blp.route("/<id:tenant_id>/staff")
class TenantStaff(MethodView):
    @blp.response(200, StaffOut(many=True))
    def get(self, tenant_id: int) -> Any:
        return staff_service.tenant_staff(tenant_service.get_tenant(tenant_id).id)

    @blp.arguments(StaffIn)
    @blp.response(201, StaffOut)
    def post(self, data: dict[str, Any], tenant_id: int) -> Any:
        """Create a staff login for the tenant (admin, staff, viewer or commissioner)."""
        tenant = tenant_service.get_tenant(tenant_id)
        user = staff_service.create_user(data["email"], data["password"], data["role"],
                                         tenant.id, data.get("name"))
        audit("staff.create", user, tenant_id=tenant.id)
        db.session.commit()
        return user
