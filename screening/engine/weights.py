"""A model's scoring weights, and their derived copy on disk.

Scoring reads five arrays of a trained model (:class:`Weights`). The model directory
keeps them inside ``model.skops``, and reading that back costs importing scikit-learn
and skops — ~1.5 s of CPU and ~95 MB in every process that loads a model, more than all
the rest of the engine's start-up. So :meth:`Classifier.load
<screening.engine.classify.Classifier.load>`, given a cache directory, keeps the arrays
in a plain ``.npz`` beside nothing else, named after the model manifest (whose digests
pin every model file, and which ``load`` has checked against the files first).

The cache is a derived file, not an input: it is read with pickling refused, and used
only when it says it was made from this exact manifest by this cache format and numpy,
opens without a CRC error, and its arrays have the shapes the vocabulary and categories
call for. Anything else — missing, damaged, stale, foreign — is rebuilt from
``model.skops``. Files are written whole (a temporary file renamed over) in a directory
only its owner can read, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["CACHE_FORMAT", "Weights", "read_weights", "weights_file", "write_weights"]

#: Bumped when what a cache file holds changes; older files are then rebuilt.
CACHE_FORMAT = 1


class Weights(NamedTuple):
    """What scoring reads of a model: a batch's tf-idf rows (``idf``) times ``weights``
    (features × categories) plus ``bias``, calibrated by ``slope`` and ``offset``."""

    idf: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    slope: np.ndarray
    offset: np.ndarray

    @classmethod
    def of(cls, parts: Any, categories: Sequence[str]) -> Weights:
        """The arrays of a fitted :class:`~screening.engine.classify.ModelParts`."""
        heads = [parts.heads[c] for c in categories]
        calibrators = [parts.calibrators[c] for c in categories]
        # One (features × categories) matrix: a batch is scored by a single sparse product.
        return cls(
            np.asarray(parts.tfidf.idf_, dtype=np.float64),
            np.stack([np.ravel(h.coef_) for h in heads], axis=1).astype(np.float64),
            np.array([np.ravel(h.intercept_)[0] for h in heads]),
            np.array([c.coef_[0, 0] for c in calibrators]),
            np.array([c.intercept_[0] for c in calibrators]),
        )


def _key(manifest: Mapping[str, Any]) -> str:
    made_by = {"format": CACHE_FORMAT, "numpy": np.__version__, "manifest": manifest}
    canonical = json.dumps(made_by, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()


def weights_file(cache: Path, manifest: Mapping[str, Any]) -> Path:
    """Where the cached weights of the model with this ``manifest`` live."""
    return cache / f"weights-{_key(manifest)[:32]}.npz"


def read_weights(path: Path, manifest: Mapping[str, Any], features: int) -> Weights | None:
    """The cached weights, or None when there is no usable cache file (rebuild it)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != _key(manifest):
                return None
            weights = Weights(*(np.array(data[name]) for name in Weights._fields))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged or foreign: rebuilt from the model like a missing one
    categories = len(manifest["categories"])
    shapes = [(features,), (features, categories), (categories,), (categories,), (categories,)]
    if [w.shape for w in weights] != shapes or not all(
        np.issubdtype(w.dtype, np.floating) for w in weights
    ):
        return None
    return weights


def write_weights(path: Path, manifest: Mapping[str, Any], weights: Weights) -> None:
    """Leave ``weights`` in the cache for the next load. A cache that cannot be written
    (read-only or full disk) costs the next process its start-up time, not a verdict: it
    is reported as a warning and the model is served all the same."""
    temporary = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as out:
            temporary = Path(out.name)
            np.savez(out, key=np.array(_key(manifest)), **weights._asdict())
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        warnings.warn(f"model weights not cached at {path}: {exc}", RuntimeWarning, stacklevel=2)
