"""One redaction rule for everything that may be logged, pushed to XCom or rendered.

A key "looks secret" when it contains token, secret, password/passwd/pwd, credential, auth,
private, signature, or ends in ``key`` (api_key, accessKey, key) — but ``idempotencyKey`` style
protocol fields are listed as safe. Model backend params such as ``endpoint_name`` or
``model_version`` stay visible because operators need them to debug.
"""
from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
_SECRET_KEY = re.compile(r"(token|secret|passw(or)?d|pwd|credential|auth|private|signature|key$|_key|key_|apikey)",
                         re.IGNORECASE)
# Keys that match the pattern but carry no secret (protocol fields of this package).
_SAFE_KEYS = frozenset({"idempotencyKey", "idempotency_key", "keyColumns", "keyMapping", "primaryKey"})


def is_secret_key(key: str) -> bool:
    return key not in _SAFE_KEYS and bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """A deep copy of ``value`` with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    return value


def secret_values(value: Any) -> list[str]:
    """Every string value under a secret-looking key, for registering with a log masker."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and is_secret_key(k) and isinstance(v, (str, int, float)) and str(v):
                found.append(str(v))
            else:
                found.extend(secret_values(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(secret_values(v))
    return found


def redact_text(text: str, secrets: list[str]) -> str:
    """Replace each known secret value inside free text (e.g. an error message a backend echoed)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:  # masking 1-2 char values would shred ordinary words
            text = text.replace(secret, REDACTED)
    return text
