"""The container image's recipe, checked without a Docker engine: the Dockerfile's structure, and
its builder stage's steps (compile translations, build the wheel, install it) replayed here."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each a list of (INSTRUCTION, arguments)."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = parts[0]
            for name, value in args.items():
                base = base.replace("${" + name + "}", value)
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())[1]


def test_two_stages_on_slim_python(dockerfile):
    """Is it a builder stage and a final stage, both on a slim Python 3.11?"""
    builder, final = dockerfile
    assert builder.name == "builder"
    for stage in dockerfile:
        assert stage.base.startswith("python:3.11-slim"), stage.base
    assert any("--from=builder" in args for args in final.all("COPY"))


def test_final_stage_runs_mimamori_as_an_unprivileged_user(dockerfile):
    """Does the image run `mimamori serve` by default, as uid 10001, in production mode?"""
    final = dockerfile[-1]
    [user] = final.all("USER")
    assert user.split(":")[0] == "10001"
    # tini as PID 1 forwards SIGTERM: the scheduler installs no handler, and as PID 1 it would
    # ignore the signal until the kill at the end of the grace period.
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["/usr/bin/tini", "--", "mimamori"]
    assert any("install" in run and "tini" in run for run in final.all("RUN"))
    assert json.loads(final.all("CMD")[-1]) == ["serve"]
    env = " ".join(final.all("ENV"))
    assert "MIMAMORI_ENV=production" in env and "MIMAMORI_INSTANCE_PATH=" in env
    # Nothing is installed in the final stage: it runs what the builder made.
    assert not [run for run in final.all("RUN") if "pip" in run]


def test_builds_without_docker_hub_when_the_base_comes_from_elsewhere():
    """No `# syntax=` directive: BuildKit would fetch its frontend image from Docker Hub even when
    PYTHON_IMAGE points at a private registry or a mirror."""
    first = (ROOT / "Dockerfile").read_text().splitlines()[0]
    assert not first.replace(" ", "").lower().startswith("#syntax="), first


def test_builder_checks_the_installed_wheel_not_the_sources(dockerfile):
    """The builder's import check must not pick up /src from the working directory."""
    [check] = [run for run in dockerfile[0].all("RUN") if "pip install --no-deps" in run]
    assert "/opt/mimamori/bin/python -P -c" in check


def test_builder_compiles_translations_only_when_there_are_some(dockerfile):
    """Does the builder compile the dashboard's catalogs, and still build without any?"""
    [compile_step] = [run for run in dockerfile[0].all("RUN") if "pybabel compile" in run]
    assert compile_step.startswith("if ") and "admin_ui/translations" in compile_step


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.rstrip("/"), p) for p in patterns)


def _dockerignore() -> list[str]:
    return [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _copied_paths(stage: Stage) -> list[str]:
    sources = []
    for args in stage.all("COPY"):
        if args.startswith("--from"):
            continue
        sources += shlex.split(args)[:-1]
    return sources


def test_every_copied_path_is_in_the_build_context(dockerfile):
    """Does every file the builder copies exist, and is it left in the context by .dockerignore,
    while local secrets and state are kept out of it?"""
    patterns = _dockerignore()
    for source in _copied_paths(dockerfile[0]):
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), source
    for private in (".env", ".venv", ".git", "instance"):
        assert _ignored(private, patterns), private


def test_the_builder_steps_make_a_wheel_that_runs(dockerfile, tmp_path):
    """Replaying the builder stage here: compile the catalogs, build the wheel, install it; does the
    installed project carry its migrations, templates, static files and compiled catalogs, and
    migrate a database and answer /healthz and a static file in production mode?"""
    context = tmp_path / "context"
    for source in _copied_paths(dockerfile[0]):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "*.mo"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, context / source)
    bin_dir = Path(sys.executable).parent
    if list(context.glob("admin_ui/translations/*/LC_MESSAGES/*.po")):
        subprocess.run([str(bin_dir / "pybabel"), "compile", "--directory", "admin_ui/translations"],
                       cwd=context, check=True, capture_output=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--wheel-dir", str(tmp_path / "wheels"), "."],
                           cwd=context, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "wheels").glob("mimamori-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("wsgi.py", "mimamori/migrations/alembic.ini", "mimamori/migrations/env.py",
                     "mimamori/gunicorn_config.py", "admin_ui/static/app.css"):
        assert expected in names, expected
    assert any(n.startswith("mimamori/migrations/versions/") for n in names)
    assert any(n.startswith("admin_ui/templates/") and n.endswith(".html") for n in names)
    if list(context.glob("admin_ui/translations/*/LC_MESSAGES/*.po")):
        assert any(n.endswith("LC_MESSAGES/messages.mo") for n in names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=120)
    instance = tmp_path / "instance"
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY", "METRICS_PORT",
                          "PROMETHEUS_MULTIPROC_DIR")}
    env.update(PYTHONPATH=str(site), MIMAMORI_ENV="production", SECRET_KEY="k" * 48,
               MIMAMORI_INSTANCE_PATH=str(instance),
               DATABASE_URL=f"sqlite:///{tmp_path / 'image.sqlite3'}")
    script = f"""
import sys, wsgi
assert wsgi.__file__.startswith({str(site)!r}), wsgi.__file__
from flask_migrate import upgrade
app = wsgi.create_app()
with app.app_context():
    upgrade()
client = app.test_client()
assert client.get("/healthz").status_code == 200
assert client.get("/static/ui/app.css").status_code == 200
print("ok")
"""
    ran = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, check=False)
    assert ran.returncode == 0 and ran.stdout.strip().endswith("ok"), ran.stderr
