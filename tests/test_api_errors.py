"""Bad input gets a clear problem+json answer and changes nothing."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def test_no_or_bad_token_is_401(client, tenant):
    """Is the API closed without a valid bearer token?"""
    assert client.get("/api/v1/residents").status_code == 401
    response = client.get("/api/v1/residents", headers={"Authorization": "Bearer mmr_nope"})
    assert response.status_code == 401 and response.headers["Content-Type"] == PROBLEM
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_malformed_json(tenant):
    """Does a body that is not JSON get a 400 saying so?"""
    response = tenant.api.post("/api/v1/residents", data="{name: 山田",
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == PROBLEM
    assert "JSON" in str(response.get_json())


def test_wrong_types_and_unknown_fields(tenant):
    """Are wrong types and unknown fields each named in `errors`?"""
    response = tenant.api.post("/api/v1/residents", {
        "name": 42, "check_policy_id": "one", "channels": ["fax"], "nickname": "はなちゃん"})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert {"name", "check_policy_id", "channels", "nickname"} <= set(errors)


def test_body_must_be_an_object(tenant):
    """Is a JSON array where an object belongs refused?"""
    response = tenant.api.post("/api/v1/residents", [1, 2, 3])
    assert response.status_code == 422 and response.headers["Content-Type"] == PROBLEM


def test_not_json_content_type(tenant):
    """Is a form post to a JSON endpoint refused with 415?"""
    response = tenant.api.post("/api/v1/residents", data="name=x",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


def test_oversize_body(tenant):
    """Is a huge JSON body refused before it is parsed?"""
    response = tenant.api.post("/api/v1/residents", {"name": "x", "notes": "あ" * 600_000})
    assert response.status_code == 413
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_unknown_route_is_problem_json(tenant):
    assert tenant.api.get("/api/v1/residents/999").status_code == 404
    assert tenant.api.get("/api/v1/nothing-here").headers["Content-Type"] == PROBLEM


def test_openapi_document(client):
    """Is the OpenAPI 3 document published with every resource?"""
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/tenants", "/api/v1/residents", "/api/v1/groups",
                 "/api/v1/check-policies", "/api/v1/alert-chains", "/api/v1/checks",
                 "/api/v1/incidents", "/api/v1/residents/{resident_id}/pause"):
        assert path in spec["paths"], path


def test_health_and_readiness(client):
    """Do the probes report the database and Redis as reachable?"""
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readiness_fails_when_redis_is_down(clean_app):
    """Does /readyz say 503 when Redis cannot be reached?"""
    saved = clean_app.config["REDIS_URL"]
    clean_app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        response = clean_app.test_client().get("/readyz")
    finally:
        clean_app.config["REDIS_URL"] = saved
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("unreachable")
