"""Training end to end: a tiny corpus is separated, the card records the figures, and two
runs on the same data give the same model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from screening.engine.classify import MANIFEST, Classifier
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.training.options import TrainOptions
from screening.training.train import train
from tests.fixtures.engine import FIXTURE_WORDLIST
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


def test_a_warning_quoting_a_promotion_loses_its_wordlist_block(tmp_path: Path) -> None:
    """End to end: warnings in the training data and framed examples give the model a
    context head; an engine with that model lowers a quoted block term to review in a
    warning, and keeps blocking the promotion itself."""
    rows = [(t, ["gambling"], "ads") for t in GAMBLING]
    rows += [(t, [], "chat") for t in BENIGN]
    rows += [
        (f"{who}提醒：{what}都是{kind}，{advice}", [], "warnings")
        for who in ("警方", "社区", "学校", "银行", "派出所")
        for what, kind in (("网上百家乐", "赌博骗局"), ("时时彩计划", "网赌套路"))
        for advice in ("切勿参与", "千万别信", "发现请举报")
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t, "labels": labels, "source": s},
                      ensure_ascii=False) + "\n" for t, labels, s in rows), "utf-8")  # fmt: skip
    frames = tmp_path / "frames.jsonl"
    frames.write_text('{"frame": "群里有人发“{}”，已经举报了", "categories": ["gambling"]}\n', "utf-8")
    terms = tmp_path / "terms.txt"
    terms.write_text("# context terms\n举报\n骗局\n", "utf-8")
    card = train([corpus], tmp_path / "m", frames=frames, context_terms=terms,
                 options=TrainOptions(context_frames=20))  # fmt: skip
    assert card["context"]["threshold"] is not None and card["data"]["framed"] == 20
    classifier = Classifier.load(tmp_path / "m")
    assert "context" in classifier.categories and "context" not in classifier.thresholds
    assert classifier.context_terms == ("举报", "骗局")
    engine = Engine(load_config(), Wordlist.from_files(FIXTURE_WORDLIST), classifier=classifier)
    warning = engine.screen("派出所提醒：百家乐是赌博骗局，切勿参与")
    # 百家乐 and 赌博 are block terms of the fixture list: kept as evidence, not deciding,
    # since the model reads a warning and sees no gambling (screening/engine/context.py)
    assert {h.term for h in warning.hits} == {"百家乐", "赌博"} and warning.decision == "pass"
    assert engine.screen("网上百家乐稳赚不赔私聊").decision == "block"
