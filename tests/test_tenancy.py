"""Tenancy by construction: the ORM itself keeps tenants apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import exists, func, insert, literal, select, text, update

from mimamori.extensions import db
from tenants.models import Check, Incident, Resident, ResidentPause, Tenant
from tenants.services import stats
from tenants.tenancy import (
    CrossTenantWrite,
    TenantNotBound,
    UnscopedStatement,
    all_tenants,
    bind_tenant,
)
from tests.factories import created, resident_body


@pytest.fixture
def two_tenants(make_tenant):
    a, b = make_tenant("tenant-a", "A市"), make_tenant("tenant-b", "B市")
    created(a.api.post("/api/v1/residents", resident_body(name="甲野 一郎")))
    created(b.api.post("/api/v1/residents", resident_body(name="乙野 二郎")))
    return a, b


def test_query_without_a_tenant_raises(clean_app, two_tenants):
    """Does a query on residents with no tenant bound fail loudly instead of returning everyone?"""
    with clean_app.app_context(), pytest.raises(TenantNotBound):
        db.session.scalars(select(Resident)).all()


def test_bound_query_sees_only_its_tenant(clean_app, two_tenants):
    """Does a query under tenant A return A's residents only, even with no WHERE of its own?"""
    a, b = two_tenants
    with clean_app.app_context():
        with bind_tenant(a.id):
            assert [r.name for r in db.session.scalars(select(Resident))] == ["甲野 一郎"]
        with bind_tenant(b.id):
            assert [r.name for r in db.session.scalars(select(Resident))] == ["乙野 二郎"]
        with all_tenants():
            assert len(db.session.scalars(select(Resident)).all()) == 2


def test_get_by_primary_key_respects_the_tenant(clean_app, two_tenants):
    """Can session.get() fetch another tenant's resident by id? It must not."""
    a, b = two_tenants
    with clean_app.app_context():
        with all_tenants():
            b_resident_id = db.session.scalar(select(Resident.id).where(Resident.tenant_id == b.id))
        db.session.expunge_all()
        with bind_tenant(a.id):
            assert db.session.get(Resident, b_resident_id) is None


def test_bulk_update_is_scoped(clean_app, two_tenants):
    """Does an UPDATE under tenant A leave tenant B's rows alone?"""
    a, b = two_tenants
    with clean_app.app_context():
        with bind_tenant(a.id):
            db.session.execute(update(Resident).values(notes="A only"))
            db.session.commit()
        with all_tenants():
            notes = dict(db.session.execute(select(Resident.tenant_id, Resident.notes)).all())
    assert notes == {a.id: "A only", b.id: None}


def test_new_rows_are_stamped_and_cross_writes_refused(clean_app, two_tenants):
    """Is a new row stamped with the bound tenant, and is writing another tenant's row refused?"""
    a, b = two_tenants
    with clean_app.app_context(), bind_tenant(a.id):
        resident = Resident(name="丙野 三郎", channels=["line"], link_code="000001")
        db.session.add(resident)
        db.session.flush()
        assert resident.tenant_id == a.id
        db.session.add(Resident(tenant_id=b.id, name="侵入", channels=["line"],
                                link_code="000002"))
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()


def _resident_ids(two_tenants_app, tenant_id):
    with two_tenants_app.app_context(), all_tenants():
        return list(db.session.scalars(select(Resident.id).where(Resident.tenant_id == tenant_id)))


def test_insert_from_select_copies_only_the_bound_tenants_rows(clean_app, two_tenants):
    """Does an INSERT … SELECT (as a whole-tenant round makes its checks) copy only A's rows?"""
    a, _ = two_tenants
    with clean_app.app_context(), bind_tenant(a.id):
        db.session.execute(insert(Check).from_select(
            ["tenant_id", "resident_id", "occurrence", "scheduled_at", "status", "window_ends_at"],
            select(Resident.tenant_id, Resident.id, literal("x"), func.now(), literal("sent"), func.now())))
        db.session.commit()
    with clean_app.app_context(), all_tenants():
        owners = db.session.execute(select(Check.tenant_id, Check.resident_id)).all()
    assert owners == [(a.id, _resident_ids(clean_app, a.id)[0])]


def test_subqueries_ctes_and_aggregates_count_only_the_bound_tenant(clean_app, two_tenants):
    """Do counts over a subquery, a CTE and an aggregate (as monthly statistics make them) see
    only A's residents?"""
    a, _ = two_tenants
    inner = select(Resident.id).subquery()
    shared = select(Resident.id).cte()
    with clean_app.app_context(), bind_tenant(a.id):
        assert db.session.scalar(select(func.count()).select_from(inner)) == 1
        assert db.session.scalar(select(func.count()).select_from(shared)) == 1
        assert db.session.scalar(select(func.count(Resident.id))) == 1
        assert db.session.scalar(select(func.count()).select_from(Resident)) == 1


