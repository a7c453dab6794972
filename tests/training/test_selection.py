"""Threshold choice and benign pooling: the targets hold on hand-checked scores."""

from __future__ import annotations

import numpy as np

from screening.evaluation.evaluate import Example
from screening.training.options import TrainOptions
from screening.training.selection import (
    GRID,
    benign_groups,
    choose_threshold,
    named_benign_groups,
)


def test_threshold_choice_meets_targets() -> None:
    probs = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.55, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    benign = [~y]
    t, stats = choose_threshold(
        probs, y, benign, floor=0.5, precision=0.8, benign_fpr=0.2, min_hits=3
    )
    # At 0.55 precision is 5/7; at 0.56-0.60 it is 5/6 ≥ 0.8 with 1 of 5 benign flagged.
    assert t == 0.56 and stats is not None and stats["hits"] == 5
    t, stats = choose_threshold(
        probs, y, benign, floor=0.5, precision=1.0, benign_fpr=0.0, min_hits=3
    )
    assert t == 0.71 and stats["recall"] == 0.8
    assert choose_threshold(probs, y, benign, floor=0.5, precision=1.0, benign_fpr=0, min_hits=9)[
        0
    ] > max(GRID)
    assert TrainOptions().review_precision < TrainOptions().block_precision


def test_benign_groups_pool_small_sources() -> None:
    rows = [Example("x", (), "big")] * 60 + [Example("x", (), "tiny")] * 5
    rows += [Example("x", ("porn",), "big")] * 3
    groups = benign_groups(rows, 50)
    assert [int(g.sum()) for g in groups] == [60]  # the 5 tiny ones are too few alone
    assert [int(g.sum()) for g in benign_groups(rows[60:], 50)] == [5]  # unless all are tiny
    assert int(groups[0][-1]) == 0  # labelled rows are never benign


def test_each_benign_source_has_its_own_cap() -> None:
    """A hard-negative source may be held to a looser cap than everyday text: at 0.55 one
    of the 5 "hard" benign rows is flagged (20 %), none of the 5 "everyday" ones."""
    probs = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    hard = np.zeros(14, dtype=bool)
    hard[4:9] = True
    everyday = ~y & ~hard
    common = dict(floor=0.5, precision=0.8, min_hits=3)
    assert choose_threshold(probs, y, [hard, everyday], benign_fpr=0.0, **common)[0] == 0.61
    t, stats = choose_threshold(probs, y, [hard, everyday], benign_fpr=[0.2, 0.0], **common)
    assert t == 0.5 and stats is not None and stats["benign_fpr"] == 0.2


def test_clauses_count_against_the_source_they_were_cut_from() -> None:
    rows = [Example("x", (), "news")] * 40 + [Example("x", (), "news-clauses")] * 40
    named = named_benign_groups(rows, 50)
    assert [(name, int(mask.sum())) for name, mask in named] == [("news", 80)]
