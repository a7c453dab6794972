"""Shadow testing: what a candidate wordlist, model or bank would change, on live traffic.

A candidate published with ``--shadow`` is loaded by every worker next to the live
engine. For a sample of messages (chosen by a hash of the message id, so every worker and
every redelivery samples the same ones) the worker screens again with the candidate and
records where the decision would differ: counts by transition and by category, and a few
examples per category — message id, the start of the text, both decisions and the terms
that caused it — so an analyst reads the effect before promoting. Only the live verdict
ever acts.

Records are keyed by the candidate (its shadow pointers, e.g. ``wordlist=ab12cd34ef56``)
and kept for a week. Examples contain message text, like the audit records do; they stay
in Redis, never in metrics or logs.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import redis

from screening.engine.verdict import Verdict

__all__ = [
    "Difference",
    "MemoryShadowStore",
    "RedisShadowStore",
    "ShadowStore",
    "compare",
    "sampled",
    "shadow_key",
]

PREFIX = "screening:shadow:"
TTL = 7 * 86400
EXAMPLE_CHARS = 200
OTHER = "other"


def shadow_key(pointers: Mapping[str, str | None]) -> str:
    """The candidate's name: its shadow pointers, e.g. ``model=-,wordlist=ab12cd34ef56``
    (``bank=…`` in front only for a bank candidate, so earlier keys keep their names)."""
    kinds = (*(["bank"] if pointers.get("bank") else []), "model", "wordlist")
    return ",".join(f"{kind}={pointers.get(kind) or '-'}" for kind in kinds)


def sampled(message_id: str, rate: float) -> bool:
    """Deterministic sampling: the same messages on every worker and every redelivery."""
    if rate >= 1:
        return True
    return zlib.crc32(message_id.encode("utf-8")) % 10_000 < rate * 10_000


@dataclass(frozen=True, slots=True)
class Difference:
    """One message whose decision the candidate would change."""

    message_id: str
    text: str
    live: str
    candidate: str
    categories: tuple[str, ...]
    live_terms: tuple[str, ...]
    candidate_terms: tuple[str, ...]

    @property
    def transition(self) -> str:
        return f"{self.live}>{self.candidate}"


def _changed_categories(live: Verdict, candidate: Verdict) -> tuple[str, ...]:
    """Categories whose evidence differs: wordlist score, model score by ≥ 0.01, or the
    label's decision or source (a bank's match)."""
    changed = {
        c
        for c in set(live.categories) | set(candidate.categories)
        if abs(live.categories.get(c, 0.0) - candidate.categories.get(c, 0.0)) > 1e-9
    }
    changed |= {
        c
        for c in set(live.model_scores) | set(candidate.model_scores)
        if abs(live.model_scores.get(c, 0.0) - candidate.model_scores.get(c, 0.0)) >= 0.01
    }
    before, after = ({lb.category: (lb.decision, lb.source) for lb in v.labels}
                     for v in (live, candidate))  # fmt: skip
    changed |= {c for c in before.keys() | after.keys() if before.get(c) != after.get(c)}
    return tuple(sorted(changed)) or (OTHER,)


def _evidence(verdict: Verdict) -> tuple[str, ...]:
    """What an analyst looks up: the hit terms, and ``bank:<name>/<entry>`` of bank labels."""
    entries = {f"{lb.source}/{lb.entry}" for lb in verdict.labels if lb.entry is not None}
    return tuple(sorted({h.term for h in verdict.hits} | entries))


def compare(message_id: str, text: str, live: Verdict, candidate: Verdict) -> Difference | None:
    """The difference if the decisions differ, else None."""
    if live.decision == candidate.decision:
        return None
    return Difference(
        message_id=message_id,
        text=text[:EXAMPLE_CHARS],
        live=live.decision,
        candidate=candidate.decision,
        categories=_changed_categories(live, candidate),
        live_terms=_evidence(live),
        candidate_terms=_evidence(candidate),
    )


class ShadowStore(Protocol):
    def record(self, key: str, live: str, compared: int, differences: Sequence[Difference]) -> None:
        """Add one batch: ``compared`` messages screened by both, and what changed;
        ``live`` names the live versions they were compared with."""

    def summary(self, key: str, examples: int = 5) -> dict[str, Any] | None:
        """Everything recorded for a candidate, or None if nothing was."""

    def keys(self) -> list[str]:
        """Candidates with records, most recently active first."""


def _tally(differences: Sequence[Difference], live: str, compared: int) -> dict[str, int]:
    counts = {"compared": compared, "changed": len(differences), f"live:{live}": compared}
    for d in differences:
        counts[f"t:{d.transition}"] = counts.get(f"t:{d.transition}", 0) + 1
        for category in d.categories:
            field = f"c:{category}:{d.transition}"
            counts[field] = counts.get(field, 0) + 1
    return counts


def _summary(fields: Mapping[str, Any], examples: Mapping[str, list[dict[str, Any]]]) -> dict:
    counts = {k: int(v) for k, v in fields.items() if k not in ("first_at", "last_at")}
    categories: dict[str, dict[str, int]] = {}
    for name, n in counts.items():
        if name.startswith("c:"):
            category, transition = name[2:].split(":", 1)
            categories.setdefault(category, {})[transition.replace(">", "→")] = n
    return {
        "compared": counts.get("compared", 0),
        "changed": counts.get("changed", 0),
        "transitions": {
            k[2:].replace(">", "→"): n for k, n in sorted(counts.items()) if k.startswith("t:")
        },
        "categories": dict(sorted(categories.items(), key=lambda kv: -sum(kv[1].values()))),
        "live_versions": {k[5:]: n for k, n in counts.items() if k.startswith("live:")},
        "first_at": float(fields.get("first_at", 0)),
        "last_at": float(fields.get("last_at", 0)),
        "examples": dict(examples),
    }


class RedisShadowStore:
    def __init__(self, client: redis.Redis, *, examples_per_category: int = 20):
        self.client = client
        self.examples_per_category = examples_per_category

    def record(self, key: str, live: str, compared: int, differences: Sequence[Difference]) -> None:
        if not compared:
            return
        now, counts_key = time.time(), f"{PREFIX}counts:{key}"
        pipe = self.client.pipeline(transaction=False)
        for name, n in _tally(differences, live, compared).items():
            if n:
                pipe.hincrby(counts_key, name, n)
        pipe.hsetnx(counts_key, "first_at", repr(now))
        pipe.hset(counts_key, "last_at", repr(now))
        pipe.expire(counts_key, TTL)
        for d in differences:
            for category in d.categories:
                examples_key = f"{PREFIX}examples:{key}:{category}"
                pipe.lpush(examples_key, json.dumps(asdict(d), ensure_ascii=False))
                pipe.ltrim(examples_key, 0, self.examples_per_category - 1)
                pipe.expire(examples_key, TTL)
        pipe.zadd(f"{PREFIX}keys", {key: now})
        pipe.execute()

    def summary(self, key: str, examples: int = 5) -> dict[str, Any] | None:
        fields = {
            k.decode(): v.decode() for k, v in self.client.hgetall(f"{PREFIX}counts:{key}").items()
        }
        if not fields:
            return None
        found: dict[str, list[dict[str, Any]]] = {}
        for name in fields:
            if name.startswith("c:"):
                category = name[2:].split(":", 1)[0]
                if category not in found:
                    raw = self.client.lrange(f"{PREFIX}examples:{key}:{category}", 0, examples - 1)
                    found[category] = [json.loads(item) for item in raw]
        return _summary(fields, found)

    def keys(self) -> list[str]:
        return [k.decode() for k in self.client.zrevrange(f"{PREFIX}keys", 0, 19)]


class MemoryShadowStore:
    """The same records in one process (tests, embedded mode)."""

    def __init__(self, *, examples_per_category: int = 20):
        self.examples_per_category = examples_per_category
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, Any]] = {}
        self._examples: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._seen: dict[str, float] = {}

    def record(self, key: str, live: str, compared: int, differences: Sequence[Difference]) -> None:
        if not compared:
            return
        now = time.time()
        with self._lock:
            counts = self._counts.setdefault(key, {"first_at": now})
            for name, n in _tally(differences, live, compared).items():
                counts[name] = counts.get(name, 0) + n
            counts["last_at"] = now
            for d in differences:
                for category in d.categories:
                    kept = self._examples.setdefault((key, category), [])
                    kept.insert(0, asdict(d))
                    del kept[self.examples_per_category :]
            self._seen[key] = now

    def summary(self, key: str, examples: int = 5) -> dict[str, Any] | None:
        with self._lock:
            fields = self._counts.get(key)
            if fields is None:
                return None
            found = {c: list(e[:examples]) for (k, c), e in self._examples.items() if k == key}
            return _summary(fields, found)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._seen, key=lambda k: -self._seen[k])[:20]
