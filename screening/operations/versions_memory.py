"""The in-memory version store: the same semantics as Redis, in one process (tests)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from screening.errors import ConfigError
from screening.operations.versions import (
    EVENT_FIELDS,
    KEEP,
    KEEP_EVENTS,
    KINDS,
    Notice,
    Subscription,
    check,
    check_publish,
    publish_event,
    rollback_event,
)

__all__ = ["MemoryVersionStore"]


class MemoryVersionStore:
    """Same semantics in one process: tests and the embedded mode."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str], dict[str, bytes]] = {}
        self._meta: dict[tuple[str, str], dict[str, Any]] = {}
        self._pointers: dict[tuple[str, str], str] = {}
        self._history: dict[str, list[str]] = {kind: [] for kind in KINDS}
        self._events: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        self._subscribers: list[queue.Queue[Notice]] = []
        self._workers: dict[str, dict[str, Any]] = {}

    def _notify(self, kind: str, slot: str, version: str | None) -> None:
        for subscriber in self._subscribers:
            subscriber.put(Notice(kind, slot, version))

    def publish(
        self,
        kind: str,
        version: str,
        files: Mapping[str, bytes],
        meta: Mapping[str, Any],
        slot: str = "live",
    ) -> None:
        check_publish(kind, slot, files)
        with self._lock:
            self._files[kind, version] = dict(files)
            self._meta.setdefault((kind, version), {**meta, "version": version})
            self._pointers[kind, slot] = version
            if slot == "live":
                self._history[kind] = [version, *self._history[kind]][:KEEP]
            self._event(kind, publish_event(version, slot, meta))
            self._notify(kind, slot, version)

    def _event(self, kind: str, event: dict[str, Any]) -> None:
        self._events[kind] = [event, *self._events[kind]][:KEEP_EVENTS]

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(event) for event in self._events[kind]]

    def seed(
        self, kind: str, version: str, files: Mapping[str, bytes], meta: Mapping[str, Any]
    ) -> bool:
        check_publish(kind, "live", files)
        with self._lock:
            if self._history[kind] or (kind, "live") in self._pointers:
                return False
            self._files.setdefault((kind, version), dict(files))
            record = {**meta, "version": version, "published_at": time.time(), "boot": True}
            self._meta.setdefault((kind, version), record)
            self._history[kind] = [version]
            event = {"action": "boot", "version": version, "at": record["published_at"]}
            self._event(kind, event | {k: meta[k] for k in EVENT_FIELDS if k in meta})
            return True

    def files(self, kind: str, version: str) -> dict[str, bytes] | None:
        with self._lock:
            found = self._files.get((kind, version))
            return dict(found) if found else None

    def meta(self, kind: str, version: str) -> dict[str, Any] | None:
        with self._lock:
            return self._meta.get((kind, version))

    def pointer(self, kind: str, slot: str) -> str | None:
        check(kind, slot)
        with self._lock:
            return self._pointers.get((kind, slot))

    def history(self, kind: str) -> list[str]:
        with self._lock:
            return list(self._history[kind])

    def rollback(self, kind: str, to: str | None = None, *, author: str = "") -> str:
        with self._lock:
            history = self._history[kind]
            if to is None and len(history) < 2:
                raise ConfigError(f"no earlier {kind} version to roll back to")
            target = history[1] if to is None else to
            if (kind, target) not in self._files:
                raise ConfigError(f"{kind} version {target} is not stored")
            self._history[kind] = history[1:] if to is None else [target, *history]
            current = self._pointers.get((kind, "live"))
            self._pointers[kind, "live"] = target
            self._event(kind, rollback_event(current, target, author))
            self._notify(kind, "live", target)
            return target

    def promote(self, kind: str, *, author: str = "") -> str:
        with self._lock:
            target = self._pointers.pop((kind, "shadow"), None)
            if target is None:
                raise ConfigError(f"no shadow {kind} version to promote")
            self._pointers[kind, "live"] = target
            self._history[kind] = [target, *self._history[kind]][:KEEP]
            event = {"action": "promote", "version": target, "at": time.time(), "author": author}
            self._event(kind, event)
            self._notify(kind, "shadow", None)
            self._notify(kind, "live", target)
            return target

    def clear(self, kind: str, slot: str) -> None:
        with self._lock:
            self._pointers.pop((kind, slot), None)
            self._notify(kind, slot, None)

    def subscribe(self) -> Subscription:
        subscriber: queue.Queue[Notice] = queue.Queue()
        with self._lock:
            self._subscribers.append(subscriber)
        return _MemorySubscription(self, subscriber)

    def report(self, worker: str, status: Mapping[str, Any]) -> None:
        with self._lock:
            self._workers[worker] = {**status, "at": time.time()}

    def workers(self, max_age: float = 60.0) -> dict[str, dict[str, Any]]:
        now = time.time()
        with self._lock:
            for worker in [w for w, s in self._workers.items() if now - s["at"] > max_age]:
                del self._workers[worker]
            return {w: dict(s) for w, s in self._workers.items()}

    def forget(self, worker: str) -> None:
        with self._lock:
            self._workers.pop(worker, None)


class _MemorySubscription:
    def __init__(self, store: MemoryVersionStore, subscriber: queue.Queue[Notice]):
        self.store, self.subscriber = store, subscriber

    def get(self, timeout: float) -> Notice | None:
        try:
            return self.subscriber.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        with self.store._lock:
            if self.subscriber in self.store._subscribers:
                self.store._subscribers.remove(self.subscriber)
