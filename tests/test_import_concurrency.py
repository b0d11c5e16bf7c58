"""Two CSV imports at once, as two staff members (or a double click and a script) would start them:
against real PostgreSQL, never a deadlock or a 5xx, and the residents as the files say."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pytest
from flask import Flask

from mimamori.extensions import db
from tenants.errors import Conflict
from tenants.services import importing
from tenants.tenancy import bind_tenant
from tests.fixtures.api import Api
from tests.fixtures.engine import at_once
from tests.test_import import IMPORT, csv_text, ok, upload


@pytest.fixture(autouse=True)
def _postgresql_only(clean_app: Flask) -> None:
    with clean_app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("concurrent writers need PostgreSQL (SQLite lets one writer in at a time)")


def register(numbers: Iterable[int], phone_prefix: str = "090-1000") -> str:
    return csv_text("管理番号,氏名,電話番号,緊急連絡先氏名,緊急連絡先電話番号", *(
        f"A-{n:04d},住民 {n},{phone_prefix}-{n:04d},家族 {n},080-2000-{n:04d}" for n in numbers))


def together(clean_app: Flask, uploads: list[tuple[Any, str]]) -> list[Any]:
    """Send each (tenant, CSV) from its own thread and client, released at the same instant."""
    start = threading.Barrier(len(uploads))
    answers: list[Any] = [None] * len(uploads)
    lock = threading.Lock()
    turn = iter(range(len(uploads)))

    def send() -> None:
        with lock:
            index = next(turn)
        tenant, text = uploads[index]
        client = Api(clean_app.test_client(), tenant.api.token)
        start.wait()
        answers[index] = client.post(IMPORT, data=text.encode(),
                                     headers={"Content-Type": "text/csv"})

    at_once(send, times=len(uploads))
    return answers


def test_two_imports_updating_the_same_residents_in_opposite_orders_both_succeed(clean_app, tenant):
    """Do two imports that update the same 600 residents in opposite orders (and each add their
    own) both answer 200, rather than one of them dying in a deadlock with a 500?"""
    ok(upload(tenant, register(range(600))))
    forward = register([*range(600), *range(600, 650)], phone_prefix="090-3000")
    backward = register([*reversed(range(600)), *range(650, 700)], phone_prefix="090-4000")
    answers = together(clean_app, [(tenant, forward), (tenant, backward)])
    for answer in answers:
        assert answer.status_code == 200, answer.get_json()
        assert (answer.get_json()["created"], answer.get_json()["updated"]) == (50, 600)
    found = residents_by_number(tenant)
    assert sorted(found) == [f"A-{n:04d}" for n in range(700)]
    assert len({r["phone"][:8] for n, r in found.items() if n < "A-0600"}) == 1  # one file won


def test_the_same_file_imported_twice_at_once_registers_each_resident_once(clean_app, tenant):
    """Does a double submission of one register create each resident once, the second import
    waiting for the first and then updating what it created?"""
    text = register(range(200))
    answers = together(clean_app, [(tenant, text), (tenant, text)])
    counts = sorted((a.status_code, a.get_json()["created"], a.get_json()["updated"])
                    for a in answers)
    assert counts == [(200, 0, 200), (200, 200, 0)], [a.get_json() for a in answers]
    found = residents_by_number(tenant)
    assert len(found) == 200
    assert all(len(resident["contacts"]) == 1 for resident in found.values())


def test_an_import_kept_waiting_too_long_is_refused_with_nothing_written(clean_app, tenant):
    """While another import of the city has not finished, is one that has waited its limit
    refused with a clear 409 (nothing written), and does the same file import afterwards?"""
    body = register(range(3)).encode()
    with clean_app.app_context(), bind_tenant(tenant.id):
        assert importing.import_residents(body).created == 3  # not committed yet: still running
        with clean_app.app_context(), bind_tenant(tenant.id):
            with pytest.raises(Conflict, match="still running"):
                importing.import_residents(body, wait="200ms")
            db.session.rollback()
        db.session.rollback()
    answer = ok(upload(tenant, body))
    assert (answer["created"], answer["updated"]) == (3, 0)


def test_imports_of_two_tenants_at_once_both_succeed(clean_app, make_tenant):
    """Does one city's import never wait on, or fail because of, another city's?"""
    musashino, mitaka = make_tenant("musashino"), make_tenant("mitaka", name="三鷹市")
    answers = together(clean_app, [(musashino, register(range(150))), (mitaka, register(range(150)))])
    for answer in answers:
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["created"] == 150
    assert len(residents_by_number(musashino)) == len(residents_by_number(mitaka)) == 150


def residents_by_number(tenant: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page = tenant.api.get("/api/v1/residents?limit=100").get_json()
    while True:
        found.update((r["external_id"], r) for r in page["items"])
        if not page["next"]:
            return found
        page = tenant.api.get(f"/api/v1/residents?limit=100&cursor={page['next']}").get_json()

