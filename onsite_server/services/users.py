"""Dashboard users."""

from __future__ import annotations

from argon2 import PasswordHasher


def hash_password(password: str) -> str:
    """Hash a dashboard password with Argon2id."""
    return PasswordHasher().hash(password)
