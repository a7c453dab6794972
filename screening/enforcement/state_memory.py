"""The policy state in one process: ``policy simulate``, the embedded ``screening run``
and unit tests. The same semantics as the Redis state (tested on a random replay), not
shared between processes; thread-safe within one."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

from screening.enforcement.measures import (
    Active,
    GroupSnapshot,
    Measure,
    UserSnapshot,
    restored_credit,
)
from screening.enforcement.policy_model import CreditPolicy
from screening.enforcement.state_codec import (
    LIFT_LEASE,
    MAX_ADMINS,
    ApplyMeasure,
    GroupRecord,
    GroupRetraction,
    PendingLift,
    UserRecord,
    UserRetraction,
    counts_suspensions,
    subject_key,
)

__all__ = ["MemoryPolicyState"]


class MemoryPolicyState:
    """The same semantics in one process: ``policy simulate`` and unit tests. Not shared
    between processes; thread-safe within one."""

    def __init__(self, *, lift_lease: float = LIFT_LEASE) -> None:
        if not lift_lease > 0:
            raise ValueError("lift_lease must be > 0")
        self.lift_lease = lift_lease
        self._lock = threading.Lock()
        self._zsets: dict[str, dict[str, float]] = defaultdict(dict)
        self._measures: dict[str, dict[str, Measure]] = defaultdict(dict)
        self._owners: dict[str, str] = {}
        self._admins: dict[str, set[str]] = defaultdict(set)
        self._credit: dict[str, tuple[float, float]] = {}
        self._expiry: dict[tuple[str, str, str], float] = {}
        self._reporters: dict[str, set[str]] = defaultdict(set)
        self._fired: dict[str, dict[str, Measure]] = defaultdict(dict)
        #: measure id -> (pending lift, when another sweeper may take it)
        self._lifts: dict[str, tuple[PendingLift, float]] = {}

    def _pending(self, measure: Measure, at: float, reason: str) -> None:
        self._lifts[measure.id] = (PendingLift(measure, at, reason), at + self.lift_lease)

    def _memo(self, key: str) -> tuple[Measure, ...]:
        return tuple(sorted(self._fired[key].values(), key=lambda m: (m.started_at, m.id)))

    def _add(self, key: str, member: str, now: float, window: float) -> int:
        self._zsets[key].setdefault(member, now)
        return self._trim(key, now, window)

    def _trim(self, key: str, now: float, window: float) -> int:
        zset = self._zsets[key]
        for old in [m for m, at in zset.items() if at < now - window]:
            del zset[old]
        return len(zset)

    def _active(self, base: str) -> dict[str, Active]:
        return {kind: Active(m.until, m.id) for kind, m in self._measures[base].items()}

    def _group(
        self, base: str, counts: dict[str, int], now: float, repeat_window: float,
        fired: tuple[Measure, ...] = (),
    ) -> GroupSnapshot:
        """What a group's state reads as after recording (or retracting) a message."""
        return GroupSnapshot(
            counts=counts,
            active=self._active(base),
            suspensions=self._trim(f"{base}:hist", now, repeat_window),
            owner_id=self._owners.get(base),
            admin_ids=tuple(sorted(self._admins[base])),
            fired=fired,
        )  # fmt: skip

    def record_groups(self, requests: Sequence[GroupRecord]) -> list[GroupSnapshot]:
        with self._lock:
            return [self._record_group(r) for r in requests]

    def _record_group(self, r: GroupRecord) -> GroupSnapshot:
        base = subject_key("group", r.group_id)
        counts = {
            n: self._add(f"{base}:rule:{n}", r.message_id, r.now, w) for n, w in r.windows.items()
        }
        if r.owner_id:
            self._owners[base] = r.owner_id
        if r.admin_id and len(self._admins[base]) < MAX_ADMINS:
            self._admins[base].add(r.admin_id)
        fired = self._memo(f"{base}:by:{r.message_id}")
        return self._group(base, counts, r.now, r.repeat_window, fired)

    def record_users(self, requests: Sequence[UserRecord]) -> list[UserSnapshot]:
        with self._lock:
            return [self._record_user(r) for r in requests]

    def _record_user(self, r: UserRecord) -> UserSnapshot:
        base = subject_key("user", r.user_id)
        key, now, credit = r.key, r.now, r.credit
        score, since = self._credit.get(base, (credit.initial, now))
        current = restored_credit(credit, score, since, now)
        seen = self._zsets[f"{base}:seen"]
        if key not in seen:
            seen[key] = now
            if r.penalty > 0:
                current = max(0.0, current - r.penalty)
                self._credit[base] = (current, now)
            if r.block:
                self._zsets[f"{base}:blocks"][key] = now
        self._add(f"{base}:seen", key, now, r.history)
        return UserSnapshot(
            credit=current,
            blocks=self._trim(f"{base}:blocks", now, r.block_window),
            active=self._active(base),
            suspensions=self._trim(f"{base}:hist", now, credit.repeat_window),
            fired=self._memo(f"{base}:by:{key}"),
        )

    def apply(self, requests: Sequence[ApplyMeasure]) -> list[tuple[bool, Measure | None]]:
        with self._lock:
            return [self._apply(r.measure, r.now, r.repeat_window) for r in requests]

    def _apply(
        self, measure: Measure, now: float, repeat_window: float
    ) -> tuple[bool, Measure | None]:
        base = subject_key(measure.subject, measure.subject_id)
        current = self._measures[base].get(measure.kind)
        if current is not None and current.id == measure.id:
            return True, None
        if current is not None and (current.until is None or current.until > now):
            return False, None
        if current is not None:
            if self._expiry.pop((base, current.kind, current.id), None) is not None:
                self._pending(current, now, "expired")
        self._measures[base][measure.kind] = measure
        if measure.liftable:
            self._expiry[(base, measure.kind, measure.id)] = measure.until  # type: ignore[assignment]
        if counts_suspensions(measure.kind):
            self._add(f"{base}:hist", measure.id, now, repeat_window)
        self._fired[f"{base}:by:{measure.trigger}"][measure.id] = measure
        return True, current

    def sweep(self, now: float, limit: int = 100) -> list[Measure]:
        with self._lock:
            due = sorted((until, key) for key, until in self._expiry.items() if until <= now)
            lifted = []
            for _, key in due[:limit]:
                del self._expiry[key]
                base, kind, mid = key
                current = self._measures[base].get(kind)
                if current is not None and current.id == mid:
                    lifted.append(self._measures[base].pop(kind))
                    self._pending(current, now, "expired")
            return lifted

    def lift(
        self,
        subject: str,
        subject_id: str,
        kind: str,
        *,
        now: float | None = None,
        reason: str = "lifted",
        measure_id: str | None = None,
        forget: bool = False,
    ) -> Measure | None:
        base = subject_key(subject, subject_id)
        with self._lock:
            current = self._measures[base].get(kind)
            if current is None or (measure_id and current.id != measure_id):
                return None
            measure = self._measures[base].pop(kind)
            self._expiry.pop((base, kind, measure.id), None)
            if forget:
                self._zsets[f"{base}:hist"].pop(measure.id, None)
            self._pending(measure, time.time() if now is None else now, reason)
            return measure

    def retract_group(self, r: GroupRetraction) -> GroupSnapshot:
        base = subject_key("group", r.group_id)
        with self._lock:
            counts = {}
            for name, window in r.windows.items():
                self._zsets[f"{base}:rule:{name}"].pop(r.trigger, None)
                counts[name] = self._trim(f"{base}:rule:{name}", r.now, window)
            return self._group(base, counts, r.now, r.repeat_window)

    def retract_user(self, r: UserRetraction) -> tuple[UserSnapshot, bool]:
        base = subject_key("user", r.user_id)
        credit = r.credit
        with self._lock:
            retracted = self._zsets[f"{base}:retracted"]
            restored = r.key in self._zsets[f"{base}:seen"] and r.key not in retracted
            if restored:
                retracted[r.key] = r.now
                stored = self._credit.get(base)
                if stored is not None and r.penalty > 0:
                    self._credit[base] = (min(credit.maximum, stored[0] + r.penalty), stored[1])
                self._zsets[f"{base}:blocks"].pop(r.key, None)
            self._trim(f"{base}:retracted", r.now, r.history)
            score, since = self._credit.get(base, (credit.initial, r.now))
            return UserSnapshot(
                credit=restored_credit(credit, score, since, r.now),
                blocks=self._trim(f"{base}:blocks", r.now, r.block_window),
                active=self._active(base),
                suspensions=self._trim(f"{base}:hist", r.now, credit.repeat_window),
            ), restored

    def claim_lifts(self, now: float, limit: int = 100) -> list[PendingLift]:
        with self._lock:
            due = sorted((at, mid) for mid, (_, at) in self._lifts.items() if at <= now)
            claimed = []
            for _, mid in due[:limit]:
                entry = self._lifts[mid][0]
                self._lifts[mid] = (entry, now + self.lift_lease)
                claimed.append(entry)
            return claimed

    def ack_lifts(self, measure_ids: Iterable[str]) -> None:
        with self._lock:
            for mid in measure_ids:
                self._lifts.pop(mid, None)

    def credit(self, user_id: str, credit: CreditPolicy, now: float) -> float:
        with self._lock:
            stored = self._credit.get(subject_key("user", user_id))
        if stored is None:
            return min(credit.initial, credit.maximum)
        return restored_credit(credit, stored[0], stored[1], now)

    def report(self, message_identity: str, reporter_id: str, window: float) -> int:
        with self._lock:
            reporters = self._reporters[message_identity]
            reporters.add(reporter_id)
            return len(reporters)
