"""`screening eval`: metrics match hand-computed figures; the command reports every system."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.engine.classify import MANIFEST
from screening.engine.core import Engine
from screening.errors import ModelError
from screening.evaluation.evaluate import Example, Scored, evaluate_engine, metrics, read_examples
from screening.settings import DEFAULT_MODEL


def row(labels, predicted, decision, scores=None, source="seed") -> Scored:
    return Scored(
        Example("msg", tuple(labels), source), frozenset(predicted), decision, scores or {}
    )


ROWS = [
    row(["gambling"], ["gambling"], "block", {"gambling": 0.99}),
    row(["contact_diversion", "gambling"], ["gambling"], "review",
        {"gambling": 0.7, "contact_diversion": 0.2}),
    row(["drugs"], [], "pass", {"drugs": 0.1}),
    row([], ["gambling"], "review", {"gambling": 0.6}, source="chat"),
    row([], [], "pass", source="chat"),
    row([], [], "pass", source="news"),
    row(["drugs"], ["drugs", "porn"], "block", {"drugs": 0.95, "porn": 0.8}),
]  # fmt: skip


def test_metrics_match_hand_computed_values() -> None:
    report = metrics(ROWS)
    per = report["per_category"]
    # gambling: rows 1, 2 found, row 4 wrongly flagged → P 2/3, R 2/2, F1 2·2/(2·2+1+0).
    assert per["gambling"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2, "predicted": 3,
         "tp": 2, "fp": 1, "fn": 0}
    )  # fmt: skip
    # contact_diversion: never predicted → precision undefined, recall and F1 0.
    assert per["contact_diversion"]["precision"] is None
    assert (per["contact_diversion"]["recall"], per["contact_diversion"]["f1"]) == (0.0, 0.0)
    # drugs: row 7 found, row 3 missed.
    assert (per["drugs"]["precision"], per["drugs"]["recall"]) == (1.0, 0.5)
    assert per["drugs"]["f1"] == pytest.approx(2 / 3)
    # porn: one false alarm, nothing to find → recall undefined, F1 0, support 0.
    assert (per["porn"]["precision"], per["porn"]["recall"], per["porn"]["f1"]) == (0, None, 0)
    assert per["fraud"] == {"precision": None, "recall": None, "f1": None, "support": 0,
                            "predicted": 0, "tp": 0, "fp": 0, "fn": 0}  # fmt: skip
    # micro: tp 3 (2 gambling + 1 drugs), fp 2 (gambling, porn), fn 2 (contact, drugs).
    assert report["micro"] == pytest.approx({"precision": 0.6, "recall": 0.6, "f1": 0.6})
    assert report["macro_f1"] == pytest.approx((0.8 + 0.0 + 2 / 3) / 3)
    benign = report["benign"]
    assert (benign["rows"], benign["flagged"], benign["blocked"]) == (3, 1, 0)
    assert benign["false_positive_rate"] == pytest.approx(1 / 3)
    assert benign["by_source"] == {
        "chat": {"rows": 2, "flagged": 1, "false_positive_rate": 0.5},
        "news": {"rows": 1, "flagged": 0, "false_positive_rate": 0.0},
    }
    assert report["positives"] == {"rows": 4, "flagged": 3, "detection_rate": 0.75}
    assert report["confusion"] == {
        "gambling": {"gambling": 2},
        "contact_diversion": {"gambling": 1},
        "drugs": {"drugs": 1, "none": 1, "porn": 1},
        "none": {"gambling": 1, "none": 2},
    }
    assert [(e["category"], e["score"]) for e in report["worst_false_positives"]] == [
        ("porn", 0.8),
        ("gambling", 0.6),
    ]
    assert [(e["category"], e["score"]) for e in report["worst_false_negatives"]] == [
        ("drugs", 0.1),
        ("contact_diversion", 0.2),
    ]
    assert metrics(ROWS, worst=1)["worst_false_positives"][0]["labels"] == ["drugs"]


def test_empty_input_has_no_figures() -> None:
    report = metrics([])
    assert report["micro"] == {"precision": None, "recall": None, "f1": None}
    assert report["macro_f1"] is None and report["benign"]["false_positive_rate"] is None


EXAMPLES = [
    Example("快来赌博", ("gambling",), "t"),
    Example("你好", (), "t"),
    Example("他妈的", ("abuse",), "t"),
    Example("冰毒", (), "t"),  # labelled benign on purpose: a false positive
    Example("百家乐", ("gambling",), "t"),
    Example("黄色小说", ("porn",), "t"),  # no term for it: a false negative
]


def test_evaluate_engine_scores_the_verdict(engine: Engine) -> None:
    report = evaluate_engine(engine, EXAMPLES, batch_size=4)
    assert set(report["systems"]) == {"verdict", "wordlists"}  # no model loaded
    verdict = report["systems"]["verdict"]
    assert verdict["per_category"]["gambling"]["tp"] == 2
    assert verdict["per_category"]["abuse"]["tp"] == 1
    assert verdict["per_category"]["drugs"]["fp"] == 1
    assert verdict["per_category"]["porn"]["fn"] == 1
    assert verdict["benign"]["flagged"] == 1 and verdict["benign"]["rows"] == 2
    assert report["labels"] == {"abuse": 1, "gambling": 2, "porn": 1}
    assert report["systems"]["wordlists"]["per_category"] == verdict["per_category"]


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def test_cli_eval(tmp_path: Path, fixture_wordlist_dir: Path, capsys) -> None:
    data = write(
        tmp_path / "d.jsonl",
        [{"text": e.text, "labels": list(e.labels), "id": i} for i, e in enumerate(EXAMPLES)],
    )
    args = ["eval", str(data), "--wordlists", str(fixture_wordlist_dir), "--model", "none"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"] == str(data) and report["rows"] == len(EXAMPLES)
    assert report["systems"]["verdict"]["worst_false_positives"][0]["id"] == 3
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "false-positive rate 50.0%" in text and "worst false negatives" in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "x", "labels": ["nonsense"]}', "unknown label"),
        ('{"labels": []}', "not a JSON object with 'text'"),
        ("not json", "not a JSON object"),
        ('{"text": 3, "labels": []}', "must be a string"),
    ],
)
def test_read_examples_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "labels": []}\n' + line + "\n", "utf-8")
    with pytest.raises(ModelError, match=message) as info:
        read_examples(path)
    assert f"{path}:2:" in str(info.value)


def test_read_examples(tmp_path: Path) -> None:
    path = write(tmp_path / "named.jsonl", [{"text": "a", "labels": ["porn", "porn"]},
                                           {"text": "b", "source": "x", "id": 7}])  # fmt: skip
    assert read_examples(path) == [
        Example("a", ("porn",), "named"),
        Example("b", (), "x", 7),
    ]


@pytest.mark.skipif(not (DEFAULT_MODEL / MANIFEST).is_file(), reason="no shipped model")
def test_shipped_model_on_real_benign_chat(shared_data: Path, engine: Engine) -> None:
    """A regression guard on real data the model never saw: few false alarms on everyday
    Weibo comments, and it finds COLD offensive comments better than chance."""
    from screening.engine.classify import Classifier

    shipped = Classifier.load(DEFAULT_MODEL, engine.tokenizer)
    with_model = Engine(engine.config, engine.wordlist, engine.tokenizer, shipped)
    comments = list(islice(read_examples(shared_data / "ced" / "comments_benign.jsonl"), 3000))
    model = evaluate_engine(with_model, comments)["systems"]["model"]
    assert model["benign"]["false_positive_rate"] <= 0.01
    cold = read_examples(shared_data / "cold" / "dev.jsonl")[:1500]
    abuse = evaluate_engine(with_model, cold)["systems"]["model"]["per_category"]["abuse"]
    assert abuse["precision"] >= 0.8
