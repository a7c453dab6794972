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
from screening.evaluation.evaluate import Example
from screening.training.options import TrainOptions

__all__ = [
    "DISABLED",
    "GRID",
    "CategoryFit",
    "benign_groups",
    "candidates",
    "choose_threshold",
    "fit_category",
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
        "sgd-modified-huber": SGDClassifier(loss="modified_huber", alpha=1e-5, random_state=seed),
    }


def _best_f1(y: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(y, scores)
    return float(np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12)))


def _at(
    probs: np.ndarray, y: np.ndarray, benign: Sequence[np.ndarray], t: float
) -> dict[str, float]:
    flagged = probs >= t
    hits = int((flagged & y).sum())
    return {
        "threshold": t,
        "precision": hits / max(int(flagged.sum()), 1),
        "recall": hits / max(int(y.sum()), 1),
        "benign_fpr": max(
            (int((flagged & group).sum()) / int(group.sum()) for group in benign if group.any()),
            default=0.0,
        ),
        "hits": hits,
    }


def benign_groups(examples: Sequence[Example], min_rows: int) -> list[np.ndarray]:
    """One mask per benign source with ``min_rows`` rows or more; smaller ones pooled."""
    sources = np.array([e.source for e in examples])
    benign = np.array([not e.labels for e in examples])
    counts = Counter(sources[benign])
    groups = [benign & (sources == s) for s, n in sorted(counts.items()) if n >= min_rows]
    pool = benign & ~np.isin(sources, [s for s, n in counts.items() if n >= min_rows])
    if pool.sum() >= min_rows or (pool.any() and not groups):
        groups.append(pool)
    return groups


def choose_threshold(
    probs: np.ndarray,
    y: np.ndarray,
    benign: Sequence[np.ndarray],
    *,
    floor: float,
    precision: float,
    benign_fpr: float,
    min_hits: int,
) -> tuple[float, dict[str, float] | None]:
    """The lowest grid threshold ≥ ``floor`` meeting the precision target and keeping the
    false-positive rate of each ``benign`` group (masks) within ``benign_fpr`` (lowest:
    most recall for the promised precision); ``DISABLED`` when none does."""
    for t in GRID:
        if t < floor:
            continue
        stats = _at(probs, y, benign, t)
        if stats["hits"] < min_hits:
            break  # higher thresholds only flag fewer
        if stats["precision"] >= precision and stats["benign_fpr"] <= benign_fpr:
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


def fit_category(
    category: str, X: Any, y: np.ndarray, benign: Sequence[np.ndarray], options: TrainOptions
) -> CategoryFit:
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
    if category != NONE:
        review, at_review = choose_threshold(
            probs, y, benign, floor=0.5, precision=options.review_precision,
            benign_fpr=options.review_benign_fpr, min_hits=options.min_hits,
        )  # fmt: skip
        block, at_block = choose_threshold(
            probs, y, benign, floor=max(review, 0.9), precision=options.block_precision,
            benign_fpr=options.block_benign_fpr, min_hits=options.min_hits,
        )  # fmt: skip
        thresholds = Thresholds(review, block)
    return CategoryFit(
        category, positives, f1, chosen, head, calibrator, thresholds, at_review, at_block
    )
