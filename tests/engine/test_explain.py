"""`explain` shows the verdict's labels: in its JSON and in the text a person reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.explain import explain, render_explanation
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from tests.fixtures.engine import FIXTURE_WORDLIST


def test_explain_lists_labels_with_their_list_and_sub_label(tokenizer: Tokenizer) -> None:
    files = {**FIXTURE_WORDLIST, "gambling.txt": "赌博 | block | | [casino] core term\n"}
    engine = Engine(load_config(), Wordlist.from_files(files), tokenizer)
    explanation = explain(engine, "他妈的赌博")
    assert explanation["labels"] == [
        {"category": "gambling", "decision": "block", "source": "wordlist", "score": 1.0,
         "label": "casino", "list": "gambling"},
        {"category": "abuse", "decision": "review", "source": "wordlist", "score": 0.6,
         "list": "abuse"},
    ]  # fmt: skip
    text = render_explanation(explanation)
    assert "  - gambling: block by wordlist (1.000), list gambling, label casino" in text
    assert "  - abuse: review by wordlist (0.600), list abuse" in text
    assert text.index("labels") < text.index("decision   BLOCK")
    quiet = render_explanation(explain(engine, "你好"))
    assert "labels\n  (none: nothing reached review)" in quiet


def test_explain_names_the_category_the_model_alone_decided(
    model_dir: Path, fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--wordlists", str(fixture_wordlist_dir), "--model", str(model_dir)]
    assert main(["explain", "六合彩内幕包赢带你飞", "--json", *args]) == 0
    explanation = json.loads(capsys.readouterr().out)
    assert explanation["categories"] == {}  # no wordlist evidence
    (named,) = explanation["labels"]
    assert (named["category"], named["decision"], named["source"]) == ("gambling", "block", "model")
    assert main(["explain", "网上百家乐稳赚不赔私聊", *args]) == 0
    out = capsys.readouterr().out
    assert "  - gambling: block by wordlist (1.000), list gambling" in out
    assert "      also gambling: block by model (" in out


@pytest.fixture(scope="module")
def shipped_engine(tokenizer: Tokenizer) -> Engine:
    from screening.engine.classify import MANIFEST, Classifier
    from screening.settings import DEFAULT_MODEL, DEFAULT_WORDLISTS

    if not (DEFAULT_MODEL / MANIFEST).is_file():
        pytest.skip("no shipped model")
    classifier = Classifier.load(DEFAULT_MODEL, tokenizer)
    return Engine(load_config(), Wordlist.load(DEFAULT_WORDLISTS), tokenizer, classifier)


def test_explain_says_when_the_context_rule_set_hits_aside(shipped_engine: Engine) -> None:
    """A warning that quotes a gambling block term passes: explain must say why, or the
    analyst sees a block-severity hit and a PASS with nothing between them."""
    warning = explain(shipped_engine, "请勿参与网络赌博，网赌害人害己")
    assert warning["decision"] == "pass" and any(h["category"] == "gambling" for h in warning["hits"])
    context = warning["context"]
    assert context["reads_as_context"] is True
    assert "gambling" in context["hits_set_aside"]
    assert "  - hits kept as evidence, not deciding: gambling" in render_explanation(warning)
    chat = explain(shipped_engine, "今晚一起去看电影吗")
    assert chat["context"] is None and "context    " not in render_explanation(chat)


def test_explain_shows_the_score_a_quotation_earned(shipped_engine: Engine) -> None:
    """A warning that quotes a gambling offer: the gambling head read the quote as the
    offer, the verdict took the score of the text without it; explain shows both."""
    warning = explain(shipped_engine, "彩票可以买着玩，但千万别信网上的“时时彩内部计划”，那是骗局。")
    assert warning["decision"] == "pass"
    whole = warning["context"]["scored_without_quotes"]["gambling"]
    assert whole >= 0.5 > warning["model"]["gambling"]["score"]
    assert "scored without what the message quotes" in render_explanation(warning)
    # the same offer made, not quoted, is still flagged
    assert explain(shipped_engine, "时时彩内部计划，稳赚不赔，私聊我")["decision"] != "pass"
