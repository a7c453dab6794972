"""`screening eval`: how well the screener does on labelled data, in analysts' terms.

Three systems are scored on the same messages — the full verdict (wordlists + model), the
wordlists alone and the model alone — so a change can be attributed to the signal that
caused it. For each: per-category precision, recall, F1 and support (multi-label: a
message may be gambling *and* contact diversion), the confusion between categories, the
false-positive rate on benign messages (any non-pass decision on a message with no label:
what group members experience), and the worst false positives and negatives for an
analyst to read. The metric code is pure (:func:`metrics` on :class:`Scored` rows) so it
is tested against hand-computed figures; :mod:`screening.evaluation.report` lays the
figures out as text.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screening.engine.config import Thresholds
from screening.engine.core import Engine
from screening.engine.text_files import data_error, utf8_lines
from screening.engine.verdict import CATEGORIES, decide, decide_model
from screening.errors import ModelError
from screening.evaluation.report import render_report
from screening.progress import progress_callback
from screening.settings import Settings, model_path

__all__ = [
    "Example",
    "Scored",
    "cmd_eval",
    "evaluate_engine",
    "metrics",
    "model_rows",
    "read_examples",
]

NONE = "none"


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message: ``labels`` empty means benign."""

    text: str
    labels: tuple[str, ...]
    source: str
    id: str | None = None


def read_examples(path: str | Path) -> list[Example]:
    """Labelled JSONL (``text``, ``labels``; optional ``id``, ``source``)."""
    path = Path(path)
    examples = []
    for number, line in utf8_lines(path, data_error):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, labels = record["text"], record.get("labels", [])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}:{number}: not a JSON object with 'text': {exc}") from None
        if not isinstance(text, str) or not isinstance(labels, list):
            raise ModelError(f"{path}:{number}: 'text' must be a string, 'labels' a list")
        unknown = set(labels) - set(CATEGORIES)
        if unknown:
            raise ModelError(f"{path}:{number}: unknown label(s) {sorted(unknown)}")
        source = str(record.get("source") or path.stem)
        ident = record.get("id")
        examples.append(Example(text, tuple(sorted(set(labels))), source, ident))
    return examples


@dataclass(frozen=True, slots=True)
class Scored:
    """One example as one system judged it: ``predicted`` are the categories at or above
    their review threshold, ``scores`` the evidence per category (for ranking errors)."""

    example: Example
    predicted: frozenset[str]
    decision: str
    scores: Mapping[str, float]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _error(row: Scored, category: str) -> dict[str, Any]:
    return {
        "id": row.example.id,
        "text": row.example.text,
        "labels": list(row.example.labels),
        "category": category,
        "score": round(row.scores.get(category, 0.0), 4),
        "decision": row.decision,
        "source": row.example.source,
    }


