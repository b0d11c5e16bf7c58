"""A tenant never sees another tenant's data: every endpoint, every id, answers 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from mimamori.extensions import db
from tenants.models import Check, Incident
from tenants.tenancy import bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body

# A valid body for every tenant endpoint that takes one, so a 404 cannot hide behind a 422.
BODIES = {
    ("/api/v1/residents/<id:resident_id>", "PATCH"): {"notes": "x"},
    ("/api/v1/residents/<id:resident_id>/contacts", "POST"): {"name": "某", "phone": "09011112222"},
    ("/api/v1/residents/<id:resident_id>/contacts/<id:contact_id>", "PATCH"): {"name": "某"},
    ("/api/v1/residents/<id:resident_id>/pause", "POST"): {"until": "2099-01-01"},
    ("/api/v1/residents/<id:resident_id>/link-code", "POST"): {},
    ("/api/v1/groups/<id:group_id>", "PATCH"): {"name": "別名"},
    ("/api/v1/check-policies/<id:policy_id>", "PATCH"): {"name": "別名"},
    ("/api/v1/alert-chains/<id:chain_id>", "PATCH"): {"name": "別名"},
    ("/api/v1/checks/<id:check_id>/answer", "POST"): {},
    ("/api/v1/incidents/<id:incident_id>/acknowledge", "POST"): {"by": "某"},
    ("/api/v1/incidents/<id:incident_id>/resolve", "POST"): {"outcome": "safe"},
    ("/api/v1/incidents/<id:incident_id>/notes", "POST"): {"note": "覗き見"},
    ("/api/v1/rounds/<id:round_id>/escalate", "POST"): {},
}
OPERATOR_PREFIX = "/api/v1/tenants"


@pytest.fixture
def victim(clean_app, make_tenant):
    """Tenant A with one of everything, and the ids of it."""
    a = make_tenant("tenant-a", "A市")
    chain = created(a.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(a.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    group = created(a.api.post("/api/v1/groups", {"name": "北町"}))
    resident = created(a.api.post("/api/v1/residents", resident_body(
        check_policy_id=policy["id"], group_ids=[group["id"]])))
    round_ = created(a.api.post("/api/v1/rounds", {"message": "地震がありました"}))
    broadcast = created(a.api.post("/api/v1/broadcasts", {"message": "避難所を開設しました"}))
    with clean_app.app_context(), bind_tenant(a.id):
        now = datetime.now(UTC)
        check = Check(resident_id=resident["id"], occurrence="t", scheduled_at=now,
                      window_ends_at=now + timedelta(hours=1), status="missed")
        db.session.add(check)
        db.session.flush()
        incident = Incident(check_id=check.id, resident_id=resident["id"])
        db.session.add(incident)
        db.session.commit()
        ids = {"resident_id": resident["id"], "contact_id": resident["contacts"][0]["id"],
               "group_id": group["id"], "policy_id": policy["id"], "chain_id": chain["id"],
               "check_id": check.id, "incident_id": incident.id, "round_id": round_["id"],
               "broadcast_id": broadcast["id"]}
    return a, ids


def _tenant_rules(app):
    for rule in app.url_map.iter_rules():
        tenant_owned = rule.rule.startswith("/api/v1/") and not rule.rule.startswith(OPERATOR_PREFIX)
        if tenant_owned and rule.arguments:
            yield rule


def test_every_endpoint_answers_404_for_another_tenants_ids(clean_app, make_tenant, victim):
    """Can tenant B read, change or delete anything of tenant A by putting A's ids in the URL?"""
    a, ids = victim
    b = make_tenant("tenant-b", "B市")
    walked = []
    for rule in _tenant_rules(clean_app):
        path = re.sub(r"<id:(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            body = BODIES.get((rule.rule, method))
            if method in {"POST", "PATCH"}:
                assert body is not None, f"add a valid body for {method} {rule.rule} to BODIES"
            response = getattr(b.api, method.lower())(
                path, *([body] if method in {"POST", "PATCH"} else []))
            assert response.status_code == 404, (method, path, response.get_json())
            assert response.headers["Content-Type"] == "application/problem+json"
            walked.append((method, rule.rule))
    assert len(walked) >= 20  # the walk really covered the API
    # ...and tenant A's data is untouched.
    resident = a.api.get(f"/api/v1/residents/{ids['resident_id']}").get_json()
    assert resident["notes"] is None and resident["paused_until"] is None
    assert len(resident["contacts"]) == 1
    incident = a.api.get(f"/api/v1/incidents/{ids['incident_id']}").get_json()
    assert incident["status"] == "open" and incident["timeline"] == []


def test_lists_show_only_the_callers_tenant(make_tenant, victim):
    """Do tenant B's lists come back empty while tenant A has data everywhere?"""
    b = make_tenant("tenant-b", "B市")
    for path in ("/api/v1/residents", "/api/v1/groups", "/api/v1/check-policies",
                 "/api/v1/alert-chains", "/api/v1/checks", "/api/v1/incidents", "/api/v1/rounds",
                 "/api/v1/broadcasts"):
        assert b.api.get(path).get_json() == {"items": [], "next": None}, path


def test_references_to_another_tenants_objects_are_refused(make_tenant, victim):
    """Can tenant B attach A's policy, chain or group to its own resident or policy?"""
    _, ids = victim
    b = make_tenant("tenant-b", "B市")
    response = b.api.post("/api/v1/check-policies", policy_body(ids["chain_id"], name="盗用"))
    assert response.status_code == 422
    assert "alert_chain_id" in response.get_json()["errors"]
    response = b.api.post("/api/v1/residents", resident_body(check_policy_id=ids["policy_id"],
                                                             group_ids=[ids["group_id"]]))
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"check_policy_id", "group_ids"}
    assert b.api.get("/api/v1/residents").get_json()["items"] == []
    assert b.api.get("/api/v1/check-policies").get_json()["items"] == []


def test_tenant_tokens_cannot_provision_and_operators_cannot_read_residents(operator, victim):
    """Is the operator/tenant split enforced both ways?"""
    a, _ = victim
    assert a.api.get("/api/v1/tenants").status_code == 403
    assert a.api.post("/api/v1/tenants", {"slug": "evil", "name": "x"}).status_code == 403
    assert operator.get("/api/v1/residents").status_code == 403
