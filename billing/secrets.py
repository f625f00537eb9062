"""Secrets kept in the database (SMTP passwords), encrypted with a key derived from SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256) with a key made by HKDF-SHA256 from the application's
SECRET_KEY and a purpose-specific `info`: with SECRET_KEY set in the environment (as production
should), a database dump alone reveals nothing; without it the key is the installation secret
stored in the same database. No other derived key (sessions, links) can read or forge one of
these values. Changing SECRET_KEY makes
the stored values unreadable (decrypt_secret raises SecretUnreadable): enter them again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: HKDF's context: binds the derived key to this use
KEY_INFO = b"ledgerline.stored-secrets.v1"


class SecretUnreadable(Exception):
    """A stored secret that this SECRET_KEY cannot decrypt (changed key, or altered value)."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret_key: str, plaintext: str) -> str:
    """The Fernet token of `plaintext` (ASCII, safe to store in a text column)."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt_secret(secret_key: str, token: str) -> str:
    """The plaintext of a value made by encrypt_secret with the same SECRET_KEY."""
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            "the stored secret cannot be decrypted with this SECRET_KEY"
        ) from None
