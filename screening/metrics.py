"""Prometheus metrics of the screening workers: definitions, label hygiene, stage timing.

Every metric is named ``screening_*`` and lives on a registry the caller passes in: the
worker entry point builds one per process (in dramatiq's multiprocess mode the values go
to mmap files that one exposition server aggregates), tests build a fresh one each. No
label ever carries message text or a user id: labels come from fixed sets (decisions,
categories, stages, outcomes, measure kinds) or from the wordlist itself — a bounded
top-N of terms, everything else counted as ``other`` — because every distinct label value
is a time series Prometheus keeps for weeks.

Recording is aggregated per batch (one ``inc`` per label set, not per message) so the
cost stays a few microseconds per queue message, not per chat message. Importing this
module does not import prometheus-client (see :class:`ScreeningMetrics`).
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from screening.verdict import CATEGORIES, DECISIONS, Verdict
from screening.wordlist import Wordlist

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "MEASURE_KINDS",
    "STAGES",
    "ScreeningMetrics",
    "StageClock",
    "observe_many",
    "top_terms",
]

#: Stages timed per batch. ``tokenise`` is segmentation wherever it runs (word-mode checks
#: in match, features in classify); ``match`` and ``classify`` are reported without it.
STAGES = ("normalise", "tokenise", "match", "decide", "classify", "policy")
OTHER = "other"
#: Measure kinds (screening.measures) that may appear as a label; anything else is "other".
MEASURE_KINDS = frozenset(
    {
        "group_warning",
        "group_suspend_posting",
        "group_closure_recommended",
        "user_suspend_posting",
        "user_suspend_admin",
        "user_revoke_group_creation",
        "user_blacklist",
    }
)
CALLBACK_OUTCOMES = frozenset({"delivered", "retry", "dead_lettered", "duplicate"})
DEAD_LETTER_KINDS = frozenset({"messages", "callbacks"})
_CATEGORY_LABELS = frozenset(CATEGORIES)
_DECISION_LABELS = frozenset(DECISIONS)

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500, 1000)
_ATTEMPT_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
_RELOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)


def _label(value: Any, allowed: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


def top_terms(wordlist: Wordlist, n: int) -> frozenset[str]:
    """The terms that get their own ``term`` label: up to ``n``, block severity first, then
    in file order, taken round-robin over categories so every category is represented.
    Analysts list a category's core terms first; pattern names are always included (a
    handful, and the contact-diversion dashboard needs them)."""
    chosen: dict[str, None] = {}
    for severity in ("block", "review"):
        queues: dict[str, list[str]] = {}
        for term in wordlist.terms:
            if term.severity == severity:
                queues.setdefault(term.category, []).append(term.text)
        rounds = [iter(terms) for terms in queues.values()]
        while len(chosen) < n and rounds:
            for terms in list(rounds):
                term = next(terms, None)
                if term is None:
                    rounds.remove(terms)
                elif len(chosen) < n:
                    chosen[term] = None
    return frozenset(chosen) | {p.name for p in wordlist.patterns}


def observe_many(histogram: Any, value: float, count: int) -> None:
    """``count`` observations of the same ``value`` in one update (a batch's messages all
    share one enqueue time). Uses prometheus-client's histogram internals, which are
    pinned in pyproject.toml; falls back to a loop if they ever change shape."""
    if count <= 0:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for _ in range(count):
            histogram.observe(value)
        return
    total.inc(value * count)
    for index, bound in enumerate(bounds):
        if value <= bound:
            buckets[index].inc(count)
            break


class StageClock:
    """Seconds per stage for the batch the current thread is processing.

    The engine's timing hook and the timed tokenizer add to it; the metrics middleware
    resets it before a queue message and takes it after — both on the dramatiq worker
    thread that runs the actor, hence a thread-local. Adding is a dict update, no I/O.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _stages(self) -> dict[str, float]:
        stages = getattr(self._local, "stages", None)
        if stages is None:
            stages = self._local.stages = {}
        return stages

    def reset(self) -> None:
        self._local.stages = {}

    def add(self, stage: str, seconds: float) -> None:
        stages = self._stages()
        stages[stage] = stages.get(stage, 0.0) + seconds

    def add_all(self, durations: Mapping[str, float]) -> None:
        """The engine's hook: ``{stage: seconds}`` once per ``analyse_batch``."""
        stages = self._stages()
        for stage, seconds in durations.items():
            stages[stage] = stages.get(stage, 0.0) + seconds

    def take(self) -> dict[str, float]:
        """The stages of the finished batch, with tokenisation moved out of the stages it
        ran inside (``tokenise@match`` and ``tokenise@classify`` from the timed tokenizers)."""
        stages = self._stages()
        self._local.stages = {}
        result = {k: v for k, v in stages.items() if "@" not in k}
        for key, seconds in stages.items():
            if "@" in key:
                stage, inside = key.split("@", 1)
                result[stage] = result.get(stage, 0.0) + seconds
                if inside in result:
                    result[inside] = max(0.0, result[inside] - seconds)
        return result


