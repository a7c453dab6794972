"""Producer signatures: how our own processes tell our queue messages and published
versions from ones written straight into Redis.

Redis is shared by more parties than the workers: chat servers enqueue on it, analysts
publish through it, dashboards read it. Anyone who can write a key there could place a
``deliver_callback`` message ("blacklist user victim-123") on the callback queue, and the
callback process would sign it for the platform; or point the live wordlist at content
of their own. Neither secret we already have can guard against that: the callback secret
is known to the platform (it verifies callbacks), and the Redis password is known to
every chat server. So producers — screening workers, enforcement, user reports, callback
replay, ``policy lift``, ``wordlist``/``model publish`` — sign with a third key,
SCREENING_SIGNING_KEY, that only the screening deployment holds, and the consumers — the
callback process, a worker loading a version — refuse what does not verify.

A signature is HMAC-SHA256 over a purpose tag and the canonical JSON of the payload, so
a signature made for one purpose (a version) can never pass for another (a callback).
Like the callback signature it carries one MAC per active key (``v1=<hex>[,v1=<hex>]``):
during a rotation every process runs with the new key as current and the old one as
previous, so processes not yet restarted (old key only) and restarted ones (both) accept
each other's messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from screening.errors import ConfigError
from screening.settings import MIN_SECRET_BYTES

__all__ = [
    "PURPOSE_CALLBACK_EVENT",
    "PURPOSE_CALLBACK_MESSAGE",
    "PURPOSE_VERSION",
    "SigningKeys",
    "canonical",
    "content_digest",
]

#: A queue message for a callback actor: its actor name, args and kwargs.
PURPOSE_CALLBACK_MESSAGE = "callback-message"
#: One callback event kept in a dead-letter record (``callbacks replay`` re-sends it).
PURPOSE_CALLBACK_EVENT = "callback-event"
#: A published wordlist or model version: kind, version, content digest and metadata.
PURPOSE_VERSION = "version"


def canonical(payload: Any, *, decoded: bool = False) -> bytes:
    """The bytes a signature covers: JSON with sorted keys, after one round trip so that
    what a producer signs (tuples, int keys) and what a consumer decodes are the same.
    ``decoded``: ``payload`` was just decoded from JSON, so the round trip would give it
    back unchanged and is skipped (two thirds of the cost, paid for every callback event
    a callback process checks)."""
    normal = payload if decoded else json.loads(json.dumps(payload, allow_nan=False))
    # ASCII escapes: any string encodes, a lone surrogate included.
    return json.dumps(normal, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def content_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over every file's name and content, length-prefixed so that no two
    different sets of files produce the same byte stream. (A version's id is a 48-bit,
    NUL-separated hash: fine as a name, too weak and ambiguous to sign.)"""
    digest = hashlib.sha256()
    for name in sorted(files):
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(files[name]).to_bytes(8, "big") + files[name])
    return digest.hexdigest()


@dataclass(frozen=True)
class SigningKeys:
    """The active producer keys: current first, then the previous one while rotating."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigError("no signing key")
        for key in self.keys:
            if len(key) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"a signing key must be at least {MIN_SECRET_BYTES} bytes, got {len(key)}"
                )

    def __repr__(self) -> str:  # never print key material
        return f"SigningKeys(<{len(self.keys)} key(s)>)"

    @classmethod
    def of(cls, current: str, previous: str | None = None) -> SigningKeys:
        return cls(tuple(k.encode("utf-8") for k in (current, previous) if k))

    @classmethod
    def generate(cls) -> SigningKeys:
        """A random key for one process (embedded ``screening run``): nothing outside
        the process needs to verify what it signs."""
        return cls((secrets.token_hex(32).encode("ascii"),))

    def _mac(self, key: bytes, purpose: str, body: bytes) -> str:
        return hmac.new(key, purpose.encode("ascii") + b"\x00" + body, hashlib.sha256).hexdigest()

    def sign(self, purpose: str, payload: Any) -> str:
        body = canonical(payload)
        return ",".join(f"v1={self._mac(key, purpose, body)}" for key in self.keys)

    def verify(
        self, purpose: str, payload: Any, signature: Any, *, decoded: bool = False
    ) -> bool:
        """True when ``signature`` holds a MAC of ``payload`` by any active key. Anything
        malformed — a missing signature, a payload JSON cannot encode — is False.
        ``decoded``: ``payload`` comes straight from ``json.loads`` (:func:`canonical`)."""
        if not isinstance(signature, str):
            return False
        candidates = [part[3:] for part in signature.split(",") if part.startswith("v1=")]
        if not candidates:
            return False
        try:
            body = canonical(payload, decoded=decoded)
        except (TypeError, ValueError):
            return False
        given = [c.encode("utf-8", "replace") for c in candidates]
        for key in self.keys:
            expected = self._mac(key, purpose, body).encode("ascii")
            if any(hmac.compare_digest(expected, candidate) for candidate in given):
                return True
        return False
