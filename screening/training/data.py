"""What training fits on: the labelled examples made fit for an honest measurement.

Steps 1–2 of :mod:`screening.training.train`: messages whose *normalised* text repeats are
merged (a copy in both the training and the held-out split would flatter the figures),
a stratified held-out split is set aside, and two kinds of benign examples are derived
from the training part only (never from held-out rows):

- clauses of benign training texts — chat messages are short, and short texts are where a
  linear n-gram model is most overconfident;
- labelled training texts quoted inside a *context frame* (``--frames``: a warning, a
  report to the group owner, a debunk, a court report: "群里有人发“{}”，已经截图举报了").
  People quote scams, ads, rumours and insults to warn against them; without such
  examples the model learns that the quoted words alone are the offence, and flags the
  police notice that quotes a scam script. Framed examples teach it that the frame, not
  only the quoted content, decides.

Deterministic for a given seed.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from screening.engine.classify import NONE
from screening.engine.features import Featurizer
from screening.engine.text_files import data_error, utf8_lines
from screening.engine.verdict import CATEGORIES
from screening.errors import ModelError
from screening.evaluation.evaluate import Example
from screening.training.options import TrainOptions

__all__ = [
    "CLAUSES",
    "FRAMED",
    "Frame",
    "benign_clauses",
    "dedupe",
    "framed_examples",
    "read_frames",
    "read_terms",
    "root_source",
    "split",
]

#: Suffix of the source of clauses cut from benign texts (``<source>-clauses``).
CLAUSES = "-clauses"
#: Source of the benign examples made by quoting labelled texts in context frames.
FRAMED = "context-frames"
#: A quoted text longer than this makes an implausible quotation: those are not framed.
_MAX_QUOTED = 60
_TRAILING = re.compile(r"[\s。！？!?，,；;：:…~～、.]+$")


def root_source(source: str) -> str:
    """The source a derived example was cut from: a clause's false alarms count against
    the text it came from, not as a small source of its own whose rate is noise."""
    return source.removesuffix(CLAUSES)


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
            clauses += [Example(part, (), f"{example.source}{CLAUSES}") for part in parts]
    order = np.random.default_rng(options.seed).permutation(len(clauses))
    return [clauses[i] for i in order[: options.benign_clauses]]


@dataclass(frozen=True, slots=True)
class Frame:
    """A benign sentence with one ``{}`` for a quoted text of one of ``categories``."""

    template: str
    categories: tuple[str, ...]


def read_frames(path: str | Path) -> list[Frame]:
    """Context frames from JSONL ``{"frame": "…“{}”…", "categories": [...]}``."""
    frames = []
    for number, line in utf8_lines(path, data_error):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            template, categories = record["frame"], tuple(record["categories"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}:{number}: not a frame object: {exc}") from None
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ModelError(f"{path}:{number}: a frame needs exactly one {{}}")
        unknown = set(categories) - set(CATEGORIES)
        if unknown or not categories:
            raise ModelError(f"{path}:{number}: categories {sorted(unknown) or '[]'}")
        frames.append(Frame(template, categories))
    return frames


def read_terms(path: str | Path) -> list[str]:
    """Context terms: one a line; blank lines and ``#`` comments skipped."""
    lines = utf8_lines(path, data_error)
    return [t for _, line in lines if (t := line.split("#", 1)[0].strip())]


def framed_examples(
    examples: Sequence[Example], frames: Sequence[Frame], options: TrainOptions
) -> list[Example]:
    """Up to ``options.context_frames`` labelled texts of ``examples`` (the training part)
    quoted in a frame naming one of their categories, as benign examples of ``FRAMED``."""
    if not frames or options.context_frames <= 0:
        return []
    rng = np.random.default_rng(options.seed)
    quotable: dict[str, list[str]] = {}
    for example in examples:
        text = _TRAILING.sub("", example.text.strip())
        if 4 <= len(text) <= _MAX_QUOTED:
            for label in example.labels:
                quotable.setdefault(label, []).append(text)
    usable = [f for f in frames if any(quotable.get(c) for c in f.categories)]
    out: list[Example] = []
    seen: set[str] = set()
    for _ in range(options.context_frames * 3):  # duplicates are skipped, so try more
        if len(out) >= options.context_frames or not usable:
            break
        frame = usable[rng.integers(len(usable))]
        pool = [t for c in frame.categories for t in quotable.get(c, ())]
        text = frame.template.replace("{}", pool[rng.integers(len(pool))])
        if text not in seen:
            seen.add(text)
            out.append(Example(text, (), FRAMED))
    return out


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