def metrics(rows: Sequence[Scored], worst: int = 10) -> dict[str, Any]:
    """Per-category and message-level figures for one system (see the module docstring).

    Undefined ratios (nothing predicted, nothing to find) are ``None``, not 0 or 1, so a
    category without data never looks perfect. The confusion counts, for each message,
    every (true, predicted) pair, with ``none`` standing for an empty side.
    """
    counts = {c: Counter() for c in CATEGORIES}
    confusion: dict[str, Counter[str]] = {c: Counter() for c in (*CATEGORIES, NONE)}
    benign: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    false_positives, false_negatives = [], []
    for row in rows:
        truth = set(row.example.labels)
        for category in CATEGORIES:
            hit, real = category in row.predicted, category in truth
            counts[category]["tp" if hit and real else "fp" if hit else "fn" if real else "tn"] += 1
        false_positives.extend((row, c) for c in sorted(row.predicted - truth))
        false_negatives.extend((row, c) for c in sorted(truth - row.predicted))
        for true in truth or {NONE}:
            for predicted in row.predicted or {NONE}:
                confusion[true][predicted] += 1
        flagged = row.decision != "pass"
        group = "benign" if not truth else "positive"
        benign[f"{group}_rows"] += 1
        benign[f"{group}_flagged"] += flagged
        benign[f"{group}_blocked"] += row.decision == "block"
        if not truth:
            source = by_source.setdefault(row.example.source, Counter())
            source["rows"] += 1
            source["flagged"] += flagged
    per_category = {}
    for category, c in counts.items():
        per_category[category] = {
            "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
            "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
            "f1": _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
            "support": c["tp"] + c["fn"],
            "predicted": c["tp"] + c["fp"],
            "tp": c["tp"],
            "fp": c["fp"],
            "fn": c["fn"],
        }
    tp, fp, fn = (sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn"))
    supported = [m["f1"] for m in per_category.values() if m["support"]]
    false_positives.sort(key=lambda pair: -pair[0].scores.get(pair[1], 0.0))
    false_negatives.sort(key=lambda pair: pair[0].scores.get(pair[1], 0.0))
    return {
        "rows": len(rows),
        "per_category": per_category,
        "micro": {
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        },
        "macro_f1": sum(supported) / len(supported) if supported else None,
        "benign": {
            "rows": benign["benign_rows"],
            "flagged": benign["benign_flagged"],
            "false_positive_rate": _ratio(benign["benign_flagged"], benign["benign_rows"]),
            "blocked": benign["benign_blocked"],
            "block_rate": _ratio(benign["benign_blocked"], benign["benign_rows"]),
            "by_source": {
                name: {**c, "false_positive_rate": _ratio(c["flagged"], c["rows"])}
                for name, c in sorted(by_source.items())
            },
        },
        "positives": {
            "rows": benign["positive_rows"],
            "flagged": benign["positive_flagged"],
            "detection_rate": _ratio(benign["positive_flagged"], benign["positive_rows"]),
        },
        "confusion": {t: dict(sorted(p.items())) for t, p in confusion.items() if p},
        "worst_false_positives": [_error(r, c) for r, c in false_positives[:worst]],
        "worst_false_negatives": [_error(r, c) for r, c in false_negatives[:worst]],
    }


def model_rows(
    examples: Sequence[Example],
    scores: Sequence[Mapping[str, float]],
    thresholds: Mapping[str, Thresholds],
) -> list[Scored]:
    """Rows for the model alone, from its scores and (review, block) thresholds."""
    return [
        Scored(
            example,
            frozenset(c for c, t in thresholds.items() if score.get(c, 0.0) >= t.review),
            decide_model(score, thresholds),
            {c: score.get(c, 0.0) for c in CATEGORIES},
        )
        for example, score in zip(examples, scores, strict=True)
    ]


def evaluate_engine(
    engine: Engine,
    examples: Sequence[Example],
    *,
    batch_size: int = 512,
    worst: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Metrics for the full verdict, the wordlists alone and (if loaded) the model alone;
    ``progress(done, total)`` after each batch."""
    rules = engine.config.decision
    systems: dict[str, list[Scored]] = {"verdict": [], "wordlists": []}
    model_scores = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        verdicts = engine.screen_batch([(e.id, e.text) for e in batch])
        if progress is not None:
            progress(start + len(batch), len(examples))
        for example, verdict in zip(batch, verdicts, strict=True):
            words = frozenset(
                c for c, s in verdict.categories.items() if s >= rules.thresholds(c).review
            )
            model = frozenset(
                c for c, t in engine.model_thresholds.items()
                if verdict.model_scores.get(c, 0.0) >= t.review
            )  # fmt: skip
            evidence = {
                c: max(verdict.categories.get(c, 0.0), verdict.model_scores.get(c, 0.0))
                for c in CATEGORIES
            }
            systems["verdict"].append(Scored(example, words | model, verdict.decision, evidence))
            wordlist_decision = decide(verdict.categories, rules)
            systems["wordlists"].append(
                Scored(example, words, wordlist_decision, dict(verdict.categories))
            )
            model_scores.append(verdict.model_scores)
    if engine.classifier is not None:
        systems["model"] = model_rows(examples, model_scores, engine.model_thresholds)
    labels = Counter(label for e in examples for label in e.labels)
    return {
        "rows": len(examples),
        "labels": dict(sorted(labels.items())),
        "benign_rows": sum(1 for e in examples if not e.labels),
        "versions": dict(engine.versions),
        "model_thresholds": {
            c: {"review": t.review, "block": t.block} for c, t in engine.model_thresholds.items()
        },
        "systems": {name: metrics(rows, worst) for name, rows in systems.items()},
    }


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    examples = read_examples(args.data)
    engine = Engine.load(
        args.wordlists or settings.wordlists,
        args.config or settings.config,
        model=model_path(args.model, settings.model),
    )
    report = evaluate_engine(engine, examples, batch_size=args.batch_size, worst=args.worst,
                             progress=progress_callback("eval", unit="msg"))  # fmt: skip
    report = {"data": str(args.data), **report}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(render_report(report))
    return 0
