"""The policy state in Redis: what the workers share (see :mod:`screening.policy_state`).

Every write is one Lua script (:mod:`screening.policy_scripts`) over one subject's keys
and the global ``expiry`` set and pending ``lifts``, so counting, compare-and-set and
"out of force, with its lift pending" are atomic however many workers run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from screening import policy_scripts as scripts
from screening.measures import GroupSnapshot, Measure, UserSnapshot, restored_credit
from screening.policy_codec import (
    LIFT_LEASE,
    MAX_ADMINS,
    MEMO_SECONDS,
    PREFIX,
    PendingLift,
    active_measures,
    counts_suspensions,
    fired_measures,
    measure_doc,
    measure_from_doc,
    pending_lift,
    subject_key,
    text,
    until_text,
)
from screening.policy_model import CreditPolicy

__all__ = ["RedisPolicyState"]


class RedisPolicyState:
    def __init__(self, client: redis.Redis, *, lift_lease: float = LIFT_LEASE):
        if not lift_lease > 0:
            raise ValueError("lift_lease must be > 0")
        self.client = client
        self.lift_lease = lift_lease
        self._record_group = client.register_script(scripts.RECORD_GROUP)
        self._record_user = client.register_script(scripts.RECORD_USER)
        self._apply = client.register_script(scripts.APPLY)
        self._sweep = client.register_script(scripts.SWEEP)
        self._lift = client.register_script(scripts.LIFT)
        self._claim_lifts = client.register_script(scripts.CLAIM_LIFTS)
        self.expiry_key = PREFIX + "expiry"
        self.lifts_key = PREFIX + "lifts"
        self.lifts_due_key = PREFIX + "lifts:due"

    @classmethod
    def from_url(cls, url: str) -> RedisPolicyState:
        return cls(redis.Redis.from_url(url))

    def record_group(
        self,
        group_id: str,
        message_id: str,
        windows: Mapping[str, float],
        now: float,
        *,
        repeat_window: float,
        owner_id: str | None = None,
        admin_id: str | None = None,
    ) -> GroupSnapshot:
        base = subject_key("group", group_id)
        names = list(windows)
        keys = [f"{base}:m", f"{base}:admins", f"{base}:hist", f"{base}:by:{message_id}"]
        keys += [f"{base}:rule:{name}" for name in names]
        args = [repr(now), message_id, repr(repeat_window), owner_id or "", admin_id or ""]
        args += [MAX_ADMINS, *(repr(float(windows[n])) for n in names)]
        counts, suspensions, flat, admins, fired = self._record_group(keys=keys, args=args)
        active, owner = active_measures(flat)
        return GroupSnapshot(
            counts=dict(zip(names, (int(c) for c in counts), strict=True)),
            active=active,
            suspensions=int(suspensions),
            owner_id=owner,
            admin_ids=tuple(sorted(text(a) for a in admins)),
            fired=fired_measures(fired),
        )

    def record_user(
        self,
        user_id: str,
        key: str,
        now: float,
        *,
        penalty: float,
        block: bool,
        credit: CreditPolicy,
        history: float,
        block_window: float,
    ) -> UserSnapshot:
        base = subject_key("user", user_id)
        keys = [f"{base}:credit", f"{base}:seen", f"{base}:blocks", f"{base}:m", f"{base}:hist"]
        keys.append(f"{base}:by:{key}")
        args = [
            repr(now), key, repr(float(penalty)), "1" if block else "0",
            repr(credit.initial), repr(credit.maximum), repr(credit.restore_after),
            repr(credit.restore_per_day / 86400.0), repr(history), repr(block_window),
            repr(credit.repeat_window),
        ]  # fmt: skip
        score, blocks, suspensions, flat, fired = self._record_user(keys=keys, args=args)
        active, _ = active_measures(flat)
        fired_now = fired_measures(fired)
        return UserSnapshot(float(score), int(blocks), active, int(suspensions), fired_now)

    def apply(self, measure: Measure, now: float, *, repeat_window: float) -> tuple[bool, Any]:
        base = subject_key(measure.subject, measure.subject_id)
        history = repr(repeat_window) if counts_suspensions(measure.kind) else ""
        applied, replaced = self._apply(
            keys=[f"{base}:m", self.expiry_key, f"{base}:hist", f"{base}:by:{measure.trigger}",
                  self.lifts_key, self.lifts_due_key],
            args=[
                measure.kind, measure.id, repr(now), until_text(measure), measure_doc(measure),
                "1" if measure.liftable else "0", history, repr(MEMO_SECONDS),
                repr(now + self.lift_lease),
            ],
        )  # fmt: skip
        return bool(applied), measure_from_doc(replaced)

    def sweep(self, now: float, limit: int = 100) -> list[Measure]:
        docs = self._sweep(
            keys=[self.expiry_key, self.lifts_key, self.lifts_due_key],
            args=[repr(now), limit, repr(now + self.lift_lease)],
        )
        return [m for m in map(measure_from_doc, docs) if m is not None]

    def lift(
        self,
        subject: str,
        subject_id: str,
        kind: str,
        *,
        now: float | None = None,
        reason: str = "lifted",
    ) -> Measure | None:
        at = time.time() if now is None else now
        base = subject_key(subject, subject_id)
        doc = self._lift(
            keys=[f"{base}:m", self.expiry_key, self.lifts_key, self.lifts_due_key],
            args=[kind, repr(at), json.dumps(reason), repr(at + self.lift_lease)],
        )
        return measure_from_doc(doc)

    def claim_lifts(self, now: float, limit: int = 100) -> list[PendingLift]:
        entries = self._claim_lifts(
            keys=[self.lifts_key, self.lifts_due_key],
            args=[repr(now), limit, repr(now + self.lift_lease)],
        )
        return [pending_lift(entry) for entry in entries]

    def ack_lifts(self, measure_ids: Iterable[str]) -> None:
        ids = list(measure_ids)
        if ids:
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(self.lifts_key, *ids)
            pipe.zrem(self.lifts_due_key, *ids)
            pipe.execute()

    def credit(self, user_id: str, credit: CreditPolicy, now: float) -> float:
        score, since = self.client.hmget(f"{subject_key('user', user_id)}:credit", "score", "since")
        if score is None or since is None:
            return min(credit.initial, credit.maximum)
        return restored_credit(credit, float(score), float(since), now)

    def report(self, message_id: str, reporter_id: str, window: float) -> int:
        key = f"{subject_key('report', message_id)}:reporters"
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(key, reporter_id)
        pipe.expire(key, max(1, math.ceil(window)), nx=True)
        pipe.scard(key)
        return int(pipe.execute()[-1])
