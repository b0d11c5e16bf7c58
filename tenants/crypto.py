"""Encryption at rest for channel credentials and second-factor secrets (Fernet, rotatable keys)."""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_keyring: MultiFernet | None = None


class DecryptionError(RuntimeError):
    """A stored secret cannot be read with the configured keys (ENCRYPTION_KEY changed?)."""


def _as_fernet_key(material: str) -> bytes:
    """A Fernet key as given, or one derived from any other string with HKDF."""
    try:
        if len(base64.urlsafe_b64decode(material.encode())) == 32:
            return material.encode()
    except (binascii.Error, ValueError):
        pass
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"mimamori credentials at rest"
    ).derive(material.encode())
    return base64.urlsafe_b64encode(derived)


def configure(encryption_keys: tuple[str, ...], secret_key: str) -> None:
    """Set the keyring: the first key encrypts, every key decrypts (for rotation)."""
    global _keyring
    materials = encryption_keys or (secret_key,)
    _keyring = MultiFernet([Fernet(_as_fernet_key(m)) for m in materials])


def _ring() -> MultiFernet:
    if _keyring is None:
        raise RuntimeError("encryption keys are not configured; create the app first")
    return _keyring


def encrypt(plaintext: str) -> str:
    return _ring().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _ring().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("stored secret cannot be decrypted with ENCRYPTION_KEY") from exc
