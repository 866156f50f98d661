"""The secret for keyed hashes (HMAC-SHA256), and the digests made with it.

The key comes only from the environment variable named by `sweep.hash_key_env`. It
keys the `hash` strategy's pseudonyms, the audit chain, the subject hashes in
receipts, and the digest of a plan's due keys — so none of them can be recomputed, or
forged, from the data alone.

Rotation (`gdpr-sweep audit rotate-key`): the current key writes; the keys it replaced
are given in `GDPR_SWEEP_OLD_KEYS` (comma-separated, so a key cannot contain a comma;
spaces around a comma are ignored). `keyring` is the current key followed by those:
they still verify the chain segments they wrote and match the fingerprints and
identifier hashes recorded under them.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from .config import Config
from .errors import ConfigError

MIN_KEY_LENGTH = 16
#: The environment variable naming the keys a rotation replaced (comma-separated).
OLD_KEYS_ENV = "GDPR_SWEEP_OLD_KEYS"


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


def old_keys() -> list[bytes]:
    """The keys in GDPR_SWEEP_OLD_KEYS, in the order given; ConfigError naming the
    variable if one is shorter than MIN_KEY_LENGTH (empty items are ignored)."""
    found: list[bytes] = []
    for position, item in enumerate(os.environ.get(OLD_KEYS_ENV, "").split(","), 1):
        text = item.strip()
        if not text:
            continue
        if len(text) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{OLD_KEYS_ENV}: key {position} is shorter than {MIN_KEY_LENGTH} characters "
                "(keys are separated by commas; a key cannot contain one)"
            )
        old_key = text.encode("utf-8")
        if old_key not in found:
            found.append(old_key)
    return found


def keyring(config: Config) -> list[bytes]:
    """The current key (it writes) first, then the old keys (they only read)."""
    current = hash_key(config)
    return [current, *(old for old in old_keys() if old != current)]


def keyed_hex(hmac_key: bytes, *parts: str) -> str:
    """Return HMAC-SHA256 of the parts (unit-separated) as hex."""
    mac = hmac.new(hmac_key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part.encode("utf-8"))
        mac.update(b"\x1f")
    return mac.hexdigest()


def key_label(hmac_key: bytes, value: object, personal: bool) -> str:
    """Return a row key as it may be recorded: itself, or a keyed hash if it is personal."""
    if value is None:
        return ""
    if not personal:
        return str(value)
    return "hmac:" + keyed_hex(hmac_key, "row-key", str(value))[:32]
