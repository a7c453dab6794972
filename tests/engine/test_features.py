"""Features: serving weighs them exactly as training fitted them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from screening.engine.features import FeatureSpec, tfidf


def test_tfidf_matches_scikit_learn() -> None:
    """Serving weighs features by hand (for speed); it must equal what training fitted."""
    counts = sp.random(40, 25, density=0.2, random_state=1, format="csr")
    counts.data = np.ceil(counts.data * 5)
    counts = sp.vstack([counts, sp.csr_matrix((1, 25))]).tocsr()  # an empty message too
    fitted = TfidfTransformer(sublinear_tf=True).fit(counts)
    assert np.allclose(tfidf(counts, fitted.idf_).toarray(), fitted.transform(counts).toarray())


def test_capped_rows_are_l2_rows_up_to_the_cap() -> None:
    """``capped`` changes nothing for texts of up to ``capped_at`` equal-weight features:
    the shipped heads' ranking of ordinary messages is the l2 ranking."""
    counts = sp.random(40, 500, density=0.04, random_state=2, format="csr")  # ~20 per row
    counts.data = np.ceil(counts.data * 3)
    idf = TfidfTransformer(sublinear_tf=True).fit(counts).idf_
    assert np.allclose(tfidf(counts, idf, "capped", 100).toarray(), tfidf(counts, idf).toarray())


def test_a_capped_margin_stops_growing_with_length() -> None:
    """Benign lines joined into one long text: each line's features lean slightly towards a
    head (weight 0.1 each); under l2 the joined text's margin grows with the square root of
    its length (a 2,000-character message of ordinary chat was flagged as abuse), under
    ``capped`` it stays where a 100-feature text would be."""
    weights = np.full(4000, 0.1)
    idf = np.ones(4000)
    margins = {}
    for norm in ("l2", "capped"):
        for n in (25, 100, 400, 1600, 4000):
            row = sp.csr_matrix((np.ones(n), np.arange(n), [0, n]), shape=(1, 4000))
            margins[norm, n] = float((tfidf(row, idf, norm, 100) @ weights)[0])
    assert margins["l2", 4000] > 6 * margins["l2", 100]
    assert margins["capped", 25] == pytest.approx(margins["l2", 25])
    for n in (400, 1600, 4000):
        assert margins["capped", n] == pytest.approx(margins["capped", 100])


def test_unknown_norms_are_refused() -> None:
    with pytest.raises(ValueError, match="norm"):
        FeatureSpec(norm="l3")
