"""The policy state in Redis: what the workers share (see :mod:`screening.enforcement.state`).

Every write is one Lua script (:mod:`screening.enforcement.state_scripts`) over one subject's keys
and the global ``expiry`` set and pending ``lifts``, so counting, compare-and-set and
"out of force, with its lift pending" are atomic however many workers run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from screening.enforcement import state_scripts as scripts
from screening.enforcement.measures import GroupSnapshot, Measure, UserSnapshot, restored_credit
from screening.enforcement.policy_model import CreditPolicy
from screening.enforcement.state_codec import (
    LIFT_LEASE,
    MAX_ADMINS,
    MEMO_SECONDS,
    PREFIX,
    ApplyMeasure,
    GroupRecord,
    GroupRetraction,
    PendingLift,
    UserRecord,
    UserRetraction,
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
        self._retract_group = client.register_script(scripts.RETRACT_GROUP)
        self._retract_user = client.register_script(scripts.RETRACT_USER)
        self.expiry_key = PREFIX + "expiry"
        self.lifts_key = PREFIX + "lifts"
        self.lifts_due_key = PREFIX + "lifts:due"

    @classmethod
    def from_url(cls, url: str) -> RedisPolicyState:
        from screening.pipeline.state import redis_client  # Sentinel and TLS URLs too

        return cls(redis_client(url))

    def _pipelined(self, script: Script, calls: Sequence[tuple[list[Any], list[Any]]]) -> list:
        """Run ``script`` once per ``(keys, args)`` in one round trip: a non-transactional
        pipeline of EVALSHA. Each call is still atomic on its own; the callers only put
        calls on distinct subjects in one pipeline, so their order does not matter. Calls
        that found the script missing (first use, Redis restarted, SCRIPT FLUSH) ran
        nothing: the script is loaded and they run again, in one more pipeline."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            if not todo:
                break
            if attempt:
                self.client.script_load(script.script)
            if len(todo) == 1:  # no pipeline object for one call
                keys, args = calls[todo[0]]
                try:
                    answers = [self.client.evalsha(script.sha, len(keys), *keys, *args)]
                except NoScriptError as exc:
                    answers = [exc]
            else:
                pipe = self.client.pipeline(transaction=False)
                for i in todo:
                    keys, args = calls[i]
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                answers = pipe.execute(raise_on_error=False)
            missing = []
            for i, result in zip(todo, answers, strict=True):
                if isinstance(result, NoScriptError) and not attempt:
                    missing.append(i)
                elif isinstance(result, Exception):
                    raise result
                else:
                    results[i] = result
            todo = missing
        return results

    def record_groups(self, requests: Sequence[GroupRecord]) -> list[GroupSnapshot]:
        calls, names = [], []
        for r in requests:
            base = subject_key("group", r.group_id)
            rule_names = list(r.windows)
            keys = [f"{base}:m", f"{base}:admins", f"{base}:hist", f"{base}:by:{r.message_id}"]
            keys += [f"{base}:rule:{name}" for name in rule_names]
            args = [repr(r.now), r.message_id, repr(r.repeat_window), r.owner_id or "",
                    r.admin_id or "", MAX_ADMINS,
                    *(repr(float(r.windows[n])) for n in rule_names)]  # fmt: skip
            calls.append((keys, args))
            names.append(rule_names)
        snapshots = []
        for rule_names, result in zip(
            names, self._pipelined(self._record_group, calls), strict=True
        ):
            counts, suspensions, flat, admins, fired = result
            active, owner = active_measures(flat)
            snapshots.append(GroupSnapshot(
                counts=dict(zip(rule_names, (int(c) for c in counts), strict=True)),
                active=active,
                suspensions=int(suspensions),
                owner_id=owner,
                admin_ids=tuple(sorted(text(a) for a in admins)),
                fired=fired_measures(fired),
            ))  # fmt: skip
        return snapshots

    def record_users(self, requests: Sequence[UserRecord]) -> list[UserSnapshot]:
        calls = []
        for r in requests:
            base = subject_key("user", r.user_id)
            keys = [f"{base}:credit", f"{base}:seen", f"{base}:blocks", f"{base}:m",
                    f"{base}:hist", f"{base}:by:{r.key}"]  # fmt: skip
            c = r.credit
            args = [
                repr(r.now), r.key, repr(float(r.penalty)), "1" if r.block else "0",
                repr(c.initial), repr(c.maximum), repr(c.restore_after),
                repr(c.restore_per_day / 86400.0), repr(r.history), repr(r.block_window),
                repr(c.repeat_window),
            ]  # fmt: skip
            calls.append((keys, args))
        snapshots = []
        for score, blocks, suspensions, flat, fired in self._pipelined(self._record_user, calls):
            active, _ = active_measures(flat)
            snapshots.append(
                UserSnapshot(
                    float(score), int(blocks), active, int(suspensions), fired_measures(fired)
                )
            )
        return snapshots

    def apply(self, requests: Sequence[ApplyMeasure]) -> list[tuple[bool, Measure | None]]:
        calls = []
        for r in requests:
            measure, now = r.measure, r.now
            base = subject_key(measure.subject, measure.subject_id)
            history = repr(r.repeat_window) if counts_suspensions(measure.kind) else ""
            calls.append((
                [f"{base}:m", self.expiry_key, f"{base}:hist", f"{base}:by:{measure.trigger}",
                 self.lifts_key, self.lifts_due_key],
                [measure.kind, measure.id, repr(now), until_text(measure), measure_doc(measure),
                 "1" if measure.liftable else "0", history, repr(MEMO_SECONDS),
                 repr(now + self.lift_lease)],
            ))  # fmt: skip
        return [
            (bool(applied), measure_from_doc(replaced))
            for applied, replaced in self._pipelined(self._apply, calls)
        ]

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
        measure_id: str | None = None,
        forget: bool = False,
    ) -> Measure | None:
        at = time.time() if now is None else now
        base = subject_key(subject, subject_id)
        doc = self._lift(
            keys=[f"{base}:m", self.expiry_key, self.lifts_key, self.lifts_due_key,
                  f"{base}:hist"],
            args=[kind, repr(at), json.dumps(reason), repr(at + self.lift_lease),
                  measure_id or "", "1" if forget else "0"],
        )  # fmt: skip
        return measure_from_doc(doc)

    def retract_group(self, r: GroupRetraction) -> GroupSnapshot:
        base = subject_key("group", r.group_id)
        names = list(r.windows)
        counts, suspensions, flat, admins = self._pipelined(self._retract_group, [(
            [f"{base}:m", f"{base}:admins", f"{base}:hist",
             *(f"{base}:rule:{name}" for name in names)],
            [repr(r.now), r.trigger, repr(r.repeat_window),
             *(repr(float(r.windows[name])) for name in names)],
        )])[0]  # fmt: skip
        active, owner = active_measures(flat)
        return GroupSnapshot(
            counts=dict(zip(names, (int(c) for c in counts), strict=True)),
            active=active,
            suspensions=int(suspensions),
            owner_id=owner,
            admin_ids=tuple(sorted(text(a) for a in admins)),
        )

    def retract_user(self, r: UserRetraction) -> tuple[UserSnapshot, bool]:
        base = subject_key("user", r.user_id)
        c = r.credit
        score, blocks, suspensions, flat, restored = self._pipelined(self._retract_user, [(
            [f"{base}:credit", f"{base}:seen", f"{base}:blocks", f"{base}:m", f"{base}:hist",
             f"{base}:retracted"],
            [repr(r.now), r.key, repr(float(r.penalty)), repr(c.initial), repr(c.maximum),
             repr(c.restore_after), repr(c.restore_per_day / 86400.0), repr(r.history),
             repr(r.block_window), repr(c.repeat_window)],
        )])[0]  # fmt: skip
        active, _ = active_measures(flat)
        return UserSnapshot(float(score), int(blocks), active, int(suspensions)), bool(restored)

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

    def report(self, message_identity: str, reporter_id: str, window: float) -> int:
        key = f"{subject_key('report', message_identity)}:reporters"
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(key, reporter_id)
        pipe.expire(key, max(1, math.ceil(window)), nx=True)
        pipe.scard(key)
        return int(pipe.execute()[-1])
