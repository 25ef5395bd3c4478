"""Secret material: the Fernet cipher for config secrets and the keyed hash for API tokens.

* ``INCIDENTFOX_SECRET_KEY`` holds one or more comma-separated Fernet keys, newest first; a
  :class:`~cryptography.fernet.MultiFernet` encrypts with the first and decrypts with any, so a new
  key can be prepended and ``incidentfox secrets rotate`` re-encrypts under it.
* Tokens are stored only as HMAC-SHA256(pepper, token); the pepper (``INCIDENTFOX_TOKEN_PEPPER``)
  never reaches the database, so a leaked table cannot be brute-forced offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet

from incidentfox.errors import IncidentFoxError
from incidentfox.settings import Settings

TOKEN_RANDOM_BYTES = 32  # 256 bits of randomness in every issued token


class CryptoConfigError(IncidentFoxError):
    """The process lacks (or has malformed) key material. A deployment error, not a client one."""

    status, code = 500, "crypto_misconfigured"


@lru_cache(maxsize=8)
def cipher_from_keys(spec: str) -> MultiFernet:
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    if not keys:
        raise CryptoConfigError("INCIDENTFOX_SECRET_KEY holds no Fernet key")
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError):
        raise CryptoConfigError("INCIDENTFOX_SECRET_KEY holds a malformed Fernet key") from None


def settings_cipher(settings: Settings) -> MultiFernet:
    if settings.secret_key is None:
        raise CryptoConfigError("INCIDENTFOX_SECRET_KEY is not set")
    return cipher_from_keys(settings.secret_key.get_secret_value())


def settings_pepper(settings: Settings) -> bytes:
    if settings.token_pepper is None or not settings.token_pepper.get_secret_value():
        raise CryptoConfigError("INCIDENTFOX_TOKEN_PEPPER is not set")
    return settings.token_pepper.get_secret_value().encode()


def hash_token(pepper: bytes, token: str) -> str:
    """Hex HMAC-SHA256 of ``token`` under the server pepper (what ``api_tokens.token_hash`` stores)."""
    return hmac.new(pepper, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def new_token_secret() -> str:
    """URL-safe random part of a token (no '.', so tokens split unambiguously on dots)."""
    return secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def derive_key(pepper: bytes, purpose: str) -> bytes:
    """A per-purpose key from the pepper, so one secret never signs two kinds of thing."""
    return hmac.new(pepper, f"incidentfox:{purpose}".encode(), hashlib.sha256).digest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
