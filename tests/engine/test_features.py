"""Features: serving weighs them exactly as training fitted them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from screening.engine.features import tfidf


def test_tfidf_matches_scikit_learn() -> None:
    """Serving weighs features by hand (for speed); it must equal what training fitted."""
    counts = sp.random(40, 25, density=0.2, random_state=1, format="csr")
    counts.data = np.ceil(counts.data * 5)
    counts = sp.vstack([counts, sp.csr_matrix((1, 25))]).tocsr()  # an empty message too
    fitted = TfidfTransformer(sublinear_tf=True).fit(counts)
    assert np.allclose(tfidf(counts, fitted.idf_).toarray(), fitted.transform(counts).toarray())
