"""Settings read from the environment (and a `.env` file), with the documented defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

# Values that look like a key but are known placeholders; production refuses them.
_PLACEHOLDER_KEYS = {"", "dev", "development", "secret", "changeme", "change-me", "test"}
MIN_SECRET_KEY_LENGTH = 32


class SettingsError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    environment: str
    database_url: str
    redis_url: str | None
    secret_key: str
    encryption_keys: tuple[str, ...]
    public_base_url: str
    line_api_base_url: str
    line_data_api_base_url: str
    twilio_api_base_url: str
    instance_path: Path
    # The metrics endpoint's own port: None when unset, 0 for none (see mimamori.metrics).
    metrics_port: int | None = None
    # Reverse proxies whose X-Forwarded-For is believed (CIDRs); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # A dashboard session ends after this long without a request, and this long after sign-in.
    session_idle_minutes: int = 120
    session_max_hours: int = 12
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def flask_config(self) -> dict[str, object]:
        return {
            "MIMAMORI_ENV": self.environment,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "ENCRYPTION_KEYS": self.encryption_keys,
            "PUBLIC_BASE_URL": self.public_base_url,
            "LINE_API_BASE_URL": self.line_api_base_url,
            "LINE_DATA_API_BASE_URL": self.line_data_api_base_url,
            "TWILIO_API_BASE_URL": self.twilio_api_base_url,
            "METRICS_PORT": self.metrics_port,
            "TRUSTED_PROXIES": self.trusted_proxies,
            "SESSION_IDLE_MINUTES": self.session_idle_minutes,
            "SESSION_MAX_HOURS": self.session_max_hours,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.is_production,
            # Bodies above this answer 413; CSV registers of 100,000 rows fit comfortably.
            "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
        }


def engine_options(url: str) -> dict[str, object]:
    # Statement parameters hold names and phone numbers; keep them out of errors and logs.
    if url.startswith("sqlite"):
        # Webhooks, workers and the web app write concurrently in `mimamori dev`.
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_pre_ping": True, "hide_parameters": True}


def _normalise_database_url(url: str) -> str:
    # Managed PostgreSQL providers hand out postgres:// URLs; SQLAlchemy wants a dialect+driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _development_secret(instance_path: Path) -> str:
    """A key generated once and kept under instance/, so sessions and encrypted columns survive restarts."""
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def _trusted_proxies(text: str) -> tuple[str, ...]:
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(
                f"TRUSTED_PROXIES must be comma-separated addresses or CIDRs (e.g. 10.0.0.0/8), "
                f"not {part!r}") from None
    return tuple(networks)


def _positive(env: dict[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(f"{name} must be a whole number above 0, not {text!r}")
    return int(text)


def load_settings(instance_path: Path, env: dict[str, str] | None = None) -> Settings:
    """Read settings from `env` (default: the process environment after loading `.env`)."""
    if env is None:
        load_dotenv(Path.cwd() / ".env", override=False)
        env = dict(os.environ)
    environment = env.get("MIMAMORI_ENV", "development").strip().lower()
    if environment not in {"development", "production", "testing"}:
        raise SettingsError(
            f"MIMAMORI_ENV must be development, production or testing, not {environment!r}"
        )
    secret_key = env.get("SECRET_KEY", "").strip()
    if environment == "production":
        if secret_key.lower() in _PLACEHOLDER_KEYS or len(secret_key) < MIN_SECRET_KEY_LENGTH:
            raise SettingsError(
                "SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters in production "
                '(for example: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
    elif not secret_key:
        secret_key = _development_secret(instance_path)

    raw_keys = env.get("ENCRYPTION_KEY", "").strip()
    encryption_keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())

    metrics_port = env.get("METRICS_PORT", "").strip()
    if metrics_port and not (metrics_port.isdigit() and int(metrics_port) <= 65535):
        raise SettingsError(
            f"METRICS_PORT must be a port number (0 turns the metrics endpoint off), not {metrics_port!r}"
        )

    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        instance_path.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{instance_path / 'mimamori.sqlite3'}"
    return Settings(
        environment=environment,
        database_url=_normalise_database_url(database_url),
        redis_url=env.get("REDIS_URL", "").strip() or None,
        secret_key=secret_key,
        encryption_keys=encryption_keys,
        public_base_url=env.get("PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/"),
        line_api_base_url=env.get("LINE_API_BASE_URL", "https://api.line.me").rstrip("/"),
        line_data_api_base_url=env.get(
            "LINE_DATA_API_BASE_URL", "https://api-data.line.me"
        ).rstrip("/"),
        twilio_api_base_url=env.get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/"),
        instance_path=instance_path,
        metrics_port=int(metrics_port) if metrics_port else None,
        trusted_proxies=_trusted_proxies(env.get("TRUSTED_PROXIES", "")),
        session_idle_minutes=_positive(env, "SESSION_IDLE_MINUTES", 120),
        session_max_hours=_positive(env, "SESSION_MAX_HOURS", 12),
    )
