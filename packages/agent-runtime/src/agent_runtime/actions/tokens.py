"""Resume tokens: bearer secrets that let a human (or their UI) answer exactly one action.

A token is shown once, to the code that created the action, and stored only as its SHA-256 hash, so
a leaked database dump or log line cannot resolve anything. 256 random bits make guessing hopeless;
hashing with a plain (unsalted) digest is enough because the input is already uniformly random, and
it keeps the hash usable as a unique, indexed lookup key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_BYTES", "new_resume_token", "hash_resume_token", "token_hash_matches"]

#: Random bytes per token (256 bits, well above the 128-bit floor for unguessable bearer secrets).
TOKEN_BYTES = 32

# Tokens we issue are 43 characters; anything far longer is not ours, and hashing megabytes of
# attacker input on an unauthenticated endpoint is a cheap denial of service.
_MAX_TOKEN_LENGTH = 512


def new_resume_token() -> str:
    """A fresh URL-safe token (43 characters) from the OS CSPRNG."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_resume_token(token: str) -> str:
    """The hex SHA-256 of ``token``: the only form a store ever keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_plausible_token(token: object) -> bool:
    """Cheap shape check before any lookup: a non-empty string of bounded length."""
    return isinstance(token, str) and 0 < len(token) <= _MAX_TOKEN_LENGTH


def token_hash_matches(stored_hash: str | None, token: str) -> bool:
    """Constant-time comparison of a stored hash with the hash of a presented token.

    Stores look tokens up by hash (an index); this re-check makes the final decision independent of
    how the lookup compared strings.
    """
    if stored_hash is None:
        return False
    return hmac.compare_digest(stored_hash.encode("ascii"), hash_resume_token(token).encode("ascii"))
