"""Prometheus metrics of the screening workers: definitions and recording.

Every metric is named ``screening_*`` and lives on a registry the caller passes in: the
worker entry point builds one per process (in dramatiq's multiprocess mode the values go
to mmap files that one exposition server aggregates), tests build a fresh one each. No
label ever carries message text or a user id: labels come from fixed sets (decisions,
categories, stages, outcomes, measure kinds) or from the wordlist itself — a bounded
top-N of terms, everything else counted as ``other`` (:mod:`screening.operations.metric_labels`) —
because every distinct label value is a time series Prometheus keeps for weeks.

Recording is gathered in plain dictionaries and applied to the metric values at most once
a second (:mod:`screening.operations.metrics_buffer`): well under 1 % of a worker's screening time.
Importing this module does not import prometheus-client (see :class:`ScreeningMetrics`).
"""

from __future__ import annotations

import functools
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from screening.engine.verdict import Verdict
from screening.engine.wordlist import Wordlist
from screening.operations.metric_labels import (
    CALLBACK_OUTCOMES,
    CATEGORY_LABELS,
    DEAD_LETTER_KINDS,
    DECISION_LABELS,
    MEASURE_KINDS,
    OTHER,
    REPORT_OUTCOMES,
    label,
    top_terms,
)
from screening.operations.metrics_buffer import Pending
from screening.operations.versions import KINDS

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["STAGES", "ScreeningMetrics"]

#: Stages timed per batch. ``tokenise`` is segmentation wherever it runs (word-mode checks
#: in match, features in classify); ``match`` and ``classify`` are reported without it.
STAGES = ("normalise", "tokenise", "match", "decide", "classify", "policy")
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: One message's share of its batch: tens of microseconds normally, the batch time limit
#: (30 s) at worst.
_MESSAGE_BUCKETS = (2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 1, 5, 30)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500, 1000)
_ATTEMPT_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
_RELOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)


