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


# Bad input that used to answer 500 (issue 11, finding 7): each is a clear 4xx now.

TOO_BIG = 2**31  # one past PostgreSQL's integer, which every id column is
HUGE = 10**30


def test_blank_optional_text_is_stored_as_null(tenant):
    """Does a blank 管理番号 or an address of spaces save the resident with those fields empty?"""
    response = tenant.api.post("/api/v1/residents", {"name": "山田 花子", "external_id": "",
                                                     "address": "  ", "name_kana": " "})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["external_id"] is None and body["address"] is None and body["name_kana"] is None
    again = tenant.api.patch(f"/api/v1/residents/{body['id']}", {"address": "", "phone": ""})
    assert again.status_code == 200 and again.get_json()["address"] is None


def test_blank_token_name_is_accepted(operator, tenant):
    """Can an operator issue a token without naming it (a blank name)?"""
    response = operator.post(f"/api/v1/tenants/{tenant.id}/tokens", {"name": "   "})
    assert response.status_code == 201, response.get_json()


def test_ids_beyond_the_database_range_in_paths_are_404(tenant, operator):
    """Is an id too large for the database a plain 404 in every path, not a server error?"""
    for path in (f"/api/v1/residents/{TOO_BIG}", f"/api/v1/residents/{HUGE}",
                 f"/api/v1/residents/1/contacts/{TOO_BIG}", f"/api/v1/checks/{HUGE}",
                 f"/api/v1/incidents/{TOO_BIG}", f"/api/v1/rounds/{HUGE}/breakdown",
                 f"/api/v1/groups/{'9' * 5000}"):
        response = tenant.api.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == PROBLEM
    assert operator.get(f"/api/v1/tenants/{HUGE}").status_code == 404


def test_ids_beyond_the_database_range_in_queries_are_422(tenant):
    """Is an out-of-range id in a filter refused with the parameter named?"""
    for path in (f"/api/v1/checks?resident_id={HUGE}", f"/api/v1/incidents?resident_id={TOO_BIG}",
                 f"/api/v1/residents?group_id={HUGE}", "/api/v1/residents?check_policy_id=-1"):
        response = tenant.api.get(path)
        assert response.status_code == 422, path
        assert response.headers["Content-Type"] == PROBLEM
        assert set(response.get_json()["errors"]) <= {"resident_id", "group_id",
                                                      "check_policy_id"}


def test_ids_beyond_the_database_range_in_bodies_are_422(tenant):
    """Is an out-of-range id in a body refused with the field named, and nothing created?"""
    cases = [("/api/v1/rounds", {"message": "ご無事ですか", "group_id": HUGE}, "group_id"),
             ("/api/v1/broadcasts", {"message": "お知らせ", "group_id": TOO_BIG}, "group_id"),
             ("/api/v1/residents", {"name": "山田", "check_policy_id": HUGE}, "check_policy_id"),
             ("/api/v1/residents", {"name": "山田", "group_ids": [TOO_BIG]}, "group_ids"),
             ("/api/v1/groups", {"name": "班", "member_ids": [HUGE]}, "member_ids")]
    for path, body, field in cases:
        response = tenant.api.post(path, body)
        assert response.status_code == 422, (path, response.get_json())
        assert field in response.get_json()["errors"]
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_nul_characters_in_json_strings_are_422(tenant):
    """Is a NUL character in any string refused with the field named, and nothing saved?"""
    response = tenant.api.post("/api/v1/residents", {
        "name": "山田\u0000花子", "contacts": [{"name": "太郎\u0000"}]})
    assert response.status_code == 422
    assert {"name", "contacts"} <= set(response.get_json()["errors"])
    query = tenant.api.get("/api/v1/residents?q=%00")
    assert query.status_code == 422 and "q" in query.get_json()["errors"]
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_deeply_nested_json_is_400(tenant):
    """Is JSON nested thousands deep refused as a bad request?"""
    for body in ("[" * 100_000 + "]" * 100_000, '{"name": ' + "[" * 64 + "]" * 64 + "}"):
        response = tenant.api.post("/api/v1/residents", data=body,
                                   headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.headers["Content-Type"] == PROBLEM


def test_cursors_and_limits_that_do_not_parse_are_422(tenant):
    """Are a forged cursor and a limit the API does not take refused, naming the parameter?"""
    import base64

    forged = base64.urlsafe_b64encode(f"id:{HUGE}".encode()).decode().rstrip("=")
    for query, field in ((f"cursor={forged}", "cursor"), ("cursor=%%%", "cursor"),
                         ("cursor=" + "A" * 5000, "cursor"), ("limit=%C2%B2", "limit"),
                         ("limit=0", "limit"), ("limit=501", "limit")):
        for path in ("/api/v1/residents", "/api/v1/groups", "/api/v1/broadcasts",
                     "/api/v1/alert-chains"):
            response = tenant.api.get(f"{path}?{query}")
            assert response.status_code == 422, (path, query)
            assert field in response.get_json()["errors"], (path, query)


def test_method_not_allowed_says_which_are(tenant):
    """Does a 405 name the allowed methods in `Allow`, as problem+json?"""
    response = tenant.api.delete("/api/v1/checks")
    assert response.status_code == 405
    assert response.headers["Content-Type"] == PROBLEM
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}


def test_errors_carry_the_headers_of_their_exception(clean_app):
    """Does a 503 (database unreachable) keep its Retry-After when answered as problem+json?"""
    from werkzeug.exceptions import ServiceUnavailable

    with clean_app.test_request_context("/api/v1/residents"):
        response = clean_app.handle_http_exception(ServiceUnavailable(retry_after=30))
    assert response.status_code == 503 and response.headers["Content-Type"] == PROBLEM
    assert response.headers["Retry-After"] == "30"


def _resolve(spec, node):
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = spec["components"][kind][name]
    return node


def test_openapi_describes_what_the_api_answers(client):
    """Does the OpenAPI document give every operation its success schema, errors as
    problem+json, the bounds of `limit`, and the bearer scheme, as the API really answers?"""
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, (method, path)
            for code in success:
                response = _resolve(spec, operation["responses"][code])
                if code != "204":
                    assert "schema" in next(iter(response["content"].values())), (method, path)
            default = _resolve(spec, operation["responses"]["default"])
            assert list(default["content"]) == [PROBLEM], (method, path)
            problem_schema = _resolve(spec, default["content"][PROBLEM]["schema"])
            assert {"type", "title", "status"} <= set(problem_schema["properties"])
    listing = spec["paths"]["/api/v1/residents"]["get"]
    page = _resolve(spec, listing["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"items", "next"}
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 500
    resident_id = spec["paths"]["/api/v1/residents/{resident_id}"]["parameters"][0]
    assert resident_id["schema"]["maximum"] == 2**31 - 1


def test_time_zones_that_are_not_names_are_422(operator, tenant):
    """Is a time zone too long to be a file name, or a path, refused like any unknown zone?"""
    for zone in ("Asia/" + "x" * 300, "../../../etc/passwd", "/etc/localtime", "Asia/Tokyo\n"):
        response = operator.patch(f"/api/v1/tenants/{tenant.id}", {"timezone": zone})
        assert response.status_code == 422, zone
        assert "timezone" in response.get_json()["errors"]
