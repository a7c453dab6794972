"""What training fits on: the labelled examples made fit for an honest measurement.

Steps 1–2 of :mod:`screening.training.train`: messages whose *normalised* text repeats are
merged (a copy in both the training and the held-out split would flatter the figures),
a stratified held-out split is set aside, and clauses of benign training texts are added
as short benign examples — chat messages are short, and short texts are where a linear
n-gram model is most overconfident. Deterministic for a given seed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from screening.engine.classify import NONE
from screening.engine.features import Featurizer
from screening.evaluation.evaluate import Example
from screening.training.options import TrainOptions

__all__ = ["benign_clauses", "dedupe", "split"]


def dedupe(examples: Sequence[Example], featurizer: Featurizer) -> tuple[list[Example], int]:
    """One example per normalised text, labels merged; and how many were dropped."""
    merged: dict[str, Example] = {}
    for example in examples:
        key = featurizer.normalizer.normalize(example.text).compact
        seen = merged.get(key)
        if seen is None:
            merged[key] = example
        elif not set(example.labels) <= set(seen.labels):
            labels = tuple(sorted({*seen.labels, *example.labels}))
            merged[key] = Example(seen.text, labels, seen.source, seen.id)
    return [e for e in merged.values() if e.text.strip()], len(examples) - len(merged)


_CLAUSE_BREAK = re.compile(r"[\s。！？!?，,；;：:…~～、]+")


def benign_clauses(examples: Sequence[Example], options: TrainOptions) -> list[Example]:
    """Clauses of the benign examples, as benign examples of source ``<source>-clauses``."""
    clauses = []
    for example in examples:
        parts = [p for p in _CLAUSE_BREAK.split(example.text) if len(p) >= 4]
        if not example.labels and len(parts) > 1:
            clauses += [Example(part, (), f"{example.source}-clauses") for part in parts]
    order = np.random.default_rng(options.seed).permutation(len(clauses))
    return [clauses[i] for i in order[: options.benign_clauses]]


def split(examples: Sequence[Example], options: TrainOptions) -> tuple[list[int], list[int]]:
    """Stratified by source and label set, so every category and source is in both parts."""
    keys = [f"{e.source}/{'+'.join(e.labels) or NONE}" for e in examples]
    counts = Counter(keys)
    keys = [k if counts[k] >= 2 else "rare" for k in keys]  # stratifying needs 2 per key
    if keys.count("rare") == 1:
        keys[keys.index("rare")] = counts.most_common(1)[0][0]
    test_rows = math.ceil(options.heldout * len(examples))
    stratify = keys if len(set(keys)) <= min(test_rows, len(examples) - test_rows) else None
    train_idx, test_idx = train_test_split(
        list(range(len(examples))),
        test_size=test_rows,
        random_state=options.seed,
        stratify=stratify,
    )
    return sorted(train_idx), sorted(test_idx)
