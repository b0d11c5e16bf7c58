"""Every CSV the product writes opens in Excel as data, never as a formula (CSV injection)."""

from __future__ import annotations

import csv
import io
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from mimamori.extensions import db
from tenants.csv_safe import csv_text, safe_cell
from tenants.models import Group, Resident, Tenant
from tenants.tenancy import bind_tenant
from tests.fixtures.browser import Login

# Names a stranger could give a resident, a group or a city, as OWASP's CSV injection examples.
HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-1+1", "@SUM(1)", "\t=1+1", "\r=1+1", "＝1+1"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def test_formula_text_is_neutralised_and_numbers_stay_numbers():
    """Does text a spreadsheet would run get a leading quote, while counts (even -3) stay
    numbers and plain Japanese text is left as it is?"""
    for value in HOSTILE:
        assert safe_cell(value) == "'" + value
    assert [safe_cell(v) for v in (-3, 0, 12.5, None, "武蔵野市", "090-1234")] == [
        -3, 0, 12.5, "", "武蔵野市", "090-1234"]
    text = csv_text([["名前", "件数"], ["=1+1", -3]])
    assert text.startswith("\ufeff") and text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text.removeprefix("\ufeff")))) == [
        ["名前", "件数"], ["'=1+1", "-3"]]


def signed_in(app: Flask, login: Login) -> FlaskClient:
    """A dashboard session, signed in through the login form as a browser would."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, "the login page has no CSRF token"
    answer = client.post("/login", data={"email": login.email, "password": login.password,
                                         "csrf_token": token[1]})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def csv_exports(app: Flask, client: FlaskClient, slug: str) -> list[str]:
    """The dashboard's CSV downloads: every page of the tenant that answers text/csv."""
    paths = [rule.rule.replace("<slug>", slug) for rule in app.url_map.iter_rules()
             if "GET" in rule.methods and rule.rule.startswith("/t/<slug>/")
             and set(rule.arguments) == {"slug"}]
    found = [path for path in paths if client.get(path).mimetype == "text/csv"]
    assert f"/t/{slug}/stats.csv" in found, "the monthly statistics export is not found"
    return found


def name_everything(app: Flask, tenant_id: int) -> None:
    """A resident and a group named after each hostile value (stored as is, past any API check)."""
    with app.app_context(), bind_tenant(tenant_id):
        for number, value in enumerate(HOSTILE):
            db.session.add(Resident(name=value, channels=["line"], link_code=f"ABC{number:03d}"))
            db.session.add(Group(name=value))
        db.session.commit()


def name_the_city(app: Flask, tenant_id: int, value: str) -> None:
    with app.app_context():
        db.session.execute(update(Tenant).where(Tenant.id == tenant_id).values(name=value))
        db.session.commit()


def cells(body: bytes) -> list[str]:
    assert body.startswith("\ufeff".encode()), "Excel needs the BOM to read UTF-8"
    return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))
            for cell in row]


def test_every_csv_export_neutralises_formulas(clean_app, tenant, make_user):
    """With the city, residents and groups named like formulas, does any cell of any CSV the
    dashboard offers start with =, +, -, @, a tab or a CR that a spreadsheet would run?"""
    name_everything(clean_app, tenant.id)
    client = signed_in(clean_app, make_user("kanri@city.musashino.jp", "admin", tenant.id))
    exports = csv_exports(clean_app, client, tenant.slug)
    for value in HOSTILE:
        name_the_city(clean_app, tenant.id, value)
        for path in exports:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)
            found = cells(answer.data)
            assert any(value in cell for cell in found), f"{path} does not show {value!r} at all"
            unsafe = [cell for cell in found if cell.startswith(FORMULA_STARTS)]
            assert not unsafe, f"{path} has cells a spreadsheet would run: {unsafe}"
