"""Tenant scoping by construction: queries on tenant-owned models only ever see the bound tenant.

A request or job binds one tenant (`bind_tenant`); every ORM SELECT, UPDATE and DELETE touching a
`TenantScoped` model then gets `tenant_id = :bound` added by a `do_orm_execute` listener, and new
rows are stamped with it in `before_flush`. With no tenant bound such a query raises
`TenantNotBound` instead of returning every tenant's rows. Platform-level passes (the clock,
operator statistics) say so explicitly with `all_tenants()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import ForeignKey, event, inspect
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)


class TenantNotBound(RuntimeError):
    """A tenant-owned model was queried or written with no tenant bound."""


class CrossTenantWrite(RuntimeError):
    """A row of one tenant was written while another tenant is bound."""


class _AllTenants:
    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS = _AllTenants()
_bound: ContextVar[int | _AllTenants | None] = ContextVar("mimamori_tenant", default=None)


class TenantScoped:
    """Mixin for every model owned by one tenant."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(
            ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
        )


def bound_tenant_id() -> int:
    """The tenant bound to this request or job; raises when none (or all) are bound."""
    value = _bound.get()
    if not isinstance(value, int):
        raise TenantNotBound("no single tenant is bound to this request or job")
    return value


def is_bound() -> bool:
    return isinstance(_bound.get(), int)


@contextmanager
def bind_tenant(tenant_id: int) -> Iterator[int]:
    token = _bound.set(int(tenant_id))
    try:
        yield int(tenant_id)
    finally:
        _bound.reset(token)


@contextmanager
def all_tenants() -> Iterator[None]:
    """Lift the scope for platform-level work that must see every tenant (use sparingly)."""
    token = _bound.set(ALL_TENANTS)
    try:
        yield
    finally:
        _bound.reset(token)


def set_bound(value: int | None) -> object:
    """Bind without a with-block (request hooks); returns the token for `reset_bound`."""
    return _bound.set(value)


def reset_bound(token: object) -> None:
    _bound.reset(token)  # type: ignore[arg-type]


def _touches_scoped_model(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers)


def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    # Loads of columns and relationships inherit the criteria of the query that loaded the parent.
    if state.is_select and (state.is_column_load or state.is_relationship_load):
        return
    if not _touches_scoped_model(state):
        return
    bound = _bound.get()
    if bound is ALL_TENANTS:
        return
    if bound is None:
        raise TenantNotBound(
            "query on a tenant-owned model with no tenant bound; "
            "bind one with bind_tenant() or say all_tenants()"
        )
    tenant_id = bound
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
        )
    )


def _stamp_tenant(session: Session, _flush_context: object, _instances: object) -> None:
    bound = _bound.get()
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None:
            if not isinstance(bound, int):
                raise TenantNotBound(f"new {type(obj).__name__} with no tenant bound")
            obj.tenant_id = bound
        elif isinstance(bound, int) and obj.tenant_id != bound:
            raise CrossTenantWrite(f"{type(obj).__name__} of tenant {obj.tenant_id} under {bound}")
    for obj in session.dirty:
        if isinstance(obj, TenantScoped) and inspect(obj).attrs.tenant_id.history.deleted:
            raise CrossTenantWrite(f"{type(obj).__name__} may not move between tenants")


def install(session_class: type[Session] = Session) -> None:
    """Register the listeners once for every session of the application."""
    if not event.contains(session_class, "do_orm_execute", _scope_statement):
        event.listen(session_class, "do_orm_execute", _scope_statement)
        event.listen(session_class, "before_flush", _stamp_tenant)
