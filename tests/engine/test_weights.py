"""The derived cache of a model's weights: used only when it is this model's, rebuilt
from ``model.skops`` otherwise, and never what decides whether a model loads."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from screening.engine import classify
from screening.engine.classify import Classifier
from screening.engine.tokenize import Tokenizer
from screening.engine.weights import read_weights, weights_file, write_weights

TEXTS = ["在线赌场注册就送彩金", "今天天气不错，出去走走", "加我微信看福利视频"]


def _cached(cache: Path) -> list[Path]:
    return sorted(cache.glob("weights-*.npz"))


def _no_skops(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("model.skops read although the cache holds the weights")

    monkeypatch.setattr(classify, "_read_parts", refuse)


def test_a_second_load_reads_the_cache_and_scores_the_same(
    model_dir: Path, tokenizer: Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = Classifier.load(model_dir, tokenizer, cache)
    assert len(_cached(cache)) == 1
    assert (cache.stat().st_mode & 0o777) == 0o700
    _no_skops(monkeypatch)
    second = Classifier.load(model_dir, tokenizer, cache)
    assert np.array_equal(first.scores(TEXTS), second.scores(TEXTS))
    monkeypatch.undo()
    uncached = Classifier.load(model_dir, tokenizer)
    assert np.array_equal(uncached.scores(TEXTS), second.scores(TEXTS))


@pytest.mark.parametrize("damage", ["truncated", "foreign", "reshaped", "not a zip"])
def test_a_cache_file_that_is_not_this_models_is_rebuilt(
    model_dir: Path, tokenizer: Tokenizer, tmp_path: Path, damage: str
) -> None:
    cache = tmp_path / "cache"
    reference = Classifier.load(model_dir, tokenizer, cache).scores(TEXTS)
    (path,) = _cached(cache)
    manifest = classify._read_manifest(model_dir)
    features = len(Classifier.load(model_dir, tokenizer).vocabulary)
    weights = read_weights(path, manifest, features)
    assert weights is not None
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-200])
    elif damage == "foreign":  # another model's manifest: the key inside does not match
        write_weights(path, {**manifest, "version": "other"}, weights)
    elif damage == "reshaped":
        write_weights(path, manifest, weights._replace(bias=np.append(weights.bias, 0.0)))
    else:
        path.write_bytes(b"garbage")
    assert read_weights(path, manifest, features) is None
    rebuilt = Classifier.load(model_dir, tokenizer, cache)
    assert np.array_equal(rebuilt.scores(TEXTS), reference)
    assert read_weights(path, manifest, features) is not None  # written anew


def test_a_changed_model_gets_its_own_cache_file(model_dir: Path) -> None:
    manifest = classify._read_manifest(model_dir)
    changed = {**manifest, "files": {**manifest["files"], "model.skops": "0" * 64}}
    assert weights_file(Path("/c"), manifest) != weights_file(Path("/c"), changed)


def test_an_unwritable_cache_warns_and_the_model_still_loads(
    model_dir: Path, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = Classifier.load(model_dir, tokenizer, blocked / "cache")
    assert loaded.scores(TEXTS).shape == (len(TEXTS), len(loaded.categories))
    assert any("not cached" in str(w.message) for w in caught)
