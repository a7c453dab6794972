"""Enforcement counters and active measures: Redis for real, memory for simulate and tests.

Both implement :class:`PolicyState`. Correctness under many workers and duplicate
deliveries comes from two rules, identical in both:

* **Counting is set membership.** A violation is recorded as ``ZADD NX`` of its message id
  in a sorted set per (group, rule) and per user, scored by time. A redelivered message is
  already a member, so it never counts twice; two workers adding different messages never
  lose one, because each Lua script runs atomically. Sliding windows trim by score.
* **Applying a measure is compare-and-set.** A measure takes effect only if none of its
  kind is in force for that subject (or the one in force has the same id — a redelivery
  re-applying its own measure). Two workers that both cross a threshold race; one wins.

Redis layout (prefix ``screening:policy:``; ``{g:ID}``/``{u:ID}`` keep a subject's keys
together): ``{g:ID}:rule:NAME`` zset, ``{g:ID}:m`` hash of measures and the owner id,
``{g:ID}:admins`` set, ``{g:ID}:hist`` zset of suspensions (for doubling);
``{u:ID}:credit`` hash, ``{u:ID}:seen``/``:blocks``/``:hist`` zsets, ``{u:ID}:m``;
``expiry`` zset of liftable measures by end time; ``{r:MSG}:reporters`` set. The scripts
touch keys of more than one subject (``expiry``), so Redis Cluster is not supported here.
"""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

import redis

from screening.measures import Active, GroupSnapshot, Measure, UserSnapshot, restored_credit
from screening.policy import CreditPolicy

__all__ = ["PREFIX", "MemoryPolicyState", "PolicyState", "RedisPolicyState"]

PREFIX = "screening:policy:"
_MAX_ADMINS = 100
#: How long the measures a trigger fired are remembered, to re-send them on redelivery.
MEMO_SECONDS = 2 * 86400.0

_RECORD_GROUP = """
local now = tonumber(ARGV[1])
local counts = {}
for i = 5, #KEYS do
  local w = tonumber(ARGV[i + 2])
  redis.call('ZADD', KEYS[i], 'NX', now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. tostring(now - w))
  counts[#counts + 1] = redis.call('ZCARD', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], math.ceil(w * 1000))
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[4]) end
if ARGV[5] ~= '' and redis.call('SCARD', KEYS[2]) < tonumber(ARGV[6]) then
  redis.call('SADD', KEYS[2], ARGV[5])
end
local rw = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - rw))
return {counts, redis.call('ZCARD', KEYS[3]), redis.call('HGETALL', KEYS[1]),
        redis.call('SMEMBERS', KEYS[2]), redis.call('SMEMBERS', KEYS[4])}
"""

_RECORD_USER = """
local now = tonumber(ARGV[1])
local maximum, after, rate = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local history, block_w, repeat_w = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local stored = redis.call('HMGET', KEYS[1], 'score', 'since')
local score = tonumber(stored[1] or ARGV[5])
local since = tonumber(stored[2] or ARGV[1])
local credit = math.min(maximum, score + rate * math.max(0, now - since - after))
if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2]) == 1 then
  local penalty = tonumber(ARGV[3])
  if penalty > 0 then
    credit = math.max(0, credit - penalty)
    redis.call('HSET', KEYS[1], 'score', string.format('%.6f', credit), 'since', ARGV[1])
    if rate > 0 then
      redis.call('PEXPIRE', KEYS[1], math.ceil((after + (maximum - credit) / rate) * 1000) + 1000)
    end
  end
  if ARGV[4] == '1' then redis.call('ZADD', KEYS[3], now, ARGV[2]) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - history))
redis.call('PEXPIRE', KEYS[2], math.ceil(history * 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - block_w))
redis.call('PEXPIRE', KEYS[3], math.ceil(block_w * 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. tostring(now - repeat_w))
return {string.format('%.6f', credit), redis.call('ZCARD', KEYS[3]),
        redis.call('ZCARD', KEYS[5]), redis.call('HGETALL', KEYS[4]),
        redis.call('SMEMBERS', KEYS[6])}
"""

