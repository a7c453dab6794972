"""Serving lookup gives exactly the counts the training path gives, whatever the text."""

from __future__ import annotations

import numpy as np
import pytest

from screening.engine.config import TransformsConfig
from screening.engine.feature_index import FeatureIndex
from screening.engine.features import FeatureSpec, Featurizer, build_vocabulary, count_matrix
from screening.engine.tokenize import Tokenizer

TEXTS = [
    "澳门首家线上赌场首充送彩金",
    "赌场赌场赌场",  # repeated n-grams become counts
    "",  # an empty message is an empty row
    "a",  # shorter than every n
    "𠮷野家的𠮷野家",  # beyond the BMP: still one code point, 21 bits
    "vx000000 加我",
    "今天天气很好",
]


@pytest.mark.parametrize("ngrams", [(1, 2, 3), (2,), (1, 2, 3, 4)])
def test_counts_equal_the_training_path(ngrams: tuple[int, ...]) -> None:
    tokenizer = Tokenizer("rjieba")
    featurizer = Featurizer(FeatureSpec(char_ngrams=ngrams, tokenizer="rjieba"), TransformsConfig(), tokenizer)
    docs = [featurizer.features(t) for t in TEXTS]
    vocabulary = build_vocabulary(docs, min_df=1, max_features=10_000)
    index = {feature: i for i, feature in enumerate(vocabulary)}
    expected = count_matrix(docs, index).toarray()
    lookup = FeatureIndex(vocabulary, ngrams, words=True)
    got = lookup.counts([featurizer.compact(t) for t in TEXTS], tokenizer).toarray()
    assert np.array_equal(got, expected)
    assert got[1].sum() > 0 and got[2].sum() == 0


def test_ngrams_never_span_two_messages() -> None:
    lookup = FeatureIndex(["c2:场赌"], (2,), words=False)
    assert lookup.counts(["赌场", "赌钱"], Tokenizer("rjieba")).sum() == 0
    assert lookup.counts(["赌场赌钱"], Tokenizer("rjieba")).sum() == 1
