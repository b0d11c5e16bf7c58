"""Operators provision tenants, tokens and staff; secrets go in and never come out."""

from __future__ import annotations

from sqlalchemy import text

from mimamori.extensions import db
from tests.factories import created

LINE_SECRET = "line-secret-0123456789abcdef"
LINE_TOKEN = "line-access-token-very-long-value"
TWILIO_TOKEN = "twilio-auth-token-0123456789"
TENANT = {"slug": "musashino", "name": "武蔵野市", "timezone": "Asia/Tokyo",
          "line": {"channel_secret": LINE_SECRET, "channel_access_token": LINE_TOKEN},
          "twilio": {"account_sid": "AC0123456789abcdef0123456789abcdef",
                     "auth_token": TWILIO_TOKEN, "from_number": "+815012345678"}}


def test_create_tenant_reports_configured_channels_without_secrets(operator):
    """Does creating a tenant say its LINE and Twilio are configured, and echo no secret?"""
    response = operator.post("/api/v1/tenants", TENANT)
    body = created(response)
    assert body["slug"] == "musashino" and body["name"] == "武蔵野市"
    assert body["line"]["configured"] is True and body["twilio"]["configured"] is True
    listing = operator.get("/api/v1/tenants").get_data(as_text=True)
    for answer in (response.get_data(as_text=True), listing,
                   operator.get(f"/api/v1/tenants/{body['id']}").get_data(as_text=True)):
        for secret in (LINE_SECRET, LINE_TOKEN, TWILIO_TOKEN):
            assert secret not in answer


def test_credentials_are_encrypted_at_rest(clean_app, operator):
    """Would a database dump reveal a tenant's channel secrets?"""
    created(operator.post("/api/v1/tenants", TENANT))
    with clean_app.app_context():
        row = db.session.execute(text(
            "SELECT line_channel_secret, line_channel_access_token, twilio_auth_token FROM tenants"
        )).one()
    assert all(value and value not in (LINE_SECRET, LINE_TOKEN, TWILIO_TOKEN) for value in row)


def test_tenant_without_credentials_is_a_sandbox(operator):
    """Is a tenant created with no credentials marked as the sandbox?"""
    body = created(operator.post("/api/v1/tenants", {"slug": "demo", "name": "デモ市"}))
    assert body["line"] == {"configured": False}
    assert body["sandbox"] is True and body["timezone"] == "Asia/Tokyo"
    assert body["quiet_hours"] == {"start": "21:00", "end": "08:00"}


def test_rotating_credentials(operator):
    """Can an operator replace a tenant's LINE credentials, and remove Twilio's?"""
    tenant = created(operator.post("/api/v1/tenants", TENANT))
    response = operator.patch(f"/api/v1/tenants/{tenant['id']}", {
        "line": {"channel_secret": "new", "channel_access_token": "new-token"}, "twilio": None})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["line"]["configured"] is True
    assert response.get_json()["twilio"]["configured"] is False


def test_duplicate_slug_and_bad_fields_are_refused(operator):
    """Are a taken slug, a bad slug and an unknown time zone refused with the field named?"""
    created(operator.post("/api/v1/tenants", {"slug": "kodaira", "name": "小平市"}))
    again = operator.post("/api/v1/tenants", {"slug": "kodaira", "name": "小平市"})
    assert again.status_code == 409 and "slug" in again.get_json()["errors"]
    bad = operator.post("/api/v1/tenants", {"slug": "Bad Slug!", "name": "x",
                                            "timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"slug", "timezone"}
    half = operator.post("/api/v1/tenants", {"slug": "half", "name": "x",
                                             "line": {"channel_secret": "only"}})
    assert half.status_code == 422 and "line" in half.get_json()["errors"]
    assert [t["slug"] for t in operator.get("/api/v1/tenants").get_json()["items"]] == ["kodaira"]


def test_tenant_tokens_are_shown_once_and_stored_hashed(clean_app, operator, client):
    """Does a new tenant token work, and is only its hash kept?"""
    tenant = created(operator.post("/api/v1/tenants", {"slug": "mitaka", "name": "三鷹市"}))
    token = created(operator.post(f"/api/v1/tenants/{tenant['id']}/tokens", {"name": "連携"}))
    plain = token["token"]
    answer = client.get("/api/v1/residents", headers={"Authorization": f"Bearer {plain}"})
    assert answer.status_code == 200
    with clean_app.app_context():
        stored = db.session.execute(text("SELECT token_hash, prefix FROM api_tokens")).all()
    assert all(plain not in (h, p) for h, p in stored)


def test_unknown_tenant_is_404(operator):
    """Does an id that does not exist answer 404 as problem+json?"""
    response = operator.post("/api/v1/tenants/999/tokens", {})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_staff_accounts(operator):
    """Can an operator give a tenant staff logins, without the password ever echoed?"""
    tenant = created(operator.post("/api/v1/tenants", {"slug": "fuchu", "name": "府中市"}))
    path = f"/api/v1/tenants/{tenant['id']}/staff"
    body = created(operator.post(path, {"email": "Kaigo@City.Fuchu.jp", "role": "admin",
                                        "password": "とても長いパスワード123"}))
    assert body["email"] == "kaigo@city.fuchu.jp" and body["role"] == "admin"
    assert "password" not in body and "password_hash" not in body
    again = operator.post(path, {"email": "kaigo@city.fuchu.jp", "role": "staff",
                                 "password": "another long password"})
    assert again.status_code == 409 and "email" in again.get_json()["errors"]
    weak = operator.post(path, {"email": "x@y.jp", "role": "boss", "password": "short"})
    assert weak.status_code == 422
    assert set(weak.get_json()["errors"]) == {"role", "password"}
    assert [s["role"] for s in operator.get(path).get_json()] == ["admin"]


def test_removing_every_credential_needs_an_explicit_sandbox(operator):
    """Can a PATCH with "line": null and "twilio": null silently stop all sending? It needs
    "sandbox": true, and the tenant then says it is a sandbox."""
    tenant = created(operator.post("/api/v1/tenants", TENANT))
    path = f"/api/v1/tenants/{tenant['id']}"
    refused = operator.patch(path, {"line": None, "twilio": None})
    assert refused.status_code == 422 and "sandbox" in refused.get_json()["errors"]
    unchanged = operator.get(path).get_json()
    assert unchanged["sandbox"] is False and unchanged["line"]["configured"] is True
    assert unchanged["twilio"]["configured"] is True
    confirmed = operator.patch(path, {"line": None, "twilio": None, "sandbox": True})
    assert confirmed.status_code == 200, confirmed.get_json()
    assert operator.get(path).get_json()["sandbox"] is True


def test_sandbox_must_match_the_credentials(operator):
    """Is "sandbox" refused when it contradicts the credentials the tenant would have?"""
    tenant = created(operator.post("/api/v1/tenants", TENANT))
    keeps = operator.patch(f"/api/v1/tenants/{tenant['id']}", {"sandbox": True})
    assert keeps.status_code == 422 and "sandbox" in keeps.get_json()["errors"]
    bare = operator.post("/api/v1/tenants", {"slug": "kiyose", "name": "清瀬市", "sandbox": False})
    assert bare.status_code == 422 and "sandbox" in bare.get_json()["errors"]
    explicit = created(operator.post("/api/v1/tenants", {"slug": "demo", "name": "デモ市",
                                                         "sandbox": True}))
    assert explicit["sandbox"] is True
