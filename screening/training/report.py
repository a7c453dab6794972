"""What each head learned, in words: its strongest features, and which of them are register.

A linear head on n-grams learns whatever separates its positives from the rest of the
training mix, and when the positives were written in one voice it learns the voice: the
first fraud head's strongest features were ``w:您``, ``c1:户``, ``c2:您的``, ``c1:请``,
``c1:账`` — the polite register of our templates (您 was in 71 of 305 fraud rows and 2 of
840 benign ones), so bank and courier notices scored 0.99. :func:`top_features` lists each
head's strongest features with the share of each benign source's rows that contain them;
one present in many everyday rows (``options.register_share``) is register, not content,
and is named in the card and by ``screening train`` so a reviewer sees it before shipping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from screening.engine.classify import NONE
from screening.engine.context import CONTEXT
from screening.evaluation.evaluate import Example
from screening.training.data import FRAMED, root_source
from screening.training.options import TrainOptions

__all__ = ["register_warnings", "top_features"]


def top_features(
    parts: Any,
    vocabulary: Sequence[str],
    counts: sp.csr_matrix,
    examples: Sequence[Example],
    options: TrainOptions,
) -> dict[str, dict[str, Any]]:
    """Per head, its ``options.top_features`` strongest features — weight × idf, what one
    occurrence adds before the row is normalised — each with the largest share of a benign
    source's rows containing it, and the ones over ``options.register_share``."""
    idf = np.asarray(parts.tfidf.idf_, dtype=np.float64)
    sources = np.array([root_source(e.source) for e in examples])
    benign = np.array([not e.labels for e in examples])
    # Framed rows quote prohibited texts on purpose: their words are content, not register.
    masks = {
        str(s): benign & (sources == s)
        for s in sorted(set(sources[benign]) - {FRAMED})
        if int((benign & (sources == s)).sum()) >= options.benign_group
    }
    present = counts.tocsc()
    out: dict[str, dict[str, Any]] = {}
    for head_name, head in parts.heads.items():
        strength = np.ravel(head.coef_) * idf
        order = np.argsort(-strength, kind="stable")[: options.top_features]
        features = []
        for index in order:
            column = present[:, index].toarray().ravel() > 0
            share, where = max(
                ((float(column[mask].mean()), name) for name, mask in masks.items()),
                default=(0.0, None),
            )
            features.append(
                {
                    "feature": vocabulary[index],
                    "strength": round(float(strength[index]), 3),
                    "benign_share": round(share, 4),
                    "benign_source": where,
                }
            )
        # none and context are *about* everyday and warning text: their top features are
        # meant to be common there.
        register = (
            []
            if head_name in (NONE, CONTEXT)
            else [f["feature"] for f in features if f["benign_share"] >= options.register_share]
        )
        out[head_name] = {"features": features, "register": register}
    return out


def register_warnings(report: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per head whose top features include register words, for the CLI."""
    lines = []
    for head, entry in report.items():
        for name in entry["register"]:
            found = next(f for f in entry["features"] if f["feature"] == name)
            lines.append(
                f"register among {head}'s top features: {name} (in "
                f"{found['benign_share']:.0%} of {found['benign_source']} rows)"
            )
    return lines