def test_monthly_statistics_count_only_the_tenants_own_checks(clean_app, two_tenants):
    """Do A's monthly figures leave out B's checks and incidents of the same month?"""
    a, b = two_tenants
    moment = datetime(2030, 4, 1, 0, 0, tzinfo=UTC)
    with clean_app.app_context():
        for tenant in (a, b):
            with bind_tenant(tenant.id):
                resident_id = db.session.scalar(select(Resident.id))
                for n in range(1 if tenant is a else 3):
                    check = Check(resident_id=resident_id, occurrence=f"o{n}", scheduled_at=moment,
                                  window_ends_at=moment, status="missed")
                    db.session.add(check)
                    db.session.flush()
                    db.session.add(Incident(check_id=check.id, resident_id=resident_id,
                                            opened_at=moment))
                db.session.commit()
        with bind_tenant(a.id):
            figures = stats.monthly(db.session.get(Tenant, a.id), moment.date())
    assert (figures.checks, figures.incidents["open"], figures.residents) == (1, 1, 1)


def test_a_table_named_only_in_a_where_is_refused(clean_app, two_tenants):
    """An EXISTS that names a tenant table only in its WHERE gets no tenant criterion from the
    ORM: is it refused rather than run across tenants?"""
    a, _ = two_tenants
    with clean_app.app_context(), bind_tenant(a.id), pytest.raises(UnscopedStatement):
        db.session.scalars(select(Resident.id).where(
            exists().where(ResidentPause.resident_id == Resident.id))).all()


def test_core_statements_on_tenant_tables_are_scoped_or_refused(clean_app, two_tenants):
    """Core statements on `__table__` bypass the ORM's criteria: is an UPDATE scoped by its own
    WHERE, and a SELECT or raw SQL refused, under a bound tenant?"""
    a, b = two_tenants
    table = Resident.__table__
    with clean_app.app_context():
        with bind_tenant(a.id):
            db.session.execute(update(table).values(notes="core"))
            db.session.commit()
            with pytest.raises(UnscopedStatement):
                db.session.execute(select(table.c.id)).all()
            with pytest.raises(UnscopedStatement):
                db.session.execute(text("SELECT id FROM residents")).all()
            assert db.session.execute(text("SELECT 1")).scalar() == 1
        with pytest.raises(TenantNotBound):
            db.session.execute(update(table).values(notes="nobody"))
        with all_tenants():
            notes = dict(db.session.execute(select(Resident.tenant_id, Resident.notes)).all())
    assert notes == {a.id: "core", b.id: None}


def test_writes_naming_another_tenant_are_refused(clean_app, two_tenants):
    """Can a bulk INSERT carry B's tenant_id, or an UPDATE move A's rows to B, under A? No."""
    a, b = two_tenants
    with clean_app.app_context(), bind_tenant(a.id):
        with pytest.raises(CrossTenantWrite):
            db.session.execute(insert(Resident), [{"tenant_id": b.id, "name": "侵入", "channels": [],
                                                   "link_code": "000003"}])
        db.session.rollback()
        with pytest.raises(CrossTenantWrite):
            db.session.execute(update(Resident).values(tenant_id=b.id))
        db.session.rollback()
        db.session.execute(insert(Resident), [{"name": "丁野 四郎", "channels": [], "link_code": "000004"}])
        db.session.commit()
    assert len(_resident_ids(clean_app, a.id)) == 2


def test_binding_another_tenant_forgets_the_rows_already_loaded(clean_app, two_tenants):
    """One session, as the clock ticks every tenant: after A's resident is loaded (and still
    held), does binding B make `session.get` of A's id answer nothing instead of A's row from
    the identity map?"""
    a, b = two_tenants
    a_resident_id = _resident_ids(clean_app, a.id)[0]
    with clean_app.app_context():
        with bind_tenant(a.id):
            held = db.session.get(Resident, a_resident_id)
            assert held.name == "甲野 一郎"
        with bind_tenant(b.id):
            assert db.session.get(Resident, a_resident_id) is None
        with all_tenants():
            held = db.session.get(Resident, a_resident_id)
            with bind_tenant(b.id):
                assert db.session.get(Resident, a_resident_id) is None
            assert db.session.get(Resident, a_resident_id).name == held.name
