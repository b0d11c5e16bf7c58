"""The installed `mimamori` command, run as a user runs it: in a subprocess with its own settings."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, inspect, select, text

from mimamori.extensions import db
from tenants.models import Delivery, User
from tenants.services.demo import seed_demo
from tenants.services.staff import verify_password
from tenants.tenancy import bind_tenant
from wsgi import create_app

MIMAMORI = shutil.which("mimamori", path=str(Path(sys.executable).parent))
# Settings the developer's shell may hold; each test states its own.
SETTINGS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY", "MIMAMORI_ENV",
            "MIMAMORI_INSTANCE_PATH", "PORT", "WEB_CONCURRENCY", "PUBLIC_BASE_URL")
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(MIMAMORI is None, reason="the mimamori console script is not installed")


def _env(instance: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    env["MIMAMORI_INSTANCE_PATH"] = str(instance)
    env.update(settings)
    return env


def mimamori(*args: str, env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([MIMAMORI, *args], env=env, cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


@contextmanager
def running(args: list[str], env: dict[str, str],
            cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A long-running command with its output in a file; stopped however the test ends."""
    output = cwd / f"{args[0]}.log"
    with output.open("wb") as sink:
        # Its own session, so gunicorn's workers can be stopped together with their master.
        process = subprocess.Popen([MIMAMORI, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process, output
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def wait_until_up(process: subprocess.Popen[bytes], output: Path, port: int, seconds: float = 90) -> None:
    # `serve` builds the app once to check the settings, then gunicorn's workers build it again:
    # on a busy machine that takes a while, and gunicorn holds early requests until then.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{output.read_text()}")
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:  # refused, reset or timed out (URLError is an OSError too)
            time.sleep(0.2)
    pytest.fail(f"no answer on port {port} within {seconds} s:\n{output.read_text()}")


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the test session's PostgreSQL server."""
    import psycopg

    name = f"mimamori_cli_{uuid.uuid4().hex[:8]}"
    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def empty_database(dialect: str, session_url: str, directory: Path) -> Iterator[str]:
    if dialect == "postgresql":
        if not session_url.startswith("postgresql"):
            pytest.skip("no PostgreSQL server for this test session")
        with postgres_database(session_url) as url:
            yield url
    else:
        yield f"sqlite:///{directory / 'cli.sqlite3'}"


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def migrated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A database of the session's dialect, migrated by `mimamori db upgrade`, and its settings."""
    directory = tmp_path_factory.mktemp("cli")
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    with empty_database(dialect, database_url, directory) as url:
        env = _env(directory / "instance", DATABASE_URL=url)
        result = mimamori("db", "upgrade", env=env, cwd=directory)
        assert result.returncode == 0, result.stderr
        yield {"url": url, "env": env, "cwd": directory}


@pytest.fixture
def same_keys_app(app: Flask) -> Any:
    """Build an app on another database; it shares the session app's keys, which are process-wide."""

    def build(url: str, instance: Path) -> Flask:
        return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                           "SECRET_KEY": app.config["SECRET_KEY"],
                           "ENCRYPTION_KEYS": app.config["ENCRYPTION_KEYS"]},
                          instance_path=str(instance))

    return build


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_db_upgrade_builds_the_schema_from_empty(dialect: str, database_url: str, tmp_path: Path) -> None:
    """Does `mimamori db upgrade` build every table in an empty database?"""
    with empty_database(dialect, database_url, tmp_path) as url:
        assert "residents" not in tables(url)
        result = mimamori("db", "upgrade", env=_env(tmp_path / "instance", DATABASE_URL=url), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert {"alembic_version", "tenants", "residents", "contacts", "checks", "incidents",
                "api_tokens"} <= tables(url)


def test_create_operator_prints_a_token_that_the_api_accepts(
    migrated: dict[str, Any], same_keys_app: Any, tmp_path: Path
) -> None:
    """Can I create an operator from a script and use the printed token as a Bearer token?"""
    result = mimamori("create-operator", "a@b.jp", "--password-stdin", "--print-token",
                      env=migrated["env"], cwd=migrated["cwd"], stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"mmr_\S+", token), result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    verifier = same_keys_app(migrated["url"], tmp_path / "instance")
    try:
        response = verifier.test_client().get("/api/v1/tenants",
                                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.get_json()
    finally:
        with verifier.app_context():
            db.engine.dispose()


def test_a_short_operator_password_is_refused(migrated: dict[str, Any]) -> None:
    """Is a password of fewer than 10 characters refused, with nothing created?"""
    result = mimamori("create-operator", "short@b.jp", "--password-stdin",
                      env=migrated["env"], cwd=migrated["cwd"], stdin="kurz123\n")
    assert result.returncode != 0
    assert "10 characters" in result.stderr
    engine = create_engine(migrated["url"])
    try:
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM users WHERE email = 'short@b.jp'")).scalar()
    finally:
        engine.dispose()
    assert count == 0


def test_an_email_already_used_is_refused(migrated: dict[str, Any]) -> None:
    """Is a second operator with the same e-mail address (in any case) refused?"""
    first = mimamori("create-operator", "dup@b.jp", "--password-stdin",
                     env=migrated["env"], cwd=migrated["cwd"], stdin=PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    second = mimamori("create-operator", "Dup@B.jp", "--password-stdin",
                      env=migrated["env"], cwd=migrated["cwd"], stdin=PASSWORD + "\n")
    assert second.returncode != 0
    assert "already exists" in second.stderr


def test_serve_answers_healthz(migrated: dict[str, Any]) -> None:
    """Does `mimamori serve --port N` bring up the web app on that port?"""
    port = free_port()
    env = {**migrated["env"], "WEB_CONCURRENCY": "1"}
    with running(["serve", "--port", str(port)], env, migrated["cwd"]) as (process, output):
        wait_until_up(process, output, port)


def test_production_without_secret_key_stops_with_one_clear_line(tmp_path: Path) -> None:
    """In production without SECRET_KEY, does serve refuse to start and say why, without a traceback?"""
    env = _env(tmp_path / "instance", MIMAMORI_ENV="production",
               DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    result = mimamori("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_dev_seeds_a_demo_tenant_and_prints_how_to_use_it(tmp_path: Path) -> None:
    """On a fresh instance folder, does `mimamori dev` print a tenant token that lists demo residents?"""
    port = free_port()
    with running(["dev", "--port", str(port)], _env(tmp_path / "instance"), tmp_path) as (process, output):
        wait_until_up(process, output, port)
        printed = output.read_text()
        assert "operator@example.jp" in printed and "admin@demo.example.jp" in printed
        assert re.search(r"Operator:.*password: \S{10,}", printed), printed
        tenant_token = re.search(r"Tenant token:\s+(mmr_\S+)", printed)
        assert tenant_token, printed

        status, body = get(f"http://127.0.0.1:{port}/api/v1/residents", tenant_token.group(1))
        residents = json.loads(body)["items"]
    assert status == 200
    assert len(residents) >= 8
    assert all(r["phone"].startswith("+81") and r["name_kana"] for r in residents)
    assert (tmp_path / "instance" / "mimamori.sqlite3").exists()


def test_dev_run_twice_keeps_the_demo_and_prints_working_tokens(clean_app: Flask,
                                                                client: FlaskClient) -> None:
    """When I run `mimamori dev` again, are my demo data and passwords kept, and do new tokens work?"""
    with clean_app.app_context():
        first = seed_demo()
        db.session.commit()
        second = seed_demo()
        db.session.commit()
        reset = seed_demo(reset_passwords=True)
        db.session.commit()
        for account in reset.accounts:
            user = db.session.scalar(select(User).where(User.email == account.email))
            assert user is not None and verify_password(user, str(account.password))
        assert db.session.scalar(select(func.count(User.id))) == 2

    assert first.tenant_created and not second.tenant_created
    assert second.tenant_id == first.tenant_id and second.residents == first.residents == 8
    assert all(account.password for account in first.accounts)
    assert all(account.password is None for account in second.accounts)
    for login in (first, second, reset):
        residents = client.get("/api/v1/residents",
                               headers={"Authorization": f"Bearer {login.tenant_token}"})
        assert residents.status_code == 200 and len(residents.get_json()["items"]) == 8
        tenants = client.get("/api/v1/tenants",
                             headers={"Authorization": f"Bearer {login.operator_token}"})
        assert [t["slug"] for t in tenants.get_json()["items"]] == ["demo"]


def test_tick_plans_and_worker_burst_sends(tmp_path: Path, same_keys_app: Any, redis_url: str) -> None:
    """Does `mimamori tick --at` plan the morning's checks, and `worker --burst` send them?"""
    url = f"sqlite:///{tmp_path / 'engine.sqlite3'}"
    env = _env(tmp_path / "instance", DATABASE_URL=url, REDIS_URL=redis_url)
    assert mimamori("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    application = same_keys_app(url, tmp_path / "instance")
    with application.app_context():
        login = seed_demo()
        db.session.commit()
    tomorrow_nine = (datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    ticked = mimamori("tick", "--at", tomorrow_nine.isoformat(), env=env, cwd=tmp_path)
    assert ticked.returncode == 0, ticked.stderr
    report = json.loads(ticked.stdout.strip().splitlines()[-1])
    assert report["checks_created"] == login.residents and report["tenants"] == 1
    again = json.loads(mimamori("tick", "--at", tomorrow_nine.isoformat(), env=env,
                                cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert again["checks_created"] == 0
    worked = mimamori("worker", "--burst", env=env, cwd=tmp_path)
    assert worked.returncode == 0, worked.stderr
    with application.app_context(), bind_tenant(login.tenant_id):
        statuses = db.session.scalars(select(Delivery.status)).all()
    assert statuses and set(statuses) == {"sent"}
    bad = mimamori("tick", "--at", "tomorrow morning", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "ISO-8601" in bad.stderr
