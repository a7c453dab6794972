"""Which linear model each category gets, and where its thresholds fall.

Steps 3–4 of :mod:`screening.training.train`. Per category every candidate in
:func:`candidates` is scored by k-fold out-of-fold F1 at its best threshold (candidates
are compared on ranking, not on where their default cut happens to fall) and the best is
kept. Its out-of-fold scores fit a Platt calibration and choose the review and block
thresholds: the lowest grid point meeting the precision target while keeping the
false-positive rate under its cap on *every* benign source (:func:`benign_groups`), or
:data:`DISABLED` when none does. The held-out split is never looked at here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from screening.engine.classify import NONE
from screening.engine.config import Thresholds
from screening.engine.context import CONTEXT
from screening.evaluation.evaluate import Example
from screening.training.data import root_source
from screening.training.options import TrainOptions

__all__ = [
    "DISABLED",
    "GRID",
    "CategoryFit",
    "benign_groups",
    "candidates",
    "choose_threshold",
    "context_threshold",
    "fit_category",
    "named_benign_groups",
]

#: A threshold no calibrated score reaches: the model alone never acts on that level.
DISABLED = 1.01
#: Thresholds are picked from this grid, so the card's numbers are readable and stable.
GRID = (*tuple(round(0.5 + 0.01 * i, 2) for i in range(50)), 0.995, 0.999)


def candidates(seed: int) -> dict[str, Any]:
    """The linear models compared per category (all fast on sparse tf-idf)."""
    return {
        "logreg": LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000),
        "sgd-hinge": SGDClassifier(loss="hinge", alpha=1e-5, random_state=seed),
        # Seed categories have ~500 positives among ~150,000 rows: unweighted hinge loss
        # settles for a cautious head; weighting positives 5× ranks them better.
        "sgd-hinge-w5": SGDClassifier(
            loss="hinge", alpha=1e-5, class_weight={True: 5.0, False: 1.0}, random_state=seed
        ),
        "sgd-modified-huber": SGDClassifier(loss="modified_huber", alpha=1e-5, random_state=seed),
    }


def _best_f1(y: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(y, scores)
    return float(np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12)))


def _over(rate: float, cap: float) -> float:
    """A false-positive rate as a multiple of its cap (a zero cap allows none)."""
    if cap > 0:
        return rate / cap
    return np.inf if rate > 0 else 0.0


def _at(
    probs: np.ndarray, y: np.ndarray, benign: Sequence[np.ndarray], t: float,
    caps: Sequence[float],
) -> dict[str, float]:
    flagged = probs >= t
    hits = int((flagged & y).sum())
    rates = [int((flagged & g).sum()) / max(int(g.sum()), 1) for g in benign]
    return {
        "threshold": t,
        "precision": hits / max(int(flagged.sum()), 1),
        "recall": hits / max(int(y.sum()), 1),
        "benign_fpr": max((r for r, g in zip(rates, benign, strict=True) if g.any()), default=0.0),
        # how far the worst source is from its own cap (≤ 1 meets every cap)
        "benign_fpr_over_cap": max(
            (_over(rate, cap) for rate, cap in zip(rates, caps, strict=True)), default=0.0
        ),
        "hits": hits,
    }


def benign_groups(examples: Sequence[Example], min_rows: int) -> list[np.ndarray]:
    """One mask per benign source with ``min_rows`` rows or more; smaller ones pooled.
    Clauses count with the texts they were cut from (:func:`root_source`)."""
    return [mask for _, mask in named_benign_groups(examples, min_rows)]


def named_benign_groups(
    examples: Sequence[Example], min_rows: int
) -> list[tuple[str | None, np.ndarray]]:
    """:func:`benign_groups` with each group's source name (``None`` for the pool)."""
    sources = np.array([root_source(e.source) for e in examples])
    benign = np.array([not e.labels for e in examples])
    counts = Counter(sources[benign])
    groups: list[tuple[str | None, np.ndarray]] = [
        (str(s), benign & (sources == s)) for s, n in sorted(counts.items()) if n >= min_rows
    ]
    pool = benign & ~np.isin(sources, [s for s, n in counts.items() if n >= min_rows])
    if pool.sum() >= min_rows or (pool.any() and not groups):
        groups.append((None, pool))
    return groups


