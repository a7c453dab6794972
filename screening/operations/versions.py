"""Where published wordlist, model and bank versions live, and how workers hear about them.

A version is the full content of a wordlist, model or bank directory (file name →
bytes), stored under its content hash. Two pointers per kind say which version screens
(``live``) and which one runs beside it for comparison (``shadow``); a list of earlier
live versions makes rollback one command. Changing a pointer publishes a notice on a
pub/sub channel so workers reload within milliseconds; workers also re-read the pointers
every few seconds, so a notice missed during a reconnect delays a reload, never loses it.
Workers report what they loaded (and what failed to load) to a shared hash.

Every stored version is signed by its publisher with the producer key
(:mod:`screening.pipeline.signing`): kind, version, a digest of the content and the
metadata. A store that holds the key verifies a version whenever its files are read, so
a worker refuses — keeps its old version and reports the failure, as for any version
that fails to load — content written into Redis by anyone without the key. (Pointers are
not signed: moving one can only select a version that was published with the key.)

Two implementations of one small interface: :class:`RedisVersionStore` for deployments
and :class:`~screening.operations.versions_memory.MemoryVersionStore` for tests and one process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from screening.errors import ConfigError, SignatureError
from screening.pipeline.signing import PURPOSE_VERSION, SigningKeys, content_digest

__all__ = [
    "KINDS",
    "SLOTS",
    "Notice",
    "RedisVersionStore",
    "Subscription",
    "VersionStore",
]

KINDS = ("wordlist", "model", "bank")
SLOTS = ("live", "shadow")
#: Versions kept (content and rollback history); pointed-to versions are never pruned.
KEEP = 20
#: Events (publish, rollback, promote, boot) kept per kind.
KEEP_EVENTS = 200
#: What a version's meta may say about its publication, copied into its publish event.
EVENT_FIELDS = ("author", "reason", "forced", "findings", "source")
PREFIX = "screening:versions:"


@dataclass(frozen=True, slots=True)
class Notice:
    """A pointer changed: ``version`` None means the slot was cleared."""

    kind: str
    slot: str
    version: str | None


class Subscription(Protocol):
    def get(self, timeout: float) -> Notice | None: ...

    def close(self) -> None: ...


class VersionStore(Protocol):
    def publish(
        self,
        kind: str,
        version: str,
        files: Mapping[str, bytes],
        meta: Mapping[str, Any],
        slot: str = "live",
    ) -> None:
        """Store the content (if new) and point ``slot`` at it, then notify workers."""

    def files(self, kind: str, version: str) -> dict[str, bytes] | None: ...

    def meta(self, kind: str, version: str) -> dict[str, Any] | None: ...

    def pointer(self, kind: str, slot: str) -> str | None: ...

    def history(self, kind: str) -> list[str]:
        """Live versions, newest (the current one) first."""

    def rollback(self, kind: str, to: str | None = None, *, author: str = "") -> str:
        """Make the previous (or the given) version live again; returns it. The version
        it replaced is kept as :meth:`rolled_back` until the next publish or promote."""

    def events(self, kind: str) -> list[dict[str, Any]]:
        """What happened to the kind's versions, newest first: ``{"action": "boot" |
        "publish" | "rollback" | "promote", "version", "at", "author", ...}``."""

    def seed(self, kind: str, version: str, files: Mapping[str, bytes],
             meta: Mapping[str, Any]) -> bool:
        """Store the version workers booted from (their configured files) as the first
        of the history, so the first publish can be rolled back. Only while nothing was
        published live: True when stored now."""

    def promote(self, kind: str, *, author: str = "") -> str:
        """Make the shadow version live and clear the shadow slot; returns it."""

    def clear(self, kind: str, slot: str) -> None: ...

    def subscribe(self) -> Subscription: ...

    def report(self, worker: str, status: Mapping[str, Any]) -> None: ...

    def workers(self, max_age: float = 60.0) -> dict[str, dict[str, Any]]:
        """Statuses that workers reported within ``max_age`` seconds; older ones are
        dropped from the store (a worker killed without a goodbye)."""

    def forget(self, worker: str) -> None:
        """A worker that stops takes its status with it."""


def check(kind: str, slot: str = "live") -> None:
    if kind not in KINDS or slot not in SLOTS:
        raise ValueError(f"unknown kind/slot {kind!r}/{slot!r}")


def check_publish(kind: str, slot: str, files: Mapping[str, bytes]) -> None:
    """What every store refuses before publishing: an unknown kind/slot, no files."""
    check(kind, slot)
    if not files:
        raise ConfigError("refusing to publish an empty version")


def _decode(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _signed(kind: str, version: str, files: Mapping[str, bytes], record: Mapping[str, Any]) -> Any:
    """What a version's signature covers."""
    meta = {k: v for k, v in record.items() if k != "signature"}
    return {"kind": kind, "version": version, "content": content_digest(files), "meta": meta}


