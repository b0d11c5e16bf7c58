"""Schemathesis over the whole OpenAPI document: no request, valid or not, gets a 5xx, and every
answer is what the document says (status, content type, body schema).

The app is called through WSGI (no network), with a tenant token and an operator token, on a
sandbox tenant holding residents, contacts, a group, a policy, a chain, a round, checks and
incidents, so that ids exist. Nothing leaves the machine: the tenant has no provider
credentials, no worker runs during the fuzz, and the provider hosts are the local fakes.
Bounded by FUZZ_EXAMPLES (examples per operation and mode) so it fits in the normal suite.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tenants.types import utcnow
from tests.factories import chain_body, created, policy_body, resident_body

# Per operation, mode and token; a few minutes in all on two cores. The cases are the same on
# every run; for a longer hunt elsewhere: FUZZ_EXAMPLES=200 FUZZ_SEED=<any number>.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("FUZZ_SEED")
# Operations of the other role only answer 403: a few examples show that.
OTHER_ROLE_EXAMPLES = 2
OPERATOR_PATHS = ("/api/v1/tenants", "/api/v1/earthquakes/jma")
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]


@dataclass
class Seeded:
    tenant_token: str
    operator_token: str


@pytest.fixture
def seeded(clean_app, operator, make_tenant, engine, fakes) -> Seeded:
    """武蔵野市 (sandbox) with a chain, a policy, a group, residents with contacts, a round whose
    checks were missed (so incidents are open), and a second tenant for the operator to see."""
    city = make_tenant()
    make_tenant("kodaira", "小平市")
    chain = created(city.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(city.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    residents = [created(city.api.post("/api/v1/residents", resident_body(
        name=f"山田 {n}", phone=f"090-1234-56{n:02d}", check_policy_id=policy["id"])))
        for n in range(3)]
    group = created(city.api.post("/api/v1/groups", {
        "name": "中町一丁目", "kind": "area", "member_ids": [r["id"] for r in residents],
        "leader_resident_id": residents[0]["id"]}))
    round_ = created(city.api.post("/api/v1/rounds", {
        "message": "ご無事ですか?", "group_id": group["id"], "response_window_minutes": 5}))
    created(city.api.post("/api/v1/broadcasts", {"message": "お知らせです", "group_id": None}))
    engine.work()  # the sandbox "sends" the round
    engine.run(utcnow() + timedelta(minutes=10))  # unanswered: the checks are missed
    assert city.api.post(f"/api/v1/rounds/{round_['id']}/escalate").status_code == 200
    assert city.api.get("/api/v1/incidents").get_json()["items"]
    return Seeded(city.api.token, operator.token)


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    return operations


def _fuzz(operation: Any, token: str, examples: int) -> str | None:
    """Run `examples` positive and as many negative cases; the first failure, reproducible."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @seed(int(SEED or 0))
    @settings(max_examples=2 * examples, deadline=None, database=None, derandomize=SEED is None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    try:
        run()
    except (Exception, FailureGroup) as exc:  # every operation's failure is reported together
        return f"{operation.label}: {exc}"
    return None


@pytest.mark.parametrize("role", ["tenant", "operator"])
def test_no_request_gets_a_server_error_or_an_undocumented_answer(clean_app, seeded, role):
    """Does any request a fuzzer makes, with this role's token, get a 5xx, or an answer that the
    OpenAPI document does not describe (status, content type or body)?"""
    token = seeded.tenant_token if role == "tenant" else seeded.operator_token
    failures = []
    for operation in _operations(clean_app):
        own = operation.path.startswith(OPERATOR_PATHS) == (role == "operator")
        failure = _fuzz(operation, token, EXAMPLES if own else OTHER_ROLE_EXAMPLES)
        if failure:
            failures.append(failure)
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