class ScreeningMetrics:
    """All ``screening_*`` metrics on one registry, with recording methods that take
    domain objects (verdicts, events) and turn them into bounded labels."""

    def __init__(self, registry: CollectorRegistry, *, top_terms_n: int = 50):
        # Imported here, not at module level: in a dramatiq worker, prometheus-client must
        # first be imported after PROMETHEUS_MULTIPROC_DIR is set (Telemetry does that).
        from prometheus_client import Counter, Gauge, Histogram

        self.top_terms_n = top_terms_n
        self._tracked: dict[str | None, frozenset[str]] = {}
        r = registry
        self.messages = Counter(
            "screening_messages", "Chat messages screened, by decision.", ["decision"], registry=r
        )
        self.categories = Counter(
            "screening_category_messages",
            "Screened messages with evidence in a category, by category and message decision.",
            ["category", "decision"],
            registry=r,
        )
        self.hits = Counter(
            "screening_hits",
            "Wordlist and pattern hits, by category and source (wordlist or pattern).",
            ["category", "source"],
            registry=r,
        )
        self.term_hits = Counter(
            "screening_term_hits",
            "Hits of the wordlist's top terms (term='other' for all the rest).",
            ["category", "term"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "screening_stage_duration_seconds",
            "Time a batch spent in each screening stage.",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "screening_end_to_end_seconds",
            "Per chat message: enqueue (queue message timestamp) to verdict.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "screening_batch_size",
            "Chat messages per queue message.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.callbacks = Counter(
            "screening_callbacks",
            "Callback deliveries by outcome (delivered, retry, dead_lettered, duplicate).",
            ["outcome"],
            registry=r,
        )
        self.callback_attempts = Histogram(
            "screening_callback_attempts",
            "Attempts a callback took until it was delivered or dead-lettered.",
            ["outcome"],
            buckets=_ATTEMPT_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "screening_dead_letters",
            "Records written to the dead-letter queues, by kind (messages or callbacks).",
            ["kind"],
            registry=r,
        )
        self.measures = Counter(
            "screening_measures", "Measures issued, by type.", ["type"], registry=r
        )
        self.version_info = Gauge(
            "screening_version_info",
            "1 for each wordlist/model version a worker process screens with (slot: live or "
            "shadow); two live versions at once means workers disagree.",
            ["kind", "slot", "version"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.reloads = Counter(
            "screening_reloads",
            "Hot reloads by kind (wordlist, model) and outcome (ok, failed).",
            ["kind", "outcome"],
            registry=r,
        )
        self.reload_failing = Gauge(
            "screening_reload_failing",
            "1 while a worker's last reload of this kind failed (it keeps the old version).",
            ["kind"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.reload_seconds = Histogram(
            "screening_reload_duration_seconds",
            "Time from noticing a new version to swapping it in.",
            ["kind"],
            buckets=_RELOAD_BUCKETS,
            registry=r,
        )
        self.shadow_compared = Counter(
            "screening_shadow_compared",
            "Messages screened by both the live and the shadow (candidate) engine.",
            registry=r,
        )
        self.shadow_changed = Counter(
            "screening_shadow_changed",
            "Shadow comparisons whose decision differs, by live and candidate decision.",
            ["live", "candidate"],
            registry=r,
        )

    def tracked_terms(self, wordlist: Wordlist) -> frozenset[str]:
        """The top-term label set of a wordlist version (cached; a few versions kept)."""
        terms = self._tracked.get(wordlist.version)
        if terms is None:
            if len(self._tracked) >= 4:
                self._tracked.pop(next(iter(self._tracked)))
            terms = self._tracked[wordlist.version] = top_terms(wordlist, self.top_terms_n)
        return terms

    def record_verdicts(self, verdicts: Sequence[Verdict], terms: frozenset[str]) -> None:
        decisions: Tally[str] = Tally()
        categories: Tally[tuple[str, str]] = Tally()
        hits: Tally[tuple[str, str]] = Tally()
        term_hits: Tally[tuple[str, str]] = Tally()
        for verdict in verdicts:
            decision = _label(verdict.decision, _DECISION_LABELS)
            decisions[decision] += 1
            for category, score in verdict.categories.items():
                if score > 0:
                    categories[_label(category, _CATEGORY_LABELS), decision] += 1
            for hit in verdict.hits:
                category = _label(hit.category, _CATEGORY_LABELS)
                source = "pattern" if hit.source.startswith("pattern") else "wordlist"
                hits[category, source] += 1
                term_hits[category, hit.term if hit.term in terms else OTHER] += 1
        for decision, n in decisions.items():
            self.messages.labels(decision).inc(n)
        for labels, n in categories.items():
            self.categories.labels(*labels).inc(n)
        for labels, n in hits.items():
            self.hits.labels(*labels).inc(n)
        for labels, n in term_hits.items():
            self.term_hits.labels(*labels).inc(n)

    def record_batch(
        self,
        verdicts: Sequence[Verdict],
        *,
        terms: frozenset[str],
        stages: Mapping[str, float],
        latency: float | None,
    ) -> None:
        """One screened queue message: ``latency`` is enqueue → verdict in seconds."""
        self.batch_size.observe(len(verdicts))
        self.record_verdicts(verdicts, terms)
        for stage, seconds in stages.items():
            if stage in STAGES:
                self.stage_seconds.labels(stage).observe(seconds)
        if latency is not None and verdicts:
            observe_many(self.end_to_end, max(0.0, latency), len(verdicts))

    def record_callback(self, outcome: str, attempts: int) -> None:
        outcome = _label(outcome, CALLBACK_OUTCOMES)
        self.callbacks.labels(outcome).inc()
        if outcome in ("delivered", "dead_lettered"):
            self.callback_attempts.labels(outcome).observe(attempts)

    def record_dead_letters(self, kind: str, n: int) -> None:
        if n:
            self.dead_letters.labels(_label(kind, DEAD_LETTER_KINDS)).inc(n)

    def record_measures(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Count measure events (``measure.applied`` and friends) by measure kind."""
        for event in events:
            measure = event.get("measure")
            if isinstance(measure, Mapping) and event.get("type") != "measure.lifted":
                self.measures.labels(_label(measure.get("kind"), MEASURE_KINDS)).inc()

    def set_versions(self, slot: str, now: Mapping[str, str | None], before: Mapping) -> None:
        """Flip the version info gauges of one slot from ``before`` to ``now``."""
        for kind in ("wordlist", "model"):
            old, new = before.get(kind), now.get(kind)
            if old and old != new:
                self.version_info.labels(kind, slot, old).set(0)
            if new:
                self.version_info.labels(kind, slot, new).set(1)

    def record_reload(self, kind: str, ok: bool, seconds: float | None = None) -> None:
        self.reloads.labels(kind, "ok" if ok else "failed").inc()
        self.reload_failing.labels(kind).set(0 if ok else 1)
        if ok and seconds is not None:
            self.reload_seconds.labels(kind).observe(seconds)

    def record_shadow(self, compared: int, changes: Iterable[tuple[str, str]]) -> None:
        self.shadow_compared.inc(compared)
        for (live, candidate), n in Tally(changes).items():
            self.shadow_changed.labels(live, candidate).inc(n)
