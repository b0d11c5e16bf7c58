"""Tenant scoping by construction: statements on tenant-owned tables only ever see the bound tenant.

A request or job binds one tenant (`bind_tenant`). Every statement the session executes is then
checked by a `do_orm_execute` listener, wherever a tenant-owned table appears in it (the top
level, a subquery, a CTE, the SELECT inside an INSERT … SELECT):

- each appearance of a `TenantScoped` model gets `tenant_id = :bound` (`with_loader_criteria`);
- a Core UPDATE or DELETE of a tenant-owned `__table__` gets the same condition;
- rows an INSERT supplies as values are stamped with the bound tenant, or refused if they name
  another (`CrossTenantWrite`), and an UPDATE may not move rows to another tenant;
- what cannot be scoped is refused with `UnscopedStatement`: a Core SELECT of a tenant-owned
  `__table__`'s columns, or raw SQL text naming a tenant-owned table.

New objects are stamped in `before_flush`. With no tenant bound, any statement touching a
tenant-owned table raises `TenantNotBound` instead of returning every tenant's rows. When the bound
tenant changes, the session forgets the objects of other tenants it holds, so `session.get` cannot
hand back a row of the tenant bound before. Platform-level passes (the clock, operator statistics)
say so explicitly with `all_tenants()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import ForeignKey, Table, event, inspect
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.elements import ColumnClause, TextClause
from sqlalchemy.sql.selectable import Join, Select
from sqlalchemy.sql.util import extract_first_column_annotation


class TenantNotBound(RuntimeError):
    """A tenant-owned model was queried or written with no tenant bound."""


class UnscopedStatement(TenantNotBound):
    """A statement on a tenant-owned table that the listener cannot scope (Core SELECT, raw SQL)."""


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


# The sessions whose identity maps follow the binding (the application's scoped session).
_current_sessions: list[Callable[[], Session | None]] = []


def _rebind(value: int | _AllTenants | None) -> object:
    _forget_other_tenants(value)
    return _bound.set(value)


def _unbind(token: Any) -> None:
    _forget_other_tenants(token.old_value if token.old_value is not token.MISSING else None)
    _bound.reset(token)


@contextmanager
def bind_tenant(tenant_id: int) -> Iterator[int]:
    token = _rebind(int(tenant_id))
    try:
        yield int(tenant_id)
    finally:
        _unbind(token)


@contextmanager
def all_tenants() -> Iterator[None]:
    """Lift the scope for platform-level work that must see every tenant (use sparingly)."""
    token = _rebind(ALL_TENANTS)
    try:
        yield
    finally:
        _unbind(token)


def set_bound(value: int | None) -> object:
    """Bind without a with-block (request hooks); returns the token for `reset_bound`."""
    return _rebind(value)


def reset_bound(token: object) -> None:
    _unbind(token)


def _forget_other_tenants(coming: int | _AllTenants | None) -> None:
    """Before `coming` is bound, write out what the session holds of other tenants (under the
    binding it was loaded in) and drop those objects, so that no later `session.get` returns
    them from the identity map without asking the database."""
    if not isinstance(coming, int) or coming == _bound.get():
        return
    for current in _current_sessions:
        session = current()
        if session is None:
            continue
        foreign = [obj for obj in list(session.identity_map.values()) + list(session.new)
                   if isinstance(obj, TenantScoped) and obj.tenant_id != coming]
        if not foreign:
            continue
        if session.new or session.dirty or session.deleted:
            session.flush()
        for obj in foreign:
            if obj in session:
                session.expunge(obj)


_TENANT_TABLES: dict[str, Table] = {}


def _tenant_tables() -> dict[str, Table]:
    if not _TENANT_TABLES:
        from sqlalchemy.orm import class_mapper

        for cls in _all_subclasses(TenantScoped):
            try:
                table = class_mapper(cls).local_table
            except Exception:  # an abstract mixin, not mapped
                continue
            if isinstance(table, Table):
                _TENANT_TABLES[table.name] = table
    return _TENANT_TABLES


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def _references(statement: Any) -> tuple[set[str], set[str]]:
    """The tenant-owned tables a statement reads or writes through mapped entities, and those
    `with_loader_criteria` cannot reach: a bare Core table, or a table a SELECT (at any depth)
    names only in its WHERE without it being in its FROM or an enclosing query's (as
    `exists().where(Pause.resident_id == Resident.id)` does: the ORM adds no criteria there)."""
    mapped: set[str] = set()
    bare: set[str] = set()
    _level(statement, frozenset(), mapped, bare, set())
    return mapped, bare


def _level(node: Any, outer: frozenset[str], mapped: set[str], bare: set[str],
           seen: set[int]) -> None:
    tables = _tenant_tables()
    here: set[str] = set()
    froms: list[Any] = []
    if isinstance(node, Select):
        # The ORM adds its criteria for the entities it finds: explicit FROMs and joins, and the
        # first mapped column of each selected expression.
        # with_only_columns() keeps the joins made so far in _memoized_select_entities.
        joins = [*node._setup_joins,
                 *(join for memo in node._memoized_select_entities for join in memo._setup_joins)]
        froms = [*node._from_obj, *(join[0] for join in joins)]
        for column in node._raw_columns:
            entity = extract_first_column_annotation(column, "parententity")
            if entity is not None and isinstance(entity.mapper.local_table, Table):
                if entity.mapper.local_table.name in tables:
                    here.add(entity.mapper.local_table.name)
            elif isinstance(column, Table):
                froms.append(column)
    elif isinstance(node, UpdateBase):
        froms = [node.table]
    for table in _from_tables(froms):
        if table.name in tables:
            if "parententity" in table._annotations:
                here.add(table.name)
            else:
                bare.add(table.name)
    mapped |= here
    covered = outer | here
    nested: list[Any] = []
    named: set[str] = set()
    _collect(node, node, named, nested, seen)
    bare |= {name for name in named if name in tables and name not in covered}
    for child in nested:
        _level(child, covered, mapped, bare, seen)


def _collect(root: Any, node: Any, named: set[str], nested: list[Any], seen: set[int]) -> None:
    """The tables this query level names through columns, and the queries nested in it."""
    for child in node.get_children():
        if id(child) in seen:
            continue
        seen.add(id(child))
        if isinstance(child, Select | UpdateBase) and child is not root:
            nested.append(child)
            continue
        table = getattr(child, "table", None) if isinstance(child, ColumnClause) else None
        if isinstance(table, Table):
            named.add(table.name)
        elif table is not None and id(table) not in seen:
            seen.add(id(table))
            _collect(root, table, named, nested, seen)
        if not isinstance(child, Table):
            _collect(root, child, named, nested, seen)


def _from_tables(froms: Any) -> Iterator[Table]:
    for frm in froms:
        if isinstance(frm, Join):
            yield from _from_tables((frm.left, frm.right))
        elif isinstance(frm, Table):
            yield frm


def _dml_target(statement: Any) -> Table | None:
    if isinstance(statement, UpdateBase):
        table = statement.table
        if isinstance(table, Table) and table.name in _tenant_tables():
            return table
    return None


def _is_mapped_target(statement: Any) -> bool:
    return "parententity" in getattr(statement.table, "_annotations", {})


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _scope_text(statement: TextClause, bound: int | None) -> None:
    named = set(_WORD.findall(statement.text)) & set(_tenant_tables())
    if not named:
        return
    if bound is None:
        raise TenantNotBound(f"raw SQL on tenant-owned {sorted(named)} with no tenant bound")
    raise UnscopedStatement(f"raw SQL on tenant-owned {sorted(named)} cannot be scoped; "
                            "use the ORM entities, or all_tenants() for platform work")


def _stamp_values(state: ORMExecuteState, tenant_id: int) -> None:
    """Rows an INSERT brings as parameters belong to the bound tenant: fill a missing tenant_id,
    refuse another tenant's."""
    params = state.parameters
    rows = params if isinstance(params, list) else [params] if isinstance(params, dict) else []
    for row in rows:
        if "tenant_id" not in row or row["tenant_id"] is None:
            row["tenant_id"] = tenant_id
        elif row["tenant_id"] != tenant_id:
            raise CrossTenantWrite(f"insert of tenant {row['tenant_id']}'s row under {tenant_id}")
    statement = state.statement
    for values in [getattr(statement, "_values", None) or {},
                   *(getattr(statement, "_multi_values", None) or ())]:
        for key, value in (values.items() if isinstance(values, dict) else ()):
            if getattr(key, "key", key) == "tenant_id" and getattr(value, "value", tenant_id) != tenant_id:
                raise CrossTenantWrite(f"insert of another tenant's row under {tenant_id}")