def publish_event(version: str, slot: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    event = {"action": "publish", "version": version, "slot": slot, "at": time.time()}
    return event | {k: meta[k] for k in EVENT_FIELDS if k in meta}


def rollback_event(current: str | None, target: str, author: str) -> dict[str, Any]:
    return {"action": "rollback", "version": target, "from": current, "at": time.time(),
            "author": author}  # fmt: skip


def rolled_back(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last rollback, unless a version went live after it."""
    for event in events:
        if event["action"] == "rollback":
            return event
        if event["action"] == "promote" or event.get("slot") == "live":
            return None
    return None


class RedisVersionStore:
    """``keys``: the producer keys. Publishing needs them; with them every read of a
    version's files is verified. Without them (``status``, offline tools) files are read
    as stored: workers always pass them (workers/operations.py)."""

    def __init__(
        self, client: redis.Redis, prefix: str = PREFIX, *, keys: SigningKeys | None = None
    ):
        self.client = client
        self.prefix = prefix
        self.keys = keys

    @classmethod
    def from_url(cls, url: str, *, keys: SigningKeys | None = None) -> RedisVersionStore:
        from screening.pipeline.state import redis_client  # Sentinel URLs too

        return cls(redis_client(url), keys=keys)

    def _key(self, kind: str, *parts: str) -> str:
        return self.prefix + ":".join((kind, *parts))

    @property
    def channel(self) -> str:
        return self.prefix + "notify"

    def _notify(self, pipe: Any, kind: str, slot: str, version: str | None) -> None:
        pipe.publish(self.channel, json.dumps({"kind": kind, "slot": slot, "version": version}))

    def publish(
        self,
        kind: str,
        version: str,
        files: Mapping[str, bytes],
        meta: Mapping[str, Any],
        slot: str = "live",
    ) -> None:
        check_publish(kind, slot, files)
        if self.keys is None:
            raise ConfigError("publishing needs SCREENING_SIGNING_KEY: workers load only "
                              "versions signed with it")  # fmt: skip
        # Publishing a stored version again keeps its first record (and publication time)
        # when that record is genuine.
        record = self.meta(kind, version)
        if record is None or not self._genuine(kind, version, files, record):
            record = {**meta, "version": version, "published_at": time.time()}
        record = {k: v for k, v in record.items() if k != "signature"}
        record["signature"] = self.keys.sign(PURPOSE_VERSION, _signed(kind, version, files, record))
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._key(kind, "files", version))
        pipe.hset(self._key(kind, "files", version), mapping=dict(files))
        pipe.hset(self._key(kind, "meta"), version, json.dumps(record, ensure_ascii=False))
        pipe.set(self._key(kind, slot), version)
        if slot == "live":
            pipe.lpush(self._key(kind, "history"), version)
            pipe.ltrim(self._key(kind, "history"), 0, KEEP - 1)
        self._event(pipe, kind, publish_event(version, slot, meta))
        self._notify(pipe, kind, slot, version)
        pipe.execute()
        self._prune(kind)

    def _event(self, pipe: Any, kind: str, event: Mapping[str, Any]) -> None:
        pipe.lpush(self._key(kind, "events"), json.dumps(event, ensure_ascii=False))
        pipe.ltrim(self._key(kind, "events"), 0, KEEP_EVENTS - 1)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.client.lrange(self._key(kind, "events"), 0, -1)]

    def seed(
        self, kind: str, version: str, files: Mapping[str, bytes], meta: Mapping[str, Any]
    ) -> bool:
        check_publish(kind, "live", files)
        if self.keys is None:
            return False  # unsigned content would be refused by every worker anyway
        record = {**meta, "version": version, "published_at": time.time(), "boot": True}
        record["signature"] = self.keys.sign(PURPOSE_VERSION, _signed(kind, version, files, record))
        event = {"action": "boot", "version": version, "at": record["published_at"]}
        event |= {k: meta[k] for k in EVENT_FIELDS if k in meta}

        def change(pipe: Any) -> bool:
            if pipe.exists(self._key(kind, "history"), self._key(kind, "live")):
                return False
            stored = pipe.exists(self._key(kind, "files", version))
            pipe.multi()
            if not stored:
                pipe.hset(self._key(kind, "files", version), mapping=dict(files))
                pipe.hset(self._key(kind, "meta"), version, json.dumps(record, ensure_ascii=False))
            pipe.rpush(self._key(kind, "history"), version)
            self._event(pipe, kind, event)
            return True

        return bool(self._move(kind, change))

    def _prune(self, kind: str) -> None:
        metas = {
            k.decode(): json.loads(v)
            for k, v in self.client.hgetall(self._key(kind, "meta")).items()
        }
        keep = set(self.history(kind)) | {self.pointer(kind, s) for s in SLOTS}
        ordered = sorted(metas, key=lambda v: metas[v].get("published_at", 0), reverse=True)
        for version in ordered[KEEP:]:
            if version not in keep:
                self.client.hdel(self._key(kind, "meta"), version)
                self.client.delete(self._key(kind, "files", version))

    def _genuine(
        self, kind: str, version: str, files: Mapping[str, bytes], record: Mapping[str, Any]
    ) -> bool:
        assert self.keys is not None
        signed = _signed(kind, version, files, record)
        return self.keys.verify(PURPOSE_VERSION, signed, record.get("signature"))

    def files(self, kind: str, version: str) -> dict[str, bytes] | None:
        """The version's files; with keys, only if its signature verifies (else
        :class:`SignatureError`, which a worker reports as a failed load)."""
        raw = self.client.hgetall(self._key(kind, "files", version))
        files = {k.decode(): v for k, v in raw.items()} or None
        if files is None or self.keys is None:
            return files
        record = self.meta(kind, version)
        if not isinstance(record, dict) or not self._genuine(kind, version, files, record):
            raise SignatureError(
                f"{kind} version {version} is not signed with our signing key "
                "(written to Redis by something other than `publish`?): refusing it"
            )
        return files

    def meta(self, kind: str, version: str) -> dict[str, Any] | None:
        raw = self.client.hget(self._key(kind, "meta"), version)
        return None if raw is None else json.loads(raw)

    def pointer(self, kind: str, slot: str) -> str | None:
        check(kind, slot)
        return _decode(self.client.get(self._key(kind, slot)))

    def history(self, kind: str) -> list[str]:
        return [v.decode() for v in self.client.lrange(self._key(kind, "history"), 0, -1)]

    def _move(self, kind: str, change: Any) -> Any:
        """Run a pointer change under WATCH so two analysts cannot interleave."""
        keys = [self._key(kind, n) for n in ("live", "shadow", "history")]
        result: list[Any] = []

        def attempt(pipe: Any) -> None:
            result[:] = [change(pipe)]

        self.client.transaction(attempt, *keys)
        return result[0]

    def rollback(self, kind: str, to: str | None = None, *, author: str = "") -> str:
        check(kind)

        def change(pipe: Any) -> str:
            history = [v.decode() for v in pipe.lrange(self._key(kind, "history"), 0, -1)]
            current = _decode(pipe.get(self._key(kind, "live")))
            if to is None and len(history) < 2:
                raise ConfigError(f"no earlier {kind} version to roll back to")
            target = history[1] if to is None else to
            if not pipe.exists(self._key(kind, "files", target)):
                raise ConfigError(f"{kind} version {target} is not stored")
            pipe.multi()
            if to is None:
                pipe.lpop(self._key(kind, "history"))
            else:
                pipe.lpush(self._key(kind, "history"), target)
            pipe.set(self._key(kind, "live"), target)
            self._event(pipe, kind, rollback_event(current, target, author))
            self._notify(pipe, kind, "live", target)
            return target

        return self._move(kind, change)

    def promote(self, kind: str, *, author: str = "") -> str:
        check(kind)

        def change(pipe: Any) -> str:
            target = _decode(pipe.get(self._key(kind, "shadow")))
            if target is None:
                raise ConfigError(f"no shadow {kind} version to promote")
            pipe.multi()
            pipe.set(self._key(kind, "live"), target)
            pipe.lpush(self._key(kind, "history"), target)
            pipe.ltrim(self._key(kind, "history"), 0, KEEP - 1)
            pipe.delete(self._key(kind, "shadow"))
            event = {"action": "promote", "version": target, "at": time.time(), "author": author}
            self._event(pipe, kind, event)
            self._notify(pipe, kind, "shadow", None)
            self._notify(pipe, kind, "live", target)
            return target

        return self._move(kind, change)

    def clear(self, kind: str, slot: str) -> None:
        check(kind, slot)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._key(kind, slot))
        self._notify(pipe, kind, slot, None)
        pipe.execute()

    def subscribe(self) -> Subscription:
        return _RedisSubscription(self.client, self.channel)

    def report(self, worker: str, status: Mapping[str, Any]) -> None:
        record = json.dumps({**status, "at": time.time()}, ensure_ascii=False)
        self.client.hset(self.prefix + "workers", worker, record)

    def workers(self, max_age: float = 60.0) -> dict[str, dict[str, Any]]:
        now, statuses, stale = time.time(), {}, []
        for worker, raw in self.client.hgetall(self.prefix + "workers").items():
            status = json.loads(raw)
            if now - status.get("at", 0) <= max_age:
                statuses[worker.decode()] = status
            else:
                stale.append(worker)
        if stale:  # a worker reports every SCREENING_RELOAD_POLL: these have stopped
            self.client.hdel(self.prefix + "workers", *stale)
        return statuses

    def forget(self, worker: str) -> None:
        self.client.hdel(self.prefix + "workers", worker)


class _RedisSubscription:
    def __init__(self, client: redis.Redis, channel: str):
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)

    def get(self, timeout: float) -> Notice | None:
        message = self.pubsub.get_message(timeout=timeout)
        if message is None or message.get("type") != "message":
            return None
        data = json.loads(message["data"])
        return Notice(data["kind"], data["slot"], data.get("version"))

    def close(self) -> None:
        self.pubsub.close()
