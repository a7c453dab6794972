"""Training end to end: a tiny corpus is separated, the card records the figures, and two
runs on the same data give the same model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from screening.engine.classify import MANIFEST, Classifier
from screening.engine.tokenize import Tokenizer
from screening.training.train import train
from tests.fixtures.training import BENIGN, DRUGS, GAMBLING, write_corpus


def test_training_separates_the_fixture(model_dir: Path, classifier: Classifier) -> None:
    assert classifier.version == "fixture-1"
    assert set(classifier.categories) == {"gambling", "drugs", "none"}
    scores = classifier.predict_batch(
        ["六合彩内幕包赢带你飞", "K粉现货同城可送", "周末爬山好的谢谢"]
    )
    assert scores[0]["gambling"] > 0.5 > scores[0]["drugs"]
    assert scores[1]["drugs"] > 0.5 > scores[1]["gambling"]
    assert scores[2]["gambling"] < 0.5 and scores[2]["drugs"] < 0.5 and scores[2]["none"] > 0.5
    card = json.loads((model_dir / "card.json").read_text("utf-8"))
    for category in ("gambling", "drugs"):
        assert card["heldout"]["per_category"][category]["f1"] >= 0.8
        assert (
            card["categories"][category]["chosen"]
            in card["categories"][category]["candidates_oof_best_f1"]
        )
    assert card["untrained"]["porn"].startswith("only 0")
    assert card["heldout"]["benign"]["false_positive_rate"] == 0
    manifest = json.loads((model_dir / MANIFEST).read_text("utf-8"))
    assert set(manifest["thresholds"]) == {"gambling", "drugs"}  # none never decides
    assert "## Thresholds" in (model_dir / "MODEL.md").read_text("utf-8")


def test_training_is_reproducible(model_dir: Path, tokenizer: Tokenizer, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    train([corpus], tmp_path / "again", tokenizer=tokenizer)
    again = Classifier.load(tmp_path / "again", tokenizer)
    first = Classifier.load(model_dir, tokenizer)
    texts = GAMBLING + DRUGS + BENIGN
    assert np.array_equal(first.scores(texts), again.scores(texts))
    assert first.thresholds == again.thresholds