def _refuse_moves(statement: Any) -> None:
    values = getattr(statement, "_values", None) or {}
    if any(getattr(key, "key", key) == "tenant_id" for key in values):
        raise CrossTenantWrite("rows may not move between tenants")


def _scope_statement(state: ORMExecuteState) -> None:
    # Loads of columns and relationships inherit the criteria of the query that loaded the parent.
    if state.is_select and (state.is_column_load or state.is_relationship_load):
        return
    bound = _bound.get()
    if bound is ALL_TENANTS:
        return  # platform work sees every tenant: nothing to scope, no statement to walk
    statement = state.statement
    if isinstance(statement, TextClause):
        _scope_text(statement, bound)
        return
    mapped, bare = _references(statement)
    target = _dml_target(statement)
    if not (mapped or bare or target is not None):
        return
    if bound is None:
        raise TenantNotBound(
            "statement on a tenant-owned table with no tenant bound; "
            "bind one with bind_tenant() or say all_tenants()"
        )
    tenant_id = bound
    if state.is_update:
        _refuse_moves(statement)
    if isinstance(statement, Insert):
        _stamp_values(state, tenant_id)
    core_target = target if target is not None and not _is_mapped_target(statement) else None
    if core_target is not None and not isinstance(statement, Insert):
        # A Core UPDATE or DELETE of the table itself: scoped by its own WHERE.
        statement = statement.where(core_target.c.tenant_id == tenant_id)
    unscoped = bare - ({core_target.name} if core_target is not None else set())
    if unscoped:
        raise UnscopedStatement(
            f"Core statement on tenant-owned {sorted(unscoped)} cannot be scoped; "
            "select from the mapped entities (select_from(Model) where a table is only named in a "
            f"WHERE), or say all_tenants() for platform work: {_excerpt(statement)}")
    state.statement = statement.options(
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


def install(session_class: type[Session] = Session,
            current_session: Callable[[], Session | None] | None = None) -> None:
    """Register the listeners once for every session of the application; `current_session`
    gives the session (if any) whose identity map must follow the binding."""
    if not event.contains(session_class, "do_orm_execute", _scope_statement):
        event.listen(session_class, "do_orm_execute", _scope_statement)
        event.listen(session_class, "before_flush", _stamp_tenant)
    if current_session is not None and current_session not in _current_sessions:
        _current_sessions.append(current_session)


def _excerpt(statement: Any) -> str:
    """The statement's SQL, shortened, for the error (bound values are not rendered)."""
    text = " ".join(str(statement).split())
    return text if len(text) <= 400 else text[:400] + " …"