_APPLY = """
local kind, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[1], kind .. ':id')
if current == id then return {1, ''} end
local replaced = ''
if current then
  local untl = redis.call('HGET', KEYS[1], kind .. ':until')
  if untl == 'inf' or tonumber(untl) > now then return {0, ''} end
  replaced = redis.call('HGET', KEYS[1], kind .. ':doc') or ''
  redis.call('ZREM', KEYS[2], KEYS[1] .. '\\n' .. kind .. '\\n' .. current)
end
redis.call('HSET', KEYS[1], kind .. ':id', id, kind .. ':until', ARGV[4], kind .. ':doc', ARGV[5])
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1] .. '\\n' .. kind .. '\\n' .. id)
end
if ARGV[7] ~= '' then
  local rw = tonumber(ARGV[7])
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - rw))
  redis.call('PEXPIRE', KEYS[3], math.ceil(rw * 1000))
end
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('PEXPIRE', KEYS[4], math.ceil(tonumber(ARGV[8]) * 1000))
return {1, replaced}
"""

_SWEEP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local hash, kind, id = string.match(member, '^(.*)\\n([^\\n]*)\\n([^\\n]*)$')
  if hash and redis.call('HGET', hash, kind .. ':id') == id then
    out[#out + 1] = redis.call('HGET', hash, kind .. ':doc')
    redis.call('HDEL', hash, kind .. ':id', kind .. ':until', kind .. ':doc')
  end
end
return out
"""

_LIFT = """
local doc = redis.call('HGET', KEYS[1], ARGV[1] .. ':doc')
if not doc then return false end
local id = redis.call('HGET', KEYS[1], ARGV[1] .. ':id')
redis.call('ZREM', KEYS[2], KEYS[1] .. '\\n' .. ARGV[1] .. '\\n' .. id)
redis.call('HDEL', KEYS[1], ARGV[1] .. ':id', ARGV[1] .. ':until', ARGV[1] .. ':doc')
return doc
"""


class PolicyState(Protocol):
    """The small typed interface the enforcer needs; ``now`` is always passed in."""

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
        """Count ``message_id`` once in each rule's window; return counts and measures."""

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
        """Lower the credit by ``penalty`` once per ``key``; return credit and measures."""

    def apply(self, measure: Measure, now: float, *, repeat_window: float) -> tuple[bool, Any]:
        """Compare-and-set: ``(applied, replaced)`` where ``replaced`` is the expired
        measure of the same kind this one displaced (not yet swept), if any."""

    def sweep(self, now: float, limit: int = 100) -> list[Measure]:
        """Remove and return liftable measures that ended by ``now``, each exactly once
        across all workers."""

    def lift(self, subject: str, subject_id: str, kind: str) -> Measure | None:
        """A person lifts a measure (e.g. takes a user off the blacklist)."""

    def credit(self, user_id: str, credit: CreditPolicy, now: float) -> float: ...

    def report(self, message_id: str, reporter_id: str, window: float) -> int:
        """Add a reporter; the number of distinct reporters of the message."""


def subject_key(subject: str, subject_id: str) -> str:
    return f"{PREFIX}{{{subject[0]}:{subject_id}}}"


def counts_suspensions(kind: str) -> bool:
    """Kinds whose repeats double their duration."""
    return kind.endswith("suspend_posting")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _active(flat: list[Any]) -> tuple[dict[str, Active], str | None]:
    fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
    active = {
        kind: Active(None if until == "inf" else float(until), fields.get(f"{kind}:id", ""))
        for name, until in fields.items()
        if name.endswith(":until") and (kind := name[: -len(":until")])
    }
    return active, fields.get("owner")


def _until(measure: Measure) -> str:
    return "inf" if measure.until is None else repr(float(measure.until))


def _doc(measure: Measure) -> str:
    return json.dumps(measure.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _measure(doc: Any) -> Measure | None:
    return Measure.from_dict(json.loads(doc)) if doc else None


def _fired(docs: list[Any]) -> tuple[Measure, ...]:
    measures = (m for m in map(_measure, docs) if m is not None)
    return tuple(sorted(measures, key=lambda m: (m.started_at, m.id)))


class RedisPolicyState:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._record_group = client.register_script(_RECORD_GROUP)
        self._record_user = client.register_script(_RECORD_USER)
        self._apply = client.register_script(_APPLY)
        self._sweep = client.register_script(_SWEEP)
        self._lift = client.register_script(_LIFT)
        self.expiry_key = PREFIX + "expiry"

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
        args += [_MAX_ADMINS, *(repr(float(windows[n])) for n in names)]
        counts, suspensions, flat, admins, fired = self._record_group(keys=keys, args=args)
        active, owner = _active(flat)
        return GroupSnapshot(
            counts=dict(zip(names, (int(c) for c in counts), strict=True)),
            active=active,
            suspensions=int(suspensions),
            owner_id=owner,
            admin_ids=tuple(sorted(_text(a) for a in admins)),
            fired=_fired(fired),
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
        active, _ = _active(flat)
        return UserSnapshot(float(score), int(blocks), active, int(suspensions), _fired(fired))

    def apply(self, measure: Measure, now: float, *, repeat_window: float) -> tuple[bool, Any]:
        base = subject_key(measure.subject, measure.subject_id)
        history = repr(repeat_window) if counts_suspensions(measure.kind) else ""
        applied, replaced = self._apply(
            keys=[f"{base}:m", self.expiry_key, f"{base}:hist", f"{base}:by:{measure.trigger}"],
            args=[
                measure.kind, measure.id, repr(now), _until(measure), _doc(measure),
                "1" if measure.liftable else "0", history, repr(MEMO_SECONDS),
            ],
        )  # fmt: skip
        return bool(applied), _measure(replaced)

    def sweep(self, now: float, limit: int = 100) -> list[Measure]:
        docs = self._sweep(keys=[self.expiry_key], args=[repr(now), limit])
        return [m for m in map(_measure, docs) if m is not None]

    def lift(self, subject: str, subject_id: str, kind: str) -> Measure | None:
        base = subject_key(subject, subject_id)
        return _measure(self._lift(keys=[f"{base}:m", self.expiry_key], args=[kind]))

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


class MemoryPolicyState:
    """The same semantics in one process: ``policy simulate`` and unit tests. Not shared
    between processes; thread-safe within one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zsets: dict[str, dict[str, float]] = defaultdict(dict)
        self._measures: dict[str, dict[str, Measure]] = defaultdict(dict)
        self._owners: dict[str, str] = {}
        self._admins: dict[str, set[str]] = defaultdict(set)
        self._credit: dict[str, tuple[float, float]] = {}
        self._expiry: dict[tuple[str, str, str], float] = {}
        self._reporters: dict[str, set[str]] = defaultdict(set)
        self._fired: dict[str, dict[str, Measure]] = defaultdict(dict)

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
        with self._lock:
            counts = {
                n: self._add(f"{base}:rule:{n}", message_id, now, w) for n, w in windows.items()
            }
            if owner_id:
                self._owners[base] = owner_id
            if admin_id and len(self._admins[base]) < _MAX_ADMINS:
                self._admins[base].add(admin_id)
            return GroupSnapshot(
                counts=counts,
                active=self._active(base),
                suspensions=self._trim(f"{base}:hist", now, repeat_window),
                owner_id=self._owners.get(base),
                admin_ids=tuple(sorted(self._admins[base])),
                fired=self._memo(f"{base}:by:{message_id}"),
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
        with self._lock:
            score, since = self._credit.get(base, (credit.initial, now))
            current = restored_credit(credit, score, since, now)
            seen = self._zsets[f"{base}:seen"]
            if key not in seen:
                seen[key] = now
                if penalty > 0:
                    current = max(0.0, current - penalty)
                    self._credit[base] = (current, now)
                if block:
                    self._zsets[f"{base}:blocks"][key] = now
            self._add(f"{base}:seen", key, now, history)
            return UserSnapshot(
                credit=current,
                blocks=self._trim(f"{base}:blocks", now, block_window),
                active=self._active(base),
                suspensions=self._trim(f"{base}:hist", now, credit.repeat_window),
                fired=self._memo(f"{base}:by:{key}"),
            )

    def apply(self, measure: Measure, now: float, *, repeat_window: float) -> tuple[bool, Any]:
        base = subject_key(measure.subject, measure.subject_id)
        with self._lock:
            current = self._measures[base].get(measure.kind)
            if current is not None and current.id == measure.id:
                return True, None
            if current is not None and (current.until is None or current.until > now):
                return False, None
            if current is not None:
                self._expiry.pop((base, current.kind, current.id), None)
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
            return lifted

    def lift(self, subject: str, subject_id: str, kind: str) -> Measure | None:
        base = subject_key(subject, subject_id)
        with self._lock:
            measure = self._measures[base].pop(kind, None)
            if measure is not None:
                self._expiry.pop((base, kind, measure.id), None)
            return measure

    def credit(self, user_id: str, credit: CreditPolicy, now: float) -> float:
        with self._lock:
            stored = self._credit.get(subject_key("user", user_id))
        if stored is None:
            return min(credit.initial, credit.maximum)
        return restored_credit(credit, stored[0], stored[1], now)

    def report(self, message_id: str, reporter_id: str, window: float) -> int:
        with self._lock:
            reporters = self._reporters[message_id]
            reporters.add(reporter_id)
            return len(reporters)
