"""The `mimamori` command line: schema migrations, operator accounts, the web server and `dev`."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import IO, Any

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, ScriptInfo, pass_script_info, routes_command, shell_command
from flask_migrate import upgrade
from flask_migrate.cli import db as db_commands
from marshmallow import ValidationError, validate
from werkzeug.serving import run_simple

from mimamori.extensions import db
from mimamori.gunicorn_config import TEMPORARY_METRICS_DIR
from mimamori.settings import SettingsError
from schemas.tenants import MIN_PASSWORD_LENGTH
from tenants.errors import Conflict
from tenants.services import audit, staff, tokens
from tenants.services.demo import DemoLogin, seed_demo
from worker.commands import scheduler_command, tick_command, worker_command
from worker.embedded import ensure_redis, start_background
from wsgi import create_app

DEFAULT_PORT = 5000
DEFAULT_WEB_CONCURRENCY = 2
GUNICORN_THREADS = 4
port_option = click.option(
    "--port", envvar="PORT", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
    help="Port to listen on (also from PORT).",
)


class ConfigurationError(NoAppException):
    """Settings that cannot run, reported in one line with exit status 1.

    As a NoAppException, Flask's CLI prints it without a traceback even while it only lists
    commands (`mimamori --help`); `show` drops the usage text of a UsageError, which does not
    help anyone fix a setting.
    """

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.ClickException.show(self, file)


def _create_app() -> Flask:
    try:
        return create_app()
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from exc


cli = FlaskGroup(
    name="mimamori", create_app=_create_app, add_default_commands=False,
    help="Mimamori (見守り): safety checks (安否確認) for residents who live alone.",
)
# The app always comes from create_app(), so Flask's --app option would only mislead.
cli.params = [param for param in cli.params if param.name != "app"]
# Registered here rather than by Migrate.init_app, so `db` exists even when the app cannot load.
cli.add_command(db_commands)
cli.add_command(shell_command)
cli.add_command(routes_command)
cli.add_command(tick_command)
cli.add_command(worker_command)
cli.add_command(scheduler_command)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@cli.command("create-operator")
@click.argument("email")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of a prompt.")
@click.option("--print-token", is_flag=True,
              help="Also issue an operator API token and print it alone on the last line.")
def create_operator(email: str, password_stdin: bool, print_token: bool) -> None:
    """Create a platform operator (運営者) who provisions tenants."""
    try:
        validate.Email()(email.strip())
    except ValidationError as exc:
        raise click.ClickException(f"{email!r} is not an e-mail address.") from exc
    password = _read_password(password_stdin)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    try:
        user = staff.create_operator(email, password)
    except Conflict as exc:
        raise click.ClickException(f"An account with the e-mail address {email} already exists.") from exc
    audit.record("operator.create", tenant_id=None, target=user,
                 detail={"via": "mimamori create-operator"})
    plain = None
    if print_token:
        token, plain = tokens.issue(None, "mimamori create-operator", user_id=user.id)
        audit.record("token.issue", tenant_id=None, target=token,
                     detail={"via": "mimamori create-operator"})
    db.session.commit()
    click.echo(f"Created operator {user.email}.")
    if plain is not None:
        # Alone on the last line, so scripts can take it with `tail -n 1`.
        click.echo(plain)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise click.ClickException(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


@cli.command("serve", with_appcontext=False)
@port_option
@pass_script_info
def serve(info: ScriptInfo, port: int) -> None:
    """Serve the web app (API, webhooks) under gunicorn on 0.0.0.0.

    WEB_CONCURRENCY sets the number of worker processes (default 2), each with a few threads;
    GUNICORN_CMD_ARGS passes further gunicorn options.
    """
    # Create the app once here so bad settings fail in one line before gunicorn forks workers.
    metrics_port = info.load_app().config.get("METRICS_PORT")
    workers = _env_int("WEB_CONCURRENCY", DEFAULT_WEB_CONCURRENCY)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every gunicorn worker counts into this directory and /metrics adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mimamori-metrics-")
        os.environ[TEMPORARY_METRICS_DIR] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    # Requests are logged by the app (JSON with request ids), so gunicorn keeps no access log.
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"0.0.0.0:{port}",
            "--workers", str(workers), "--threads", str(GUNICORN_THREADS),
            "--config", "python:mimamori.gunicorn_config", "wsgi:create_app()"]
    if metrics_port and metrics_port != port:
        argv[3:3] = ["--bind", f"0.0.0.0:{metrics_port}"]  # /metrics answers only on this one
    # Replace this process, so signals from a supervisor reach gunicorn's master directly.
    os.execv(sys.executable, argv)


def start_web(app: Flask, host: str, port: int) -> None:
    """The web app on Flask's threaded development server, in the foreground."""
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _login_details(login: DemoLogin, base_url: str) -> str:
    state = "作成しました (created)" if login.tenant_created else "既存 (reused)"
    lines = [
        "",
        "Mimamori デモ環境 (demo) — sandbox channel: no message leaves this machine",
        f"  API:              {base_url}/api/v1",
        f"  OpenAPI:          {base_url}/api/v1/openapi.json",
        f"  Tenant:           {login.tenant_name}  slug={login.tenant_slug}  id={login.tenant_id}"
        f"  {state}, {login.residents} residents",
    ]
    for account in login.accounts:
        label = "Operator" if account.role == "operator" else "Tenant admin"
        password = account.password or "(unchanged; `mimamori dev --reset-passwords` sets a new one)"
        lines.append(f"  {label + ':':<18}{account.email}  password: {password}")
    lines += [
        f"  Operator token:   {login.operator_token}",
        f"  Tenant token:     {login.tenant_token}",
        "",
        "Try:",
        f'  curl -H "Authorization: Bearer {login.tenant_token}" {base_url}/api/v1/residents',
        "",
    ]
    return "\n".join(lines)


@cli.command("dev", with_appcontext=False)
@port_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 to reach it from other machines).")
@click.option("--reset-passwords", is_flag=True,
              help="Give the existing demo accounts new passwords and print them.")
@pass_script_info
def dev(info: ScriptInfo, port: int, host: str, reset_passwords: bool) -> None:
    """Try Mimamori out: migrate, seed a demo tenant, print its logins and run everything.

    Web app, RQ worker and the clock run in this one process, on the embedded defaults (a SQLite
    file under the instance folder, an embedded Redis) unless DATABASE_URL / REDIS_URL say
    otherwise; the demo tenant uses the sandbox channel. Running it again reuses the demo tenant
    and issues fresh API tokens.
    """
    app = info.load_app()
    if app.config["MIMAMORI_ENV"] == "production":
        raise click.ClickException(
            "mimamori dev seeds demo accounts and is not for production; use mimamori serve."
        )
    app.config["METRICS_PORT"] = None  # one port for everything, /metrics included
    with app.app_context():
        upgrade()
        login = seed_demo(reset_passwords=reset_passwords)
        db.session.commit()
    click.echo(_login_details(login, f"http://localhost:{port}"))
    ensure_redis(app)
    start_background(app)
    start_web(app, host, port)


def main() -> None:
    # Flask insists on an absolute instance path; accept one relative to where the command runs.
    if os.environ.get("MIMAMORI_INSTANCE_PATH"):
        os.environ["MIMAMORI_INSTANCE_PATH"] = os.path.abspath(os.environ["MIMAMORI_INSTANCE_PATH"])
    cli.main(prog_name="mimamori")
