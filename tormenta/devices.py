"""Per-device tokens of the geo endpoint: a phone can post only its own positions.

A device's token is ``HMAC-SHA256(key, device_id)`` (hex, 32 characters), given to the phone when
it is provisioned. Each position a phone (or a gateway batching many phones) posts carries its
device's token in a ``token`` field; the endpoint recomputes it from the one key, so it keeps no
per-device table. A position with a missing or wrong token is refused (HTTP 401): knowing one
device's token does not let a phone post as another.

The key lives in ``<TORMENTA_HOME>/secrets/geo-devices.key`` (mode 0600, made by ``tormenta stack
up``), or in the file named by ``TORMENTA_GEO_DEVICE_KEY_FILE``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "geo-devices.key"
KEY_ENV = "TORMENTA_GEO_DEVICE_KEY_FILE"


class DeviceKeyError(ValueError):
    """No usable device key: the endpoint cannot authenticate phones."""


def key_path() -> Path:
    from tormenta.settings import load

    return Path(os.environ.get(KEY_ENV) or load().secrets_dir / KEY_FILE)


def new_key() -> str:
    return secrets.token_hex(32)


def load_key(path: str | Path | None = None) -> bytes:
    path = Path(path) if path else key_path()
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise DeviceKeyError(f"no device key at {path}: `tormenta stack up` creates it, or set {KEY_ENV}") from None
    if len(key) < 32:
        raise DeviceKeyError(f"device key in {path} is too short (at least 32 characters)")
    return key.encode()


def device_token(key: bytes, device_id: str) -> str:
    return hmac.new(key, device_id.encode(), hashlib.sha256).hexdigest()[:32]


def token_ok(key: bytes, device_id: str, token: object) -> bool:
    return isinstance(token, str) and hmac.compare_digest(device_token(key, device_id), token)
