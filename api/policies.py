"""Check policies (見守り設定) with schedule previews, and alert chains (通知順序)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import audit, require_tenant
from api.pagination import paginate
from mimamori.extensions import db
from schemas.common import PageArgs
from schemas.policies import (
    AlertChainIn,
    AlertChainOut,
    AlertChainPage,
    CheckPolicyIn,
    CheckPolicyOut,
    CheckPolicyPage,
    PreviewArgs,
    PreviewIn,
    PreviewOut,
    schedule_as_dict,
)
from tenants.models import AlertChain, CheckPolicy
from tenants.services import policies as service

policies = Blueprint("check-policies", __name__, url_prefix="/api/v1/check-policies",
                     description="Check policies (見守り設定): schedule, reminder, window, chain.")
chains = Blueprint("alert-chains", __name__, url_prefix="/api/v1/alert-chains",
                   description="Alert chains (通知順序): who is told, in which order.")
for _blueprint in (policies, chains):
    _blueprint.before_request(require_tenant)
blueprints = [policies, chains]


@policies.route("")
class CheckPolicies(MethodView):
    @policies.arguments(PageArgs, location="query")
    @policies.response(200, CheckPolicyPage)
    def get(self, args: dict[str, Any]) -> Any:
        page = paginate(select(CheckPolicy), CheckPolicy, args)
        return {**page, "items": [service.with_next_occurrences(p) for p in page["items"]]}

    @policies.arguments(CheckPolicyIn)
    @policies.response(201, CheckPolicyOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a policy; times are in the tenant's zone. The answer previews the next checks."""
        policy = service.create_policy(data, schedule_as_dict(data["schedule"]))
        audit("policy.create", policy)
        db.session.commit()
        return service.with_next_occurrences(policy)


@policies.route("/preview")
class PreviewSchedule(MethodView):
    @policies.arguments(PreviewIn)
    @policies.response(200, PreviewOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Preview when a schedule would send checks, before saving it."""
        return {"occurrences": service.preview(schedule_as_dict(data["schedule"]),
                                               data.get("starts_on"), data["count"])}


@policies.route("/<id:policy_id>")
class CheckPolicyById(MethodView):
    @policies.response(200, CheckPolicyOut)
    def get(self, policy_id: int) -> Any:
        return service.with_next_occurrences(service.get_policy(policy_id))

    @policies.arguments(CheckPolicyIn(partial=True))
    @policies.response(200, CheckPolicyOut)
    def patch(self, data: dict[str, Any], policy_id: int) -> Any:
        schedule = schedule_as_dict(data["schedule"]) if "schedule" in data else None
        policy = service.update_policy(service.get_policy(policy_id), data, schedule)
        audit("policy.update", policy, detail={"fields": sorted(data)})
        db.session.commit()
        return service.with_next_occurrences(policy)

    @policies.response(204)
    def delete(self, policy_id: int) -> None:
        """Delete a policy no resident follows (refused with 409 otherwise)."""
        policy = service.get_policy(policy_id)
        audit("policy.delete", policy)
        service.delete_policy(policy)
        db.session.commit()


@policies.route("/<id:policy_id>/preview")
class PolicyPreview(MethodView):
    @policies.arguments(PreviewArgs, location="query")
    @policies.response(200, PreviewOut)
    def get(self, args: dict[str, Any], policy_id: int) -> Any:
        """The next occurrences of a saved policy, in the tenant's zone."""
        policy = service.get_policy(policy_id)
        return {"occurrences": service.preview(policy.schedule, policy.starts_on, args["count"])}


@chains.route("")
class AlertChains(MethodView):
    @chains.arguments(PageArgs, location="query")
    @chains.response(200, AlertChainPage)
    def get(self, args: dict[str, Any]) -> Any:
        return paginate(select(AlertChain), AlertChain, args)

    @chains.arguments(AlertChainIn)
    @chains.response(201, AlertChainOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a chain; each step fires `after_minutes` after the response window ends."""
        chain = service.create_chain(data)
        audit("chain.create", chain)
        db.session.commit()
        return chain


@chains.route("/<id:chain_id>")
class AlertChainById(MethodView):
    @chains.response(200, AlertChainOut)
    def get(self, chain_id: int) -> Any:
        return service.get_chain(chain_id)

    @chains.arguments(AlertChainIn(partial=True))
    @chains.response(200, AlertChainOut)
    def patch(self, data: dict[str, Any], chain_id: int) -> Any:
        """Rename a chain or replace its steps."""
        chain = service.update_chain(service.get_chain(chain_id), data)
        audit("chain.update", chain, detail={"fields": sorted(data)})
        db.session.commit()
        return chain

    @chains.response(204)
    def delete(self, chain_id: int) -> None:
        chain = service.get_chain(chain_id)
        audit("chain.delete", chain)
        service.delete_chain(chain)
        db.session.commit()
