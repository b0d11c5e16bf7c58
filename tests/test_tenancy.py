"""Tenancy by construction: the ORM itself keeps tenants apart."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from mimamori.extensions import db
from tenants.models import Resident
from tenants.tenancy import CrossTenantWrite, TenantNotBound, all_tenants, bind_tenant
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
