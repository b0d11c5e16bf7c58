"""Flask extension objects, created unbound here and initialised by `wsgi.create_app`."""

from flask import has_app_context
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import Session

# Deterministic constraint names keep Alembic migrations identical on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def current_session() -> Session | None:
    """The application context's session if it has one already (none is created)."""
    if has_app_context() and db.session.registry.has():
        return db.session()
    return None


migrate = Migrate(compare_type=True, render_as_batch=True)

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# Keyed by client address; the storage (Redis when configured) is set in admin_ui.init_admin.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