class ScreeningMetrics:
    """All ``screening_*`` metrics on one registry, with recording methods that take
    domain objects (verdicts, events) and turn them into bounded labels."""

    def __init__(
        self, registry: CollectorRegistry, *, top_terms_n: int = 50, flush_interval: float = 1.0
    ):
        # Imported here, not at module level: in a dramatiq worker, prometheus-client must
        # first be imported after PROMETHEUS_MULTIPROC_DIR is set (Telemetry does that).
        from prometheus_client import Counter, Gauge, Histogram

        counter = functools.partial(Counter, registry=registry)
        gauge = functools.partial(Gauge, registry=registry)
        histogram = functools.partial(Histogram, registry=registry)

        self.top_terms_n = top_terms_n
        self._tracked: dict[str | None, frozenset[str]] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._hit_cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._pending = Pending(flush_interval, lambda key: self._child(*key))
        self.flush_interval = flush_interval
        self.messages = counter(
            "screening_messages", "Chat messages screened, by decision.", ["decision"]
        )
        self.categories = counter(
            "screening_category_messages",
            "Screened messages with evidence in a category, by category and message decision.",
            ["category", "decision"],
        )
        self.hits = counter(
            "screening_hits",
            "Wordlist and pattern hits, by category and source (wordlist or pattern).",
            ["category", "source"],
        )
        self.term_hits = counter(
            "screening_term_hits",
            "Hits of the wordlist's top terms (term='other' for all the rest).",
            ["category", "term"],
        )
        self.stage_seconds = histogram(
            "screening_stage_duration_seconds",
            "Time a batch spent in each screening stage.",
            ["stage"],
            buckets=_STAGE_BUCKETS,
        )
        self.message_seconds = histogram(
            "screening_message_screen_seconds",
            "Per chat message: screening time (its batch's engine time shared by its "
            "messages; SCREENING_BATCH_TIME_LIMIT bounds a batch).",
            buckets=_MESSAGE_BUCKETS,
        )
        self.alone = counter(
            "screening_messages_screened_alone",
            "Chat messages screened one by one because an earlier attempt at their batch "
            "did not finish, by outcome (screened; overran: dead-lettered as the message "
            "no attempt got through).",
            ["outcome"],
        )
        self.end_to_end = histogram(
            "screening_end_to_end_seconds",
            "Per chat message: enqueue (queue message timestamp) to verdict.",
            buckets=_LATENCY_BUCKETS,
        )
        self.batch_size = histogram(
            "screening_batch_size",
            "Chat messages per queue message.",
            buckets=_BATCH_BUCKETS,
        )
        self.callbacks = counter(
            "screening_callbacks",
            "Callback deliveries by outcome (delivered, retry, dead_lettered, duplicate, parked).",
            ["outcome"],
        )
        self.callback_attempts = histogram(
            "screening_callback_attempts",
            "Attempts a callback took until it was delivered or dead-lettered.",
            ["outcome"],
            buckets=_ATTEMPT_BUCKETS,
        )
        self.dead_letters = counter(
            "screening_dead_letters",
            "Records written to the dead-letter queues, by kind (messages or callbacks).",
            ["kind"],
        )
        self.measures = counter("screening_measures", "Measures issued, by type.", ["type"])
        self.reports = counter(
            "screening_reports",
            "User reports screened, by outcome (block, review, dismissed).",
            ["outcome"],
        )
        self.version_info = gauge(
            "screening_version_info",
            "1 for each wordlist/model/bank version a worker process screens with (slot: live or "
            "shadow); two live versions at once means workers disagree.",
            ["kind", "slot", "version"],
            multiprocess_mode="livemax",
        )
        self.reloads = counter(
            "screening_reloads",
            "Hot reloads by kind (wordlist, model), slot (live, shadow) and outcome (ok, failed).",
            ["kind", "slot", "outcome"],
        )
        self.reload_failing = gauge(
            "screening_reload_failing",
            "1 while a worker's last reload of this kind and slot failed (it keeps the old one).",
            ["kind", "slot"],
            multiprocess_mode="livemax",
        )
        self.reload_seconds = histogram(
            "screening_reload_duration_seconds",
            "Time from noticing a new version to swapping it in.",
            ["kind"],
            buckets=_RELOAD_BUCKETS,
        )
        self.shadow_compared = counter(
            "screening_shadow_compared",
            "Messages screened by both the live and the shadow (candidate) engine.",
        )
        self.shadow_changed = counter(
            "screening_shadow_changed",
            "Shadow comparisons whose decision differs, by live and candidate decision.",
            ["live", "candidate"],
        )

    def tracked_terms(self, wordlist: Wordlist) -> frozenset[str]:
        """The top-term label set of a wordlist version (cached; a few versions kept)."""
        terms = self._tracked.get(wordlist.version)
        if terms is None:
            if len(self._tracked) >= 4:
                self._tracked.pop(next(iter(self._tracked)))
            terms = self._tracked[wordlist.version] = top_terms(wordlist, self.top_terms_n)
        return terms

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, cached: the lookup costs more than the increment."""
        key = (metric._name, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels) if labels else metric
        return child

    def _count(self, metric: Any, labels: tuple[str, ...], n: float = 1) -> None:
        if n:
            with self._pending.lock:
                self._pending.counts[metric, labels] += n

    def _observe(self, metric: Any, labels: tuple[str, ...], value: float, n: int = 1) -> None:
        child = self._child(metric, labels)
        with self._pending.lock:
            self._pending.observe(child, value, n)

    def flush(self) -> None:
        """Apply what was gathered (the worker calls it at shutdown; recording calls it at
        most once per flush interval)."""
        self._pending.flush()

    def _maybe_flush(self) -> None:
        if self._pending.due():
            self._pending.flush()

    def _hit_keys(self, hit: Any, terms: frozenset[str]) -> tuple[Any, Any]:
        """The two counter keys a hit increments, cached per (term, category, source)."""
        key = (hit.term, hit.category, hit.source, terms)
        found = self._hit_cache.get(key)
        if found is None:
            if len(self._hit_cache) > 100_000:
                self._hit_cache.clear()
            category = label(hit.category, CATEGORY_LABELS)
            source = "pattern" if hit.source.startswith("pattern") else "wordlist"
            term = hit.term if hit.term in terms else OTHER
            found = self._hit_cache[key] = (
                (self.hits, (category, source)),
                (self.term_hits, (category, term)),
            )
        return found

    def record_verdicts(self, verdicts: Sequence[Verdict], terms: frozenset[str]) -> None:
        decisions = Tally([v.decision for v in verdicts])
        flagged = [v for v in verdicts if v.hits or v.categories]  # a few per batch
        with self._pending.lock:
            counts = self._pending.counts
            for decision, n in decisions.items():
                counts[self.messages, (label(decision, DECISION_LABELS),)] += n
            for verdict in flagged:
                decision = label(verdict.decision, DECISION_LABELS)
                for category, score in verdict.categories.items():
                    if score > 0:
                        counts[self.categories, (label(category, CATEGORY_LABELS), decision)] += 1
                for hit in verdict.hits:
                    hit_key, term_key = self._hit_keys(hit, terms)
                    counts[hit_key] += 1
                    counts[term_key] += 1
        self._maybe_flush()

    def record_batch(
        self,
        verdicts: Sequence[Verdict],
        *,
        terms: frozenset[str],
        stages: Mapping[str, float],
        latency: float | None,
    ) -> None:
        """One screened queue message: ``latency`` is enqueue → verdict in seconds, the
        same for every message of the batch (one weighted observation)."""
        self._observe(self.batch_size, (), len(verdicts))
        for stage, seconds in stages.items():
            if stage in STAGES:
                self._observe(self.stage_seconds, (stage,), seconds)
        if verdicts:
            engine_seconds = sum(s for stage, s in stages.items() if stage in STAGES)
            share = engine_seconds / len(verdicts)
            self._observe(self.message_seconds, (), share, len(verdicts))
        if latency is not None and verdicts:
            self._observe(self.end_to_end, (), max(0.0, latency), len(verdicts))
        self.record_verdicts(verdicts, terms)

    def record_callback(self, outcome: str, attempts: int) -> None:
        outcome = label(outcome, CALLBACK_OUTCOMES)
        self._count(self.callbacks, (outcome,))
        if outcome in ("delivered", "dead_lettered"):
            self._observe(self.callback_attempts, (outcome,), attempts)
        self._maybe_flush()

    def record_alone(self, screened: int, overran: int) -> None:
        """Messages of a batch screened one by one (see workers/screen.py)."""
        if screened:
            self._count(self.alone, ("screened",), screened)
        if overran:
            self._count(self.alone, ("overran",), overran)
        self._maybe_flush()

    def record_dead_letters(self, kind: str, n: int) -> None:
        self._count(self.dead_letters, (label(kind, DEAD_LETTER_KINDS),), n)
        self._maybe_flush()

    def record_measures(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Count measure events (``measure.applied`` and friends) by measure kind."""
        for event in events:
            measure = event.get("measure")
            if isinstance(measure, Mapping) and event.get("type") != "measure.lifted":
                self._count(self.measures, (label(measure.get("kind"), MEASURE_KINDS),))
        self._maybe_flush()

    def record_report(self, outcome: str, events: Iterable[Mapping[str, Any]]) -> None:
        """One user report: its outcome, and the measures it led to."""
        self._count(self.reports, (label(outcome, REPORT_OUTCOMES),))
        self.record_measures(events)

    def set_versions(self, slot: str, now: Mapping[str, str | None], before: Mapping) -> None:
        """Flip the version info gauges of one slot from ``before`` to ``now``."""
        for kind in KINDS:
            old, new = before.get(kind), now.get(kind)
            if old and old != new:
                self.version_info.labels(kind, slot, old).set(0)
            if new:
                self.version_info.labels(kind, slot, new).set(1)

    def record_reload(
        self, kind: str, ok: bool, seconds: float | None = None, slot: str = "live"
    ) -> None:
        """Rare and urgent: applied at once, not gathered."""
        self.reloads.labels(kind, slot, "ok" if ok else "failed").inc()
        self.reload_failing.labels(kind, slot).set(0 if ok else 1)
        if ok and seconds is not None:
            self.reload_seconds.labels(kind).observe(seconds)

    def record_shadow(self, compared: int, changes: Iterable[tuple[str, str]]) -> None:
        self._count(self.shadow_compared, (), compared)
        for (live, candidate), n in Tally(changes).items():
            self._count(self.shadow_changed, (live, candidate), n)
        self._maybe_flush()
