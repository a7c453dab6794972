"""API keys: who is calling, by name, without ever keeping or showing the key.

Keys come from ``SCREENING_API_KEYS_FILE``, one ``name sha256-hex-of-key`` a line (``#``
comments and blank lines allowed), so the file on the server holds no usable secret; or,
for development, from ``SCREENING_API_KEYS="name:key,…"``. A request presents its key as
``Authorization: Bearer <key>``.

The presented key is hashed and compared with *every* stored digest by
:func:`hmac.compare_digest`, with no early exit, so the time taken says nothing about how
much of a key matched or which key it was. What identifies the caller afterwards — in
logs, metrics labels, audit records — is the key's *name*, which is why names are
restricted to a short, label-safe alphabet.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from pathlib import Path

from screening.errors import ConfigError

__all__ = ["KEY_NAME", "MIN_KEY_CHARS", "ApiKeys", "digest"]

#: What a key name may be: it becomes a metrics label and a log and record field.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Shortest key accepted from SCREENING_API_KEYS (``openssl rand -hex 32`` gives 64).
MIN_KEY_CHARS = 32
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest(key: str) -> str:
    """The SHA-256 hex digest of a key, as the keys file stores it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    """The accepted keys, as ``name → SHA-256 digest``."""

    def __init__(self, digests: Mapping[str, str]):
        for name, value in digests.items():
            if not KEY_NAME.fullmatch(name):
                raise ConfigError(f"API key name {name!r}: letters, digits, '_', '.', '-' "
                                  "(at most 64, starting with a letter or digit)")  # fmt: skip
            if not _HEX_DIGEST.fullmatch(value):
                raise ConfigError(f"API key {name!r}: a SHA-256 digest is 64 lower-case hex digits")
        self._digests = [(name, bytes.fromhex(value)) for name, value in digests.items()]

    def __len__(self) -> int:
        return len(self._digests)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._digests]

    @classmethod
    def load(cls, path: str | Path) -> ApiKeys:
        """Read a keys file; a bad line stops start-up naming the file and line (never the
        line's content: it could be a pasted key)."""
        digests: dict[str, str] = {}
        source = Path(path)
        try:
            lines = source.read_text("utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"SCREENING_API_KEYS_FILE {source}: {exc.strerror}") from None
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            parts = stripped.split()
            where = f"{source}:{number}"
            if len(parts) != 2 or not _HEX_DIGEST.fullmatch(parts[1].lower()):
                raise ConfigError(f"{where}: expected `name sha256-hex-of-key` "
                                  "(`printf %s \"$KEY\" | sha256sum`)")  # fmt: skip
            if parts[0] in digests:
                raise ConfigError(f"{where}: the key name {parts[0]!r} is used twice")
            digests[parts[0]] = parts[1].lower()
        return cls(digests)

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """``name:key,name:key`` (SCREENING_API_KEYS, development)."""
        digests: dict[str, str] = {}
        for number, item in enumerate(filter(None, (i.strip() for i in spec.split(","))), 1):
            name, sep, key = item.partition(":")
            if not sep or not key:
                raise ConfigError(f"SCREENING_API_KEYS entry {number}: expected name:key")
            if len(key) < MIN_KEY_CHARS:
                raise ConfigError(f"SCREENING_API_KEYS entry {number} ({name}): the key is "
                                  f"shorter than {MIN_KEY_CHARS} characters")  # fmt: skip
            if name in digests:
                raise ConfigError(f"SCREENING_API_KEYS: the key name {name!r} is used twice")
            digests[name] = digest(key)
        return cls(digests)

    @classmethod
    def configured(cls, keys_file: str | None, keys: str | None) -> ApiKeys:
        """Both sources merged (a name in both is refused); empty when neither is set."""
        merged: dict[str, bytes] = {}
        for source in (cls.load(keys_file) if keys_file else None,
                       cls.parse(keys) if keys else None):  # fmt: skip
            for name, value in source._digests if source is not None else ():
                if name in merged:
                    raise ConfigError(f"API key name {name!r} is in both SCREENING_API_KEYS_FILE "
                                      "and SCREENING_API_KEYS")  # fmt: skip
                merged[name] = value
        return cls({name: value.hex() for name, value in merged.items()})

    def identify(self, authorization: str | None) -> str | None:
        """The name of the key in an ``Authorization`` header value, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).digest()
        found = None
        for name, expected in self._digests:  # every key, every time: no early exit
            if hmac.compare_digest(presented, expected):
                found = name
        return found