def choose_threshold(
    probs: np.ndarray,
    y: np.ndarray,
    benign: Sequence[np.ndarray],
    *,
    floor: float,
    precision: float,
    benign_fpr: float | Sequence[float],
    min_hits: int,
) -> tuple[float, dict[str, float] | None]:
    """The lowest grid threshold ≥ ``floor`` meeting the precision target and keeping the
    false-positive rate of each ``benign`` group (masks) within ``benign_fpr`` — one cap
    for all, or one per group (lowest: most recall for the promised precision);
    ``DISABLED`` when none does."""
    caps = [benign_fpr] * len(benign) if isinstance(benign_fpr, float | int) else benign_fpr
    for t in GRID:
        if t < floor:
            continue
        stats = _at(probs, y, benign, t, caps)
        if stats["hits"] < min_hits:
            break  # higher thresholds only flag fewer
        if stats["precision"] >= precision and stats["benign_fpr_over_cap"] <= 1.0:
            return t, stats
    return DISABLED, None


@dataclass
class CategoryFit:
    category: str
    positives: int
    candidates_f1: dict[str, float]
    chosen: str
    head: Any
    calibrator: LogisticRegression
    thresholds: Thresholds | None
    at_review: dict[str, float] | None
    at_block: dict[str, float] | None
    #: Calibrated out-of-fold scores of the training rows (for thresholds chosen later).
    probs: np.ndarray | None = None


def context_threshold(
    probs: np.ndarray, y: np.ndarray, labelled: np.ndarray, options: TrainOptions
) -> tuple[float, dict[str, float] | None]:
    """Where the context head's score means "warns against, reports on or condemns":
    the lowest grid threshold at which its out-of-fold precision reaches
    ``options.context_precision`` and at most ``options.context_labelled_rate`` of the
    labelled (prohibited) training rows score as high — a promotion read as a warning
    loses the wordlists' evidence, so that share is what the signal may cost in recall."""
    for t in GRID:
        flagged = probs >= t
        hits = int((flagged & y).sum())
        if hits < options.min_hits:
            break
        precision = hits / max(int(flagged.sum()), 1)
        labelled_rate = int((flagged & labelled).sum()) / max(int(labelled.sum()), 1)
        if precision >= options.context_precision and (
            labelled_rate <= options.context_labelled_rate
        ):
            return t, {
                "threshold": t,
                "precision": precision,
                "recall": hits / max(int(y.sum()), 1),
                "labelled_rate": labelled_rate,
                "hits": hits,
            }
    return DISABLED, None


def fit_category(
    category: str,
    X: Any,
    y: np.ndarray,
    benign: Sequence[np.ndarray],
    options: TrainOptions,
    names: Sequence[str | None] = (),
) -> CategoryFit:
    """Choose, fit and calibrate one head; ``names`` (of the ``benign`` groups) select the
    per-source review caps of ``options.review_benign_fpr_by_source``."""
    positives = int(y.sum())
    folds = StratifiedKFold(
        min(options.folds, positives, len(y) - positives), shuffle=True, random_state=options.seed
    )
    oof: dict[str, np.ndarray] = {}
    for name, model in candidates(options.seed).items():
        oof[name] = cross_val_predict(clone(model), X, y, cv=folds, method="decision_function")
    f1 = {name: round(_best_f1(y, scores), 4) for name, scores in oof.items()}
    chosen = max(f1, key=lambda name: f1[name])  # ties: the first listed
    head = clone(candidates(options.seed)[chosen]).fit(X, y)
    # Platt scaling on out-of-fold scores, as CalibratedClassifierCV(ensemble=False) does,
    # keeping those scores to choose thresholds without touching the held-out split.
    calibrator = LogisticRegression(C=100.0).fit(oof[chosen].reshape(-1, 1), y)
    probs = calibrator.predict_proba(oof[chosen].reshape(-1, 1))[:, 1]
    thresholds = at_review = at_block = None
    if category not in (NONE, CONTEXT):
        by_source = dict(options.review_benign_fpr_by_source)
        review_caps = [
            by_source.get(name, options.review_benign_fpr) if name else options.review_benign_fpr
            for name in (names or [None] * len(benign))
        ]
        review, at_review = choose_threshold(
            probs, y, benign, floor=0.5, precision=options.review_precision,
            benign_fpr=review_caps, min_hits=options.min_hits,
        )  # fmt: skip
        block, at_block = choose_threshold(
            probs, y, benign, floor=max(review, 0.9), precision=options.block_precision,
            benign_fpr=options.block_benign_fpr, min_hits=options.min_hits,
        )  # fmt: skip
        thresholds = Thresholds(review, block)
    return CategoryFit(
        category, positives, f1, chosen, head, calibrator, thresholds, at_review, at_block, probs
    )
