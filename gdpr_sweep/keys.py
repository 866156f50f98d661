"""The secret for keyed hashes (HMAC-SHA256), and the digests made with it.

The key comes only from the environment variable named by `sweep.hash_key_env`. It
keys the `hash` strategy's pseudonyms, the audit chain, the subject hashes in
receipts, and the digest of a plan's due keys — so none of them can be recomputed, or
forged, from the data alone.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from .config import Config
from .errors import ConfigError

MIN_KEY_LENGTH = 16


def hash_key(config: Config) -> bytes:
    """Return the secret from the environment; ConfigError naming the key if it is unusable."""
    variable = config.sweep.hash_key_env
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(
            f"sweep.hash_key_env: environment variable {variable} is not set "
            "(the secret for keyed hashes and the audit chain)"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"sweep.hash_key_env: the secret in {variable} is shorter than "
            f"{MIN_KEY_LENGTH} characters"
        )
    return value.encode("utf-8")


def keyed_hex(key: bytes, *parts: str) -> str:
    """Return HMAC-SHA256 of the parts (unit-separated) as hex."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part.encode("utf-8"))
        mac.update(b"\x1f")
    return mac.hexdigest()


def key_label(key: bytes, value: object, personal: bool) -> str:
    """Return a row key as it may be recorded: itself, or a keyed hash if it is personal."""
    if value is None:
        return ""
    if not personal:
        return str(value)
    return "hmac:" + keyed_hex(key, "row-key", str(value))[:32]
