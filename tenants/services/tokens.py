"""API tokens: random bearer secrets shown once and stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import ApiToken
from tenants.types import utcnow

TOKEN_PREFIX = "mmr_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an operator token (tenant_id None) or a tenant token."""

    token_id: int
    tenant_id: int | None
    user_id: int | None

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(tenant_id: int | None, name: str = "", user_id: int | None = None) -> tuple[ApiToken, str]:
    """Create a token; the plain value is returned here and never again."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(tenant_id=tenant_id, user_id=user_id, name=name,
                     token_hash=_digest(plain), prefix=plain[:10])
    db.session.add(token)
    db.session.flush()
    return token, plain


def authenticate(plain: str) -> Principal | None:
    if not plain.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(plain)))
    if token is None or token.revoked_at is not None:
        return None
    token.last_used_at = utcnow()
    return Principal(token_id=token.id, tenant_id=token.tenant_id, user_id=token.user_id)
