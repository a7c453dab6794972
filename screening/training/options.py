"""The settings of a training run: the targets the procedure in
:mod:`screening.training.train` aims for, recorded in the model card (``options``).

A module of its own because every step of training reads it (data, selection, card) while
only :mod:`~screening.training.train` runs the steps: the steps import the options, never
the procedure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from screening.engine.features import FeatureSpec

__all__ = ["TrainOptions"]


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """The settings of the procedure; the card records them (``options``)."""

    seed: int = 0
    heldout: float = 0.2
    folds: int = 5
    min_df: int = 2
    max_features: int = 60_000
    #: Review: at least 90 % of what the model sends to review is that category, and at
    #: most 0.5 % of any benign source's messages are sent, per category.
    review_precision: float = 0.90
    review_benign_fpr: float = 0.005
    #: Block: at least 98 % precision and ≤ 0.1 % of any benign source; a wrong block is
    #: visible to the whole group, a wrong review only to a moderator.
    block_precision: float = 0.98
    block_benign_fpr: float = 0.001
    #: Benign sources smaller than this are pooled (a rate on 20 messages means little).
    benign_group: int = 50
    #: At most this many clauses (≥ 4 characters) of benign training texts are added.
    benign_clauses: int = 100_000
    #: A precision measured on fewer true hits than this is noise, not evidence.
    min_hits: int = 3
    features: FeatureSpec = field(default_factory=FeatureSpec)
