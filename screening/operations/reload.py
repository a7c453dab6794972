"""Hot reload: build engines for published versions off the hot path and swap them in.

Each worker process holds one :class:`EngineHolder`. A background thread listens for
version notices (and re-reads the pointers every few seconds in case a notice was
missed), builds the new engine while the worker keeps screening with the old one, then
hands it over through ``on_swap`` — a single attribute assignment the actors read once
per batch, so a batch is screened entirely by one version and every verdict names it.
A version that fails to build is reported (log, metrics, the store's worker status) and
the old engine stays; it is retried only when the pointer moves again or after a minute.

Building is :class:`~screening.engine.builder.EngineBuilder`'s job; what makes a
100k-term reload fast is reuse across builds (the tokenizer, the classifier, the bank
index, parsed files, every term's normalised key) — see :mod:`screening.engine.parts`.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screening.engine.builder import BuildError, EngineBuilder
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.heap import settle_heap
from screening.operations.boot import boot_versions, seed_boot_versions
from screening.operations.shadow import shadow_key
from screening.operations.versions import KINDS, VersionStore
from screening.timing import StageClock

__all__ = ["EngineHolder", "ReloadEvent", "worker_id"]

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER = 60.0
Ids = dict[str, str | None]  # kind -> store version (None: the configured files)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    """One reload attempt of one kind in one slot; ``seconds`` from start to swap.
    Kind ``engine`` (no version) follows every change of a slot's engine, the first
    build and an emptied shadow slot included: it is what version gauges listen to."""

    kind: str
    slot: str
    version: str | None
    ok: bool
    seconds: float
    error: str | None = None
    #: False when nothing was built: a failed version's pointer moved away (failure over).
    loaded: bool = True


class EngineHolder:
    """The live (and shadow) engine of one worker process and the thread that reloads them."""

    def __init__(
        self,
        store: VersionStore | None,
        *,
        wordlists: str | Path,
        config: str | Path | None = None,
        model: str | Path | None = None,
        banks: str | Path | None = None,
        clock: StageClock | None = None,
        on_event: Callable[[ReloadEvent], None] | None = None,
        poll: float = 5.0,
        worker: str | None = None,
        model_cache: Path | None = None,
    ):
        self.store = store
        self.config = load_config(config)
        self.clock = clock
        self.on_event = on_event
        self.poll = poll
        self.worker = worker or worker_id()
        self.live: Engine | None = None
        #: The candidate engine and its shadow key, read together by shadow testing.
        self.shadow_slot: tuple[Engine, str] | None = None
        self.on_swap: Callable[[Engine], None] | None = None
        self._ids: dict[str, Ids] = {"live": {}, "shadow": {}}
        self._shadow_key = ""
        self._retired: list[Engine | None] = []
        self._failed: dict[tuple[str, str], tuple[str | None, float, str]] = {}
        self.builder = EngineBuilder(self.config, store, wordlists=Path(wordlists), model=model,
                                     clock=clock, banks=banks, model_cache=model_cache)  # fmt: skip
        self._lock = threading.Lock()  # one build at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings: Any, store: VersionStore | None, **options: Any
    ) -> EngineHolder:
        """The holder of a process started from the deployment's settings: worker processes,
        their preloading parent and the HTTP service read the same lists, config, model,
        banks, poll interval and cache, so a setting cannot reach one and miss another."""
        return cls(store, wordlists=settings.wordlists, config=settings.config,
                   model=getattr(settings, "model", None), banks=getattr(settings, "banks", None),
                   poll=getattr(settings, "reload_poll", 5.0),
                   model_cache=getattr(settings, "model_cache", None), **options)  # fmt: skip

    # -- loading and swapping --------------------------------------------------------

    def _in_use(self, kind: str) -> set[str | None]:
        return {ids.get(kind) for ids in self._ids.values()}

    @property
    def shadow(self) -> Engine | None:
        slot = self.shadow_slot
        return slot[0] if slot is not None else None

    def _wanted(self) -> dict[str, Ids]:
        """Live ids, and the shadow engine's ids: the candidate's kinds over the live ones."""
        if self.store is None:
            return {"live": {k: None for k in KINDS}, "shadow": {}}
        live = {k: self.store.pointer(k, "live") for k in KINDS}
        shadow = {k: v for k in KINDS if (v := self.store.pointer(k, "shadow"))}
        self._shadow_key = shadow_key(shadow)
        return {"live": live, "shadow": {**live, **shadow} if shadow else {}}

    def load(self) -> Engine:
        """The first live engine, built now (worker boot); a store version that fails to
        build falls back to the configured files so a worker can always start."""
        try:
            self.refresh()
        except Exception:  # the store is unreachable: start anyway, the listener catches up
            log.exception("could not read the published versions")
        if self.live is None:
            log.error("published versions not loaded; starting from the configured files")
            self.live = self.builder.build({})
            self._ids["live"] = {k: None for k in KINDS}
            settle_heap()
        self._store_boot_versions()
        return self.live

    def adopt(self, built: EngineHolder) -> None:
        """Start from the engines another holder built before this process was forked
        from its process (``screening worker`` preloads: workers/prefork.py): its live
        and shadow engines and their ids, and its tokenizer for later builds — pages
        shared copy-on-write with the parent instead of a copy per process. :meth:`load`
        then finds nothing to build and only reports what this worker runs."""
        self.live = built.live
        self.shadow_slot, self._shadow_key = built.shadow_slot, built._shadow_key
        self._ids = {slot: dict(ids) for slot, ids in built._ids.items()}
        self.builder.tokenizer = built.builder.tokenizer

    def announce(self) -> None:
        """The ``engine`` events of what runs now, for a holder that :meth:`adopt`-ed
        its engines (version gauges are set from these events)."""
        for slot, engine in (("live", self.live), ("shadow", self.shadow)):
            if engine is not None:
                self._event(ReloadEvent("engine", slot, None, True, 0.0))

    def _store_boot_versions(self) -> None:
        """The configured files this worker runs, stored as each kind's first version
        when nothing was published yet (:mod:`screening.operations.boot`)."""
        running = self._ids["live"]
        if self.store is None or self.live is None:
            return
        builder = self.builder
        try:
            kinds = [k for k in KINDS if running.get(k, "") is None and not self.store.history(k)]
            if not kinds:
                return
            found = boot_versions(builder.wordlists, builder.model_dir, builder.banks_dir)
            seed_boot_versions(
                self.store, (boot for boot in found if boot.kind in kinds),
                author=self.worker, running=self.live.versions,
            )  # fmt: skip
        except Exception:  # the worker screens anyway; rollback to the files is what is lost
            log.exception("could not store the configured files as boot versions")

    def refresh(self) -> None:
        """Bring both slots in line with the store's pointers (no-op when they are)."""
        with self._lock:
            wanted = self._wanted()
            swapped = [self._refresh_slot(slot, wanted[slot]) for slot in ("live", "shadow")]
            self.report()
            self._retired.clear()  # freeing an old engine takes ~0.3 s: after the report
            if any(swapped):
                settle_heap()

    def _effective(self, slot: str, ids: Ids, fallback: Ids) -> Ids:
        """``ids`` with each kind that failed recently replaced by what runs now. A failure
        is forgotten once its pointer moves elsewhere (rolled back, fixed, cleared)."""
        now, effective = time.monotonic(), dict(ids)
        for kind in KINDS:
            failed = self._failed.get((slot, kind))
            if failed and failed[0] != ids.get(kind):
                del self._failed[slot, kind]
                self._event(ReloadEvent(kind, slot, ids.get(kind), True, 0.0, loaded=False))
                continue
            if failed and failed[0] == ids.get(kind) and now - failed[1] < RETRY_FAILED_AFTER:
                effective[kind] = fallback.get(kind)
        return effective

    def _refresh_slot(self, slot: str, wanted: Ids) -> bool:
        """Build what ``slot`` should run; True when its engine changed."""
        current = self._ids[slot]
        fallback = current if slot == "live" else self._ids["live"]
        ids = self._effective(slot, wanted, fallback)
        if slot == "shadow" and ids == self._ids["live"]:
            ids = {}  # the candidate failed to load: nothing to compare
        if ids == current:
            return False
        if not ids:
            self.shadow_slot, self._ids["shadow"] = None, {}
            self._event(ReloadEvent("engine", slot, None, True, 0.0))
            return True
        changed = [k for k in KINDS if ids.get(k) != current.get(k)]
        started, cpu = time.perf_counter(), time.thread_time()
        collecting = gc.isenabled()
        gc.disable()  # a build allocates ~10^6 objects: no full collections meanwhile
        try:
            engine = self.builder.build(
                ids, in_use=self._in_use("model"), banks_in_use=self._in_use("bank")
            )
        except BuildError as exc:
            self._failed[slot, exc.kind] = (exc.version, time.monotonic(), str(exc))
            log.error("%s %s %s failed to load, keeping the old one: %s", slot, exc.kind,
                      exc.version, exc)  # fmt: skip
            self._event(ReloadEvent(exc.kind, slot, exc.version, False, 0.0, str(exc)))
            return False
        finally:
            if collecting:
                gc.enable()
        seconds = time.perf_counter() - started
        self._retired.append(self.live if slot == "live" else self.shadow)
        if slot == "live":
            self.live = engine
            if self.on_swap is not None:
                self.on_swap(engine)
        else:
            self.shadow_slot = (engine, self._shadow_key)
        self._ids[slot] = dict(ids)
        for kind in changed:
            self._failed.pop((slot, kind), None)
            self._event(ReloadEvent(kind, slot, ids.get(kind), True, seconds))
        self._event(ReloadEvent("engine", slot, None, True, seconds))  # version gauges
        log.info("%s engine now %s (built in %.2f s, %.2f s CPU)", slot, engine.versions,
                 seconds, time.thread_time() - cpu)  # fmt: skip
        return True

    def _event(self, event: ReloadEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("reload event handler failed")

    def status(self) -> dict[str, Any]:
        engines = {"live": self.live, "shadow": self.shadow}
        return {
            slot: {**ids, "engine": dict(engines[slot].versions)} if engines[slot] else {}
            for slot, ids in self._ids.items()
        } | {
            "failed": {
                f"{slot}/{kind}": {"version": version, "error": error}
                for (slot, kind), (version, _, error) in self._failed.items()
            }
        }

    def report(self) -> None:
        if self.store is not None:
            try:
                self.store.report(self.worker, self.status())
            except Exception:
                log.exception("could not report reload status")

    # -- the listener thread ---------------------------------------------------------

    def start(self) -> None:
        if self.store is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._listen, name="engine-reload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, and take this worker out of ``wordlist status``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.store is not None:
            try:
                self.store.forget(self.worker)
            except Exception:
                log.exception("could not remove this worker's reload status")

    def _listen(self) -> None:
        assert self.store is not None
        subscription, last = None, 0.0
        while not self._stop.is_set():
            try:
                if subscription is None:
                    subscription = self.store.subscribe()
                    self.refresh()  # whatever was published while we were not listening
                    last = time.monotonic()
                notice = subscription.get(timeout=min(0.25, self.poll))
                while notice is not None and (extra := subscription.get(timeout=0)) is not None:
                    notice = extra  # drain: one refresh covers every pending notice
                if notice is not None or time.monotonic() - last >= self.poll:
                    self.refresh()
                    last = time.monotonic()
            except Exception:
                log.exception("version listener failed; reconnecting")
                if subscription is not None:
                    try:
                        subscription.close()
                    except Exception:
                        pass
                subscription = None
                self._stop.wait(1.0)
        if subscription is not None:
            subscription.close()
