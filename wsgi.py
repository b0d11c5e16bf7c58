"""The wiring: settings, extensions and blueprints. Gunicorn serves `wsgi:create_app()`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from mimamori import logging as logs
from mimamori import outages, proxies
from mimamori.extensions import current_session, db, migrate
from mimamori.settings import engine_options, load_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "mimamori" / "migrations"


def create_app(overrides: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    app = Flask("mimamori", instance_path=instance_path or os.environ.get("MIMAMORI_INSTANCE_PATH"),
                instance_relative_config=True)
    settings = load_settings(Path(app.instance_path))
    app.config.update(settings.flask_config())
    app.config.update(overrides or {})
    logs.init_app(app)
    proxies.init_app(app)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )

    from tenants import crypto, tenancy

    crypto.configure(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])
    import tenants.models  # noqa: F401  (registers every table with the metadata)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    tenancy.install(current_session=current_session)

    from admin_ui import init_admin
    from api import init_api
    from api.health import blueprint as health_blueprint
    from api.webhooks import blueprint as webhooks_blueprint

    init_api(app)
    init_admin(app)
    outages.init_app(app)
    app.register_blueprint(health_blueprint)
    app.register_blueprint(webhooks_blueprint)
    return app
