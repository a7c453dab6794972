"""Pipeline state shared by all workers: dedupe claims, dead letters, counters, verdicts.

Two implementations of one small interface: :class:`RedisState` for real deployments
(every worker process sees the same claims and dead letters) and :class:`MemoryState` for
the single-process embedded mode and unit tests. The broker may be RabbitMQ; state is
always Redis, because ``SET NX EX`` is the simplest correct dedupe there is.

Dedupe is an *owned* claim: ``SET key owner NX EX ttl``, and a claim also succeeds when
the key already holds the same owner. The owner is the id of the queue message doing the
work, so a redelivery of that same queue message (a worker died before acking) may finish
its job, while any *other* queue message carrying the same id — a duplicate submission —
is refused. Each claim is one ``SET key owner NX GET EX ttl`` (Redis ≥ 7.0): atomic,
single-key (fine on Redis Cluster), and no script to load.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import redis

from screening.engine.characters import lone_surrogate

__all__ = [
    "DEAD_LETTER_KINDS",
    "DEAD_LETTER_MAX",
    "KEY_PREFIX",
    "MemoryState",
    "RedisState",
    "State",
    "redis_client",
]

KEY_PREFIX = "screening:"
#: ``messages``: rejected or crashed chat messages; ``callbacks``: undeliverable events.
DEAD_LETTER_KINDS = ("messages", "callbacks")
#: Records kept per dead-letter list (SCREENING_DEADLETTER_MAX): the newest; 0 keeps all.
#: A flood of bad input must not fill Redis, whose queues stop when memory runs out.
DEAD_LETTER_MAX = 100_000


def redis_client(url: str) -> redis.Redis:
    """A client for ``redis://``, ``rediss://`` (TLS), ``unix://`` or, for high
    availability, ``redis[s]+sentinel://[[user]:password@]host:port[,host:port...]/service
    [/db][?sentinel_password=...]``: the client asks the Sentinels for the current master
    and finds the new one after a failover. Credentials (``user:password@``, an ACL user or
    ``requirepass``) and TLS options (``?ssl_ca_certs=...&ssl_cert_reqs=required``) go in
    the URL; with Sentinel they are the master's, ``sentinel_username``/``_password`` the
    Sentinels' own, and ``rediss+sentinel`` uses TLS to both."""
    if not url.startswith(("redis+sentinel://", "rediss+sentinel://")):
        return redis.Redis.from_url(url)
    from urllib.parse import parse_qsl, unquote

    from redis.sentinel import Sentinel

    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    auth, _, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    service, _, db = path.strip("/").partition("/")
    if not hosts or not service:
        raise ValueError("redis+sentinel URL needs host:port[,host:port]/service[/db]")
    username, _, password = (unquote(part) for part in auth.partition(":"))
    options = dict(parse_qsl(query))
    tls = {k: v for k, v in options.items() if k.startswith("ssl_")}
    tls = {"ssl": True, **tls} if scheme == "rediss+sentinel" else {}
    own = {k[len("sentinel_") :]: options[k] for k in ("sentinel_username", "sentinel_password")
           if k in options}  # fmt: skip
    nodes = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
        nodes.append((name, int(port)))
    sentinel = Sentinel(nodes, socket_timeout=5, sentinel_kwargs={**own, **tls}, **tls)
    return sentinel.master_for(service, db=int(db or 0), username=username or None,
                               password=password or None, socket_timeout=30)  # fmt: skip


class State(Protocol):
    def claim(self, keys: Sequence[str], owner: str, ttl: int) -> list[bool]:
        """For each key: may ``owner`` act on it (first claim, or its own earlier one)?"""

    def claim_or_holder(self, claims: Sequence[tuple[str, str]], ttl: int) -> list[str | None]:
        """:meth:`claim` with an owner per key, answering for each ``(key, owner)`` None
        when that owner may act on it and otherwise the value that holds it (a caller
        that puts a content digest in the owner tells a duplicate from a conflict)."""

    def mark(self, keys: Sequence[str], value: str, ttl: int) -> None:
        """Overwrite claims, e.g. with "delivered" so no later owner acts again."""

    def attempt(self, key: str, ttl: int) -> int:
        """Count one more attempt at ``key`` (a queue message): 1 the first time."""

    def dead_letter(self, kind: str, records: Sequence[Mapping[str, Any]]) -> None: ...

    def dead_letters(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest ``limit`` records of a dead-letter queue, left in place."""

    def pop_dead_letter(self, kind: str) -> dict[str, Any] | None: ...

    def restore_dead_letter(self, kind: str, record: Mapping[str, Any]) -> None:
        """Put a popped record back at the head (its replay failed)."""

    def count(self, counts: Mapping[str, int]) -> None: ...

    def counters(self) -> dict[str, int]: ...

    def append_verdicts(self, records: Sequence[Sequence[Any]], at: float) -> None:
        """Record a batch of ``[message_id, decision, group_id]`` records (no-op when
        disabled)."""


def _dumps(record: Mapping[str, Any]) -> str:
    """JSON text Redis can store. A dead letter may carry what made its message invalid,
    a lone surrogate included, which has no UTF-8 encoding: such a record is written with
    ASCII escapes (``\\ud800``) so it is kept exactly instead of failing the whole batch."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    if lone_surrogate(text) is None:
        return text
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)


