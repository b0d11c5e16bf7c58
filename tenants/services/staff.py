"""Staff accounts: operators and tenant users, with argon2 password hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from mimamori.extensions import db
from tenants.errors import Conflict
from tenants.models import User
from tenants.models.staff import OPERATOR

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _ensure_email_free(email: str) -> None:
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise Conflict("a user with this e-mail address exists",
                       {"email": ["A user with this e-mail address exists."]})


def create_user(email: str, password: str, role: str, tenant_id: int | None,
                name: str | None = None) -> User:
    email = email.strip().lower()
    _ensure_email_free(email)
    user = User(email=email, password_hash=hash_password(password), role=role,
                tenant_id=tenant_id, name=name)
    db.session.add(user)
    db.session.flush()
    return user


def create_operator(email: str, password: str) -> User:
    return create_user(email, password, OPERATOR, tenant_id=None)


def tenant_staff(tenant_id: int) -> list[User]:
    return list(db.session.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.id)))
