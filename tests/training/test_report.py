"""The register check: a head whose strongest feature is a politeness word common in
everyday benign text is named, so the 您-learning fraud head is caught before shipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import SGDClassifier

from screening.cli.main import main
from screening.engine.classify import ModelParts
from screening.evaluation.evaluate import Example
from screening.training.options import TrainOptions
from screening.training.report import register_warnings, top_features
from tests.fixtures.training import write_corpus

VOCABULARY = ["w:您", "w:刷单", "w:返利", "w:天气"]


def _parts(coef: list[float], counts: sp.csr_matrix) -> ModelParts:
    head = SGDClassifier().fit(counts, np.arange(counts.shape[0]) % 2)
    head.coef_ = np.array([coef])
    return ModelParts(TfidfTransformer().fit(counts), {"fraud": head}, {})


def test_a_politeness_word_at_the_top_is_named_as_register() -> None:
    # rows: 2 fraud (您 刷单 返利), 60 bank notices (您), 60 chat lines (天气)
    rows = [[1, 1, 1, 0]] * 2 + [[1, 0, 0, 0]] * 60 + [[0, 0, 0, 1]] * 60
    counts = sp.csr_matrix(np.array(rows, dtype=np.float32))
    examples = [Example("x", ("fraud",), "seed")] * 2
    examples += [Example("x", (), "notices")] * 60 + [Example("x", (), "chat")] * 60
    options = TrainOptions(top_features=2)
    learned_register = top_features(_parts([3.0, 1.0, 0.5, -1.0], counts), VOCABULARY, counts,
                                    examples, options)  # fmt: skip
    entry = learned_register["fraud"]
    assert [f["feature"] for f in entry["features"]] == ["w:您", "w:刷单"]
    assert entry["features"][0]["benign_source"] == "notices"
    assert entry["features"][0]["benign_share"] == 1.0
    assert entry["register"] == ["w:您"]
    assert register_warnings(learned_register) == [
        "register among fraud's top features: w:您 (in 100% of notices rows)"
    ]
    learned_content = top_features(_parts([0.1, 3.0, 2.0, -1.0], counts), VOCABULARY, counts,
                                   examples, options)  # fmt: skip
    assert learned_content["fraud"]["register"] == []
    assert register_warnings(learned_content) == []


def test_train_prints_the_top_features_of_each_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "m"
    assert main(["train", "--data", str(corpus), "--out", str(out), "--no-wordlists"]) == 0
    printed = capsys.readouterr().out
    for head in ("gambling", "drugs", "none"):
        assert f"top features of {head}: " in printed
    assert "## What each head learned" in (out / "MODEL.md").read_text("utf-8")