class RedisState:
    def __init__(
        self,
        client: redis.Redis,
        *,
        verdict_stream: str = "",
        verdict_stream_maxlen: int = 1_000_000,
        dead_letter_max: int = DEAD_LETTER_MAX,
    ):
        self.client = client
        self.verdict_stream = verdict_stream
        self.verdict_stream_maxlen = verdict_stream_maxlen
        self.dead_letter_max = dead_letter_max

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisState:
        return cls(redis_client(url), **kwargs)

    def claim(self, keys: Sequence[str], owner: str, ttl: int) -> list[bool]:
        return [held is None for held in self.claim_or_holder([(k, owner) for k in keys], ttl)]

    def claim_or_holder(self, claims: Sequence[tuple[str, str]], ttl: int) -> list[str | None]:
        if not claims:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key, owner in claims:
            # NX GET: sets only if absent and returns the previous value (None: we set it).
            pipe.set(KEY_PREFIX + "dedupe:" + key, owner, nx=True, get=True, ex=ttl)
        return [
            None if held is None or held == owner.encode() else held.decode("utf-8", "replace")
            for (_, owner), held in zip(claims, pipe.execute(), strict=True)
        ]

    def attempt(self, key: str, ttl: int) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(KEY_PREFIX + key)
        pipe.expire(KEY_PREFIX + key, ttl)
        return int(pipe.execute()[0])

    def mark(self, keys: Sequence[str], value: str, ttl: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.set(KEY_PREFIX + "dedupe:" + key, value, ex=ttl)
        pipe.execute()

    def dead_letter(self, kind: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Append ``records``; the list then keeps only its newest ``dead_letter_max``
        (one transaction, so it never holds more)."""
        if not records:
            return
        key = KEY_PREFIX + "dlq:" + kind
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(key, *(_dumps(r) for r in records))
        if self.dead_letter_max:
            pipe.ltrim(key, -self.dead_letter_max, -1)
        pipe.execute()

    def dead_letters(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        raw = self.client.lrange(KEY_PREFIX + "dlq:" + kind, 0, limit - 1)
        return [json.loads(item) for item in raw]

    def pop_dead_letter(self, kind: str) -> dict[str, Any] | None:
        raw = self.client.lpop(KEY_PREFIX + "dlq:" + kind)
        return None if raw is None else json.loads(raw)

    def restore_dead_letter(self, kind: str, record: Mapping[str, Any]) -> None:
        self.client.lpush(KEY_PREFIX + "dlq:" + kind, _dumps(record))

    def count(self, counts: Mapping[str, int]) -> None:
        nonzero = {name: n for name, n in counts.items() if n}
        if not nonzero:
            return
        pipe = self.client.pipeline(transaction=False)
        for name, n in nonzero.items():
            pipe.hincrby(KEY_PREFIX + "counters", name, n)
        pipe.execute()

    def counters(self) -> dict[str, int]:
        raw = self.client.hgetall(KEY_PREFIX + "counters")
        return {k.decode(): int(v) for k, v in raw.items()}

    def append_verdicts(self, records: Sequence[Sequence[Any]], at: float) -> None:
        if self.verdict_stream and records:
            self.client.xadd(
                self.verdict_stream,
                {"t": repr(at), "v": _dumps({"verdicts": list(records)})},
                maxlen=self.verdict_stream_maxlen,
                approximate=True,
            )


class MemoryState:
    """In-process state for embedded mode and tests; same semantics, one process only."""

    def __init__(self, *, keep_verdicts: int = 100_000, dead_letter_max: int = DEAD_LETTER_MAX):
        self.dead_letter_max = dead_letter_max
        self._lock = threading.Lock()
        self._claims: dict[str, tuple[str, float]] = {}
        self._attempts: dict[str, tuple[int, float]] = {}
        self._dlq: dict[str, deque[dict[str, Any]]] = {k: deque() for k in DEAD_LETTER_KINDS}
        self._counters: dict[str, int] = {}
        self.verdicts: deque[tuple[float, list[Any]]] = deque(maxlen=keep_verdicts)

    def claim(self, keys: Sequence[str], owner: str, ttl: int) -> list[bool]:
        return [held is None for held in self.claim_or_holder([(k, owner) for k in keys], ttl)]

    def claim_or_holder(self, claims: Sequence[tuple[str, str]], ttl: int) -> list[str | None]:
        now = time.monotonic()
        results: list[str | None] = []
        with self._lock:
            for key, owner in claims:
                held = self._claims.get(key)
                if held is None or held[1] <= now:
                    self._claims[key] = (owner, now + ttl)
                    results.append(None)
                else:
                    results.append(None if held[0] == owner else held[0])
        return results

    def attempt(self, key: str, ttl: int) -> int:
        now = time.monotonic()
        with self._lock:
            held = self._attempts.get(key)
            count = held[0] + 1 if held is not None and held[1] > now else 1
            self._attempts[key] = (count, now + ttl)
            if len(self._attempts) > 100_000:  # one per batch: drop the expired ones
                self._attempts = {k: v for k, v in self._attempts.items() if v[1] > now}
            return count

    def mark(self, keys: Sequence[str], value: str, ttl: int) -> None:
        with self._lock:
            for key in keys:
                self._claims[key] = (value, time.monotonic() + ttl)

    def dead_letter(self, kind: str, records: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            queue = self._dlq[kind]
            queue.extend(json.loads(_dumps(r)) for r in records)
            while self.dead_letter_max and len(queue) > self.dead_letter_max:
                queue.popleft()

    def dead_letters(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._dlq[kind])[:limit]

    def pop_dead_letter(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            return self._dlq[kind].popleft() if self._dlq[kind] else None

    def restore_dead_letter(self, kind: str, record: Mapping[str, Any]) -> None:
        with self._lock:
            self._dlq[kind].appendleft(dict(record))

    def count(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for name, n in counts.items():
                if n:
                    self._counters[name] = self._counters.get(name, 0) + n

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def append_verdicts(self, records: Sequence[Sequence[Any]], at: float) -> None:
        with self._lock:
            self.verdicts.append((at, [list(r) for r in records]))
