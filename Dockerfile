# The Mimamori image: `mimamori` is the entrypoint (run by tini), `serve` the default command; the
# Helm chart runs `worker`, `scheduler` and `db upgrade` from the same image.
#
#   docker build -t registry.example.jp/platform/mimamori:0.1.0 .
#
# Two stages: the builder installs the dependencies and the project's wheel (with the compiled
# translations and the dashboard's static files in it) into a virtualenv; the final image is that
# virtualenv on a slim Python, run as an unprivileged user, with nothing written outside the
# instance folder and /tmp (mount both writable when the root filesystem is read-only).
#
# No `# syntax=` line: BuildKit would fetch that frontend from Docker Hub on every build, even when
# PYTHON_IMAGE names a base in a private registry; the built-in frontend reads this file as it is.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/mimamori

# The dependencies first, read from setup.cfg, so a change to the code alone reuses this layer.
COPY setup.cfg ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); \
print(c['options']['install_requires'].strip())" > requirements.txt \
 && /opt/mimamori/bin/pip install --requirement requirements.txt

COPY pyproject.toml README.md babel.cfg wsgi.py ./
COPY mimamori/ mimamori/
COPY tenants/ tenants/
COPY schemas/ schemas/
COPY api/ api/
COPY worker/ worker/
COPY admin_ui/ admin_ui/

# Translations compiled here, so the read-only image never needs to write a .mo at start-up; a
# tree without catalogs builds too.
RUN if ls admin_ui/translations/*/LC_MESSAGES/*.po >/dev/null 2>&1; then \
      /opt/mimamori/bin/pybabel compile --directory admin_ui/translations --statistics; \
    fi

# The project as a wheel (package data: migrations, templates, static files, .mo catalogs). The
# check runs with -P so it imports the installed wheel, not the sources in the working directory.
RUN /opt/mimamori/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/mimamori/bin/pip install --no-deps /wheels/mimamori-*.whl \
 && /opt/mimamori/bin/python -P -c "import pathlib, admin_ui, mimamori, wsgi; \
assert (pathlib.Path(mimamori.__file__).parent / 'migrations' / 'alembic.ini').is_file(); \
assert (pathlib.Path(admin_ui.__file__).parent / 'static').is_dir(); \
assert wsgi.__file__.startswith('/opt/mimamori/'), wsgi.__file__; \
print('mimamori installed from', wsgi.__file__)"


FROM ${PYTHON_IMAGE}
ENV PATH=/opt/mimamori/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MIMAMORI_ENV=production \
    MIMAMORI_INSTANCE_PATH=/var/lib/mimamori/instance \
    PORT=5000

# tini as PID 1: the kernel drops a SIGTERM sent to PID 1 that installed no handler, so without
# it `mimamori scheduler` ignored `docker stop` and Kubernetes' SIGTERM and was killed after the
# grace period. tini forwards the signal to mimamori (gunicorn and the RQ worker still shut down
# gracefully) and reaps orphaned processes. `apt-get clean` keeps apt's 75 MB package cache out of
# the layer on a base that, unlike Debian's official images, does not drop it by itself.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 mimamori \
 && useradd --system --uid 10001 --gid mimamori --home-dir /var/lib/mimamori \
      --no-create-home --shell /usr/sbin/nologin mimamori \
 && install --directory --owner=10001 --group=10001 /var/lib/mimamori /var/lib/mimamori/instance

COPY --from=builder /opt/mimamori /opt/mimamori

WORKDIR /var/lib/mimamori
USER 10001:10001
EXPOSE 5000 9100
ENTRYPOINT ["/usr/bin/tini", "--", "mimamori"]
CMD ["serve"]
