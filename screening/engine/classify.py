"""The trained classifier: per-category scores and safe model files.

Wordlists catch what an analyst thought of; paraphrase and fresh slang slip past them.
The model scores every message for every category from the same normalised text the
matcher sees: jieba words plus character 1–3-grams, digits folded to ``0``, tf-idf
weighted (:mod:`screening.engine.features`), one linear head per category (one-vs-rest,
since a gambling ad with a WeChat id is two things at once), each Platt-calibrated so a
score reads as a probability and thresholds mean the same across categories.

Scoring is one sparse matrix product for a whole batch; per-message cost is dominated by
segmentation, so callers batch (``predict_batch``). A model directory holds:

- ``manifest.json`` — version, categories, thresholds, feature spec, and the SHA-256 of
  every other file. Nothing else is read until those digests match: a tampered or mixed-up
  file is refused with :class:`ModelError`, never half-loaded.
- ``features.json`` — the vocabulary (plain JSON; skops would store a 60k-entry dict as
  60k nodes and take minutes).
- ``model.skops`` — tf-idf weights, heads and calibrators in skops format, which rebuilds
  only known scikit-learn/numpy types and never unpickles.

Scoring reads five arrays of those; with a cache directory they are kept as a derived,
validated ``.npz`` (:mod:`screening.engine.weights`), sparing later loads scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from screening.engine.config import Thresholds, TransformsConfig
from screening.engine.feature_index import FeatureIndex
from screening.engine.features import FeatureSpec, Featurizer, tfidf
from screening.engine.tokenize import Tokenizer
from screening.engine.weights import Weights, read_weights, weights_file, write_weights
from screening.errors import ModelError

if TYPE_CHECKING:  # scikit-learn and skops only where a model is trained or read from skops
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

__all__ = [
    "FORMAT",
    "MANIFEST",
    "NONE",
    "VOCABULARY",
    "WEIGHTS",
    "Classifier",
    "ModelParts",
    "save_model",
]

FORMAT = 1
MANIFEST, VOCABULARY, WEIGHTS = "manifest.json", "features.json", "model.skops"
#: The extra one-vs-rest head: "none of the categories applies" (reported, never decides).
#: A model may also have a ``context`` head (:data:`screening.engine.context.CONTEXT`).
NONE = "none"


@dataclass(frozen=True)
class ModelParts:
    """The fitted pieces training produces and ``model.skops`` stores."""

    tfidf: TfidfTransformer  # fitted with sublinear_tf=True; only its idf_ is used
    heads: dict[str, Any]  # category → fitted linear estimator (coef_, intercept_)
    calibrators: dict[str, LogisticRegression]  # category → Platt scaling of head scores


def _read_parts(path: Path, manifest: Mapping[str, Any]) -> ModelParts:
    import skops.io as sio  # ~1.5 s with scikit-learn: only when the cache cannot serve

    # trusted=None: only the types skops trusts by default (scikit-learn, numpy).
    raw = sio.load(path / WEIGHTS, trusted=None)
    parts = ModelParts(raw["tfidf"], raw["heads"], raw["calibrators"])
    if list(parts.heads) != manifest["categories"] or set(parts.calibrators) != set(parts.heads):
        raise ModelError(f"model {path}: categories differ from the manifest")
    return parts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    directory: str | Path,
    *,
    version: str,
    parts: ModelParts,
    vocabulary: Sequence[str],
    spec: FeatureSpec,
    transforms: TransformsConfig,
    thresholds: Mapping[str, Thresholds],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a model directory; the manifest is written last, pinning the others' digests."""
    import sklearn
    import skops.io as sio

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / VOCABULARY).write_text(json.dumps(list(vocabulary), ensure_ascii=False), "utf-8")
    sio.dump(
        {"tfidf": parts.tfidf, "heads": parts.heads, "calibrators": parts.calibrators},
        out / WEIGHTS,
        compression=zipfile.ZIP_DEFLATED,
        compresslevel=9,
    )
    manifest = {
        "format": FORMAT,
        "version": version,
        "categories": list(parts.heads),
        "thresholds": {c: asdict(t) for c, t in thresholds.items()},
        "features": asdict(spec),
        "transforms": asdict(transforms),
        "scikit_learn": sklearn.__version__,
        "files": {name: _sha256(out / name) for name in (VOCABULARY, WEIGHTS)},
        **(extra or {}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return manifest


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model manifest in {directory}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{directory / MANIFEST}: not a format-{FORMAT} model manifest")
    installed = version("scikit-learn")  # without importing it (~1 s)
    if manifest.get("scikit_learn") != installed:
        raise ModelError(
            f"model {directory} was trained with scikit-learn {manifest.get('scikit_learn')}, "
            f"this is {installed}: retrain it with `screening train`"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {VOCABULARY, WEIGHTS}:
        raise ModelError(f"{directory / MANIFEST}: must pin exactly {VOCABULARY} and {WEIGHTS}")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ModelError(f"model file {path} is missing")
        if _sha256(path) != expected:
            raise ModelError(
                f"model file {path} does not match the SHA-256 pinned in its manifest: "
                "refusing a tampered or mismatched model"
            )
    return manifest


class Classifier:
    """Per-category calibrated scores for batches of messages; build with :meth:`load`."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        vocabulary: Sequence[str],
        weights: Weights,
        tokenizer: Tokenizer,
    ):
        self.version: str = manifest["version"]
        self.manifest = dict(manifest)
        self.categories: tuple[str, ...] = tuple(manifest["categories"])
        self.thresholds = {c: Thresholds(**t) for c, t in manifest["thresholds"].items()}
        spec = FeatureSpec(**{**manifest["features"], "char_ngrams": tuple(
            manifest["features"]["char_ngrams"])})  # fmt: skip
        self.featurizer = Featurizer(spec, TransformsConfig(**manifest["transforms"]), tokenizer)
        self.vocabulary = list(vocabulary)
        self._index = {feature: i for i, feature in enumerate(self.vocabulary)}
        self._features = FeatureIndex(self.vocabulary, spec.char_ngrams, spec.words)
        self._idf, self._weights, self._bias, self._slope, self._offset = weights
        if not (self._weights.shape[0] == len(self._idf) == len(self.vocabulary)):
            raise ModelError(f"model {self.version}: weights do not fit its vocabulary")
        if not (self._weights.shape[1] == len(self._bias) == len(self._slope)
                == len(self._offset) == len(self.categories)):  # fmt: skip
            raise ModelError(f"model {self.version}: weights do not fit its categories")
        #: Texts up to this many model characters need more than one word to score high
        #: (0: off, as in models from before the rule).
        self.short_text = int(manifest.get("short_text", 0))
        #: The context head's threshold (None: the model has no context head).
        context = manifest.get("context_threshold")
        self.context_threshold = float(context) if context is not None else None
        #: Words that mark a warning, report or condemnation (:mod:`screening.engine.context`).
        self.context_terms: tuple[str, ...] = tuple(manifest.get("context_terms", ()))
        self._deciding = np.array([c in self.thresholds for c in self.categories])

    @classmethod
    def load(
        cls, directory: str | Path, tokenizer: Tokenizer | None = None, cache: Path | None = None
    ) -> Classifier:
        """Load a model directory after checking every file against the manifest; with a
        ``cache`` directory, read the weights from (or leave them in) the derived cache."""
        path = Path(directory)
        manifest = _read_manifest(path)
        try:
            vocabulary = json.loads((path / VOCABULARY).read_text("utf-8"))
            cached = weights_file(cache, manifest) if cache else None
            weights = read_weights(cached, manifest, len(vocabulary)) if cached else None
            if weights is None:
                weights = Weights.of(_read_parts(path, manifest), manifest["categories"])
                if cached is not None:
                    write_weights(cached, manifest, weights)
            return cls(manifest, vocabulary, weights, tokenizer or Tokenizer())
        except ModelError:
            raise
        except Exception as exc:  # skops refuses untrusted types; anything else is corrupt
            raise ModelError(f"cannot load model {path}: {type(exc).__name__}: {exc}") from exc

    def _model_texts(self, texts: Sequence[str], compacts: Sequence[str] | None) -> list[str]:
        featurizer = self.featurizer
        if compacts is not None:
            return [featurizer.model_text(c) for c in compacts]
        return [featurizer.compact(t) for t in texts]

    def _matrix(self, model_texts: Sequence[str]) -> sp.csr_matrix:
        spec = self.featurizer.spec
        counts = self._features.counts(model_texts, self.featurizer.tokenizer)
        return tfidf(counts, self._idf, spec.norm, spec.capped_at)

    def _probabilities(self, matrix: sp.csr_matrix) -> np.ndarray:
        margins = np.asarray(matrix @ self._weights) + self._bias
        return expit(margins * self._slope + self._offset)

    def vectorize(
        self, texts: Sequence[str], compacts: Sequence[str] | None = None
    ) -> sp.csr_matrix:
        """tf-idf rows for ``texts``; ``compacts``, when given, are their compact forms
        already normalised with the model's transforms (the engine passes its own)."""
        return self._matrix(self._model_texts(texts, compacts))

    def scores(self, texts: Sequence[str], compacts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(texts), len(categories))``.

        A text of at most ``short_text`` characters scores, for each deciding category,
        the lowest of its own score and its scores with one word left out: a few
        characters carry one or two words, and a single word — a register word such as
        您好 or 请查收, or one slang term — is the wordlists' job, not enough for a
        model-only flag. ``none`` and ``context`` keep their scores."""
        if not texts:
            return np.zeros((0, len(self.categories)))
        model_texts = self._model_texts(texts, compacts)
        probabilities = self._probabilities(self._matrix(model_texts))
        if self.short_text:
            self._without_one_word(model_texts, probabilities)
        return probabilities

    def _without_one_word(self, model_texts: Sequence[str], probabilities: np.ndarray) -> None:
        owners: list[int] = []
        variants: list[str] = []
        for row, text in enumerate(model_texts):
            if 0 < len(text) <= self.short_text:
                words = [w for w in self.featurizer.tokenizer.cut(text) if w.strip()]
                for k in range(len(words)):
                    owners.append(row)
                    variants.append("".join(words[:k] + words[k + 1 :]))
        if not variants:
            return
        reduced = self._probabilities(self._matrix(variants))
        keep = self._deciding
        # Each owner's lowest score over its variants, in one unbuffered pass.
        deciding = probabilities[:, keep]
        np.minimum.at(deciding, np.array(owners), reduced[:, keep])
        probabilities[:, keep] = deciding

    def predict_batch(
        self, texts: Sequence[str], compacts: Sequence[str] | None = None
    ) -> list[dict[str, float]]:
        """``{category: probability}`` per text, in order; one matrix product per call."""
        # tolist(): the whole matrix to Python floats in one call (the same values as
        # float() of each element, ~2 µs a message less).
        categories = self.categories
        return [
            dict(zip(categories, row, strict=True))
            for row in self.scores(texts, compacts).tolist()
        ]

    def contributions(self, text: str, top: int = 5) -> dict[str, list[tuple[str, float]]]:
        """Per category, the message's features that push its score up most (tf-idf value
        × weight, before calibration): what an analyst needs to see why the model fired."""
        row = self.vectorize([text]).tocoo()
        out: dict[str, list[tuple[str, float]]] = {}
        for k, category in enumerate(self.categories):
            pushes = row.data * self._weights[row.col, k]
            order = np.argsort(-pushes, kind="stable")[:top]
            out[category] = [
                (self.vocabulary[row.col[i]], round(float(pushes[i]), 4))
                for i in order
                if pushes[i] > 0
            ]
        return out
