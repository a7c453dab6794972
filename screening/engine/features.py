"""How a message becomes model features, identically in training and in serving.

Features come from the same normalised text the matcher sees: jieba words plus character
1–3-grams (so an unseen spelling still shares most of its n-grams with a known one),
digits folded to ``0`` (so ``vx123456`` and ``vx987654`` are one pattern). Training turns
them into a capped vocabulary and sublinear tf-idf rows (:func:`build_vocabulary`,
:func:`count_matrix`, :func:`tfidf`); the classifier (:mod:`screening.engine.classify`) looks
the same features up directly and weighs them with the same :func:`tfidf`, so serving
cannot drift from what the model was fitted on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from screening.engine.config import TransformsConfig
from screening.engine.normalize import Normalizer
from screening.engine.tokenize import Tokenizer

__all__ = ["NORMS", "FeatureSpec", "Featurizer", "build_vocabulary", "count_matrix", "tfidf"]

_DIGITS = str.maketrans("0123456789", "0000000000")
#: Row normalisations :func:`tfidf` knows.
NORMS = ("l2", "capped")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """How text becomes features; stored in the manifest so serving matches training."""

    char_ngrams: tuple[int, ...] = (1, 2, 3)
    words: bool = True
    fold_digits: bool = True
    #: Segmenter of the word features; models from before it was recorded used jieba.
    tokenizer: str = "jieba"
    #: Row normalisation of the tf-idf vector (:func:`tfidf`): ``l2`` (models from before it
    #: was recorded) or ``capped``, under which a head's score stops growing with length
    #: once a text has about ``capped_at`` features (a 25–30 character message).
    norm: str = "l2"
    capped_at: int = 100

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"feature norm must be one of {', '.join(NORMS)}, not {self.norm!r}")


class Featurizer:
    """Feature strings for one message: ``w:<jieba token>`` and ``c<n>:<n chars>``.

    It owns a :class:`Normalizer` built from the *training* transforms, so a deployment
    that switches a transform off for the wordlists does not silently shift the model's
    inputs. The engine's tokenizer is shared when it is the backend the model was trained
    with (its dictionary is expensive); otherwise the model gets its own, because jieba
    and rjieba cut ~1 % of messages differently and serving must segment as training did.
    """

    def __init__(self, spec: FeatureSpec, transforms: TransformsConfig, tokenizer: Tokenizer):
        self.spec = spec
        self.normalizer = Normalizer(transforms)
        if tokenizer.backend != spec.tokenizer:
            tokenizer = Tokenizer(spec.tokenizer)
        self.tokenizer = tokenizer

    def compact(self, text: str) -> str:
        """The normalised text features are taken from (digits folded to 0 if configured)."""
        return self.model_text(self.normalizer.normalize(text).compact)

    def model_text(self, compact: str) -> str:
        return compact.translate(_DIGITS) if self.spec.fold_digits else compact

    def features(self, text: str) -> list[str]:
        compact = self.compact(text)
        out = (
            [f"w:{w}" for w in self.tokenizer.cut(compact) if w.strip()] if self.spec.words else []
        )
        for n in self.spec.char_ngrams:
            out.extend(f"c{n}:{compact[i : i + n]}" for i in range(len(compact) - n + 1))
        return out


def build_vocabulary(docs: Sequence[Sequence[str]], min_df: int, max_features: int) -> list[str]:
    """The ``max_features`` features in most documents (at least ``min_df``), sorted.

    Capping the vocabulary keeps the shipped model a few MB; ties break on the feature
    string so the same data always gives the same vocabulary.
    """
    df = Counter(feature for doc in docs for feature in set(doc))
    kept = sorted((f for f, n in df.items() if n >= min_df), key=lambda f: (-df[f], f))
    return sorted(kept[:max_features])


def count_matrix(docs: Sequence[Sequence[str]], index: Mapping[str, int]) -> sp.csr_matrix:
    """Sparse term counts, one row per document; features outside ``index`` are dropped."""
    indptr, indices, data = [0], [], []
    for doc in docs:
        counts = Counter(index[f] for f in doc if f in index)
        indices.extend(counts)
        data.extend(counts.values())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr)),
        shape=(len(docs), len(index)),
    )


def tfidf(
    counts: sp.csr_matrix, idf: np.ndarray, norm: str = "l2", capped_at: int = 100
) -> sp.csr_matrix:
    """Sublinear tf × idf, rows scaled to unit length — what ``TfidfTransformer(
    sublinear_tf=True)`` computes, done in place on the CSR arrays because the
    transformer's input checks cost ~1 ms per call and dominate single-message scoring.

    Under ``l2`` a linear head's margin grows with the square root of the number of
    features when they lean the same way on average: long benign texts pile up weak
    evidence (ordinary lines joined to 2,000 characters were all flagged as abuse).
    ``capped`` divides by ``max(‖x‖₂, ‖x‖₁ / √capped_at)``: the ``l2`` row of a text up to
    about ``capped_at`` features (the two norms agree there for equal weights), beyond that
    the ``l1`` row scaled to match, whose margin is a weighted *mean* of feature weights —
    joining benign lines gives about their average score, however long the text. ``l1``
    alone was tried and rejected: it makes the shortest texts the most extreme (a four-
    character clause is its one feature's weight), and its out-of-fold precision *fell*
    as the threshold rose.
    """
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    data = (np.log(counts.data) + 1.0) * idf[counts.indices]
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
    if norm == "capped":  # weights are positive: their sum is the l1 norm
        l1 = np.bincount(rows, weights=data, minlength=counts.shape[0])
        norms = np.maximum(norms, l1 / np.sqrt(capped_at))
    data /= norms[rows]
    return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
