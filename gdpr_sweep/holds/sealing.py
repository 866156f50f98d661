"""Sealing a key that may be personal: AES-256-GCM under a key derived from the hash
key (HKDF-SHA256 with its own label, so it is never the HMAC key itself), a random
96-bit nonce per seal, and the database and table as associated data (a sealed key
copied onto another row does not open).

Holds seal their keys here; so do erased persons' root keys (`fingerprints.py`), and
`audit rotate-key` re-seals both under the new key.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import uuid
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SEAL_VERSION = "v1"
_SEAL_INFO = b"gdpr-sweep hold key v1"  # HKDF label: this key encrypts holds, nothing else
_NONCE_BYTES = 12


def _cipher(hmac_key: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
        hmac_key
    )
    return AESGCM(derived)


def _associated(database: str, table: str) -> bytes:
    return "\x1f".join(("gdpr-sweep hold", database, table)).encode("utf-8")


def _encode(value: Any) -> list[str]:
    """One key value as [type, text], so it is bound with the type it was checked with."""
    if isinstance(value, bool):
        raise TypeError("a boolean primary key")
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, dt.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, dt.time):
        return ["time", value.isoformat()]
    if isinstance(value, decimal.Decimal):
        return ["decimal", str(value)]
    if isinstance(value, str):
        return ["str", value]
    raise TypeError(type(value).__name__)


_DECODERS: dict[str, Any] = {
    "int": int,
    "uuid": uuid.UUID,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": decimal.Decimal,
    "str": str,
}


def seal(hmac_key: bytes, database: str, table: str, values: tuple[Any, ...]) -> str:
    """Encrypt a key for the state database: `v1:` + base64url(nonce + ciphertext + tag)."""
    plaintext = json.dumps([_encode(v) for v in values], separators=(",", ":")).encode("utf-8")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(hmac_key).encrypt(nonce, plaintext, _associated(database, table))
    return f"{_SEAL_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(hmac_key: bytes, database: str, table: str, sealed: str) -> tuple[Any, ...]:
    """Open a sealed key; ValueError if it does not open with this secret for this table."""
    version, _, body = sealed.partition(":")
    if version != _SEAL_VERSION:
        raise ValueError(f"unknown sealed-key format {version!r}")
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        plaintext = _cipher(hmac_key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(database, table)
        )
    except (InvalidTag, ValueError):
        raise ValueError("the sealed key does not open with this hash key") from None
    return tuple(_DECODERS[kind](text) for kind, text in json.loads(plaintext))
