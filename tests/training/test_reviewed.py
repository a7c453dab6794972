"""Reviewed records as training data: outcomes joined to their verdicts' text, read from
the audit store (``records:``) or a records export, and a model trained on a small store
that learns a category only the reviewers named."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.console.audit import Audit
from screening.engine.classify import Classifier
from screening.engine.tokenize import Tokenizer
from screening.errors import ModelError
from screening.records.model import Record
from screening.records.sql import SqliteRecordStore
from screening.training.reviewed import REVIEWED, read_data, reviewed_examples
from screening.training.train import train
from tests.fixtures.console import verdict_record
from tests.fixtures.training import write_corpus

#: Scams the live model sent to review as gambling; reviewers confirmed them as fraud.
FRAUD = [
    f"{a}{b}"
    for a in ("刷单返利", "冒充客服退款", "中奖领取奖金", "无抵押贷款", "游戏装备低价")
    for b in ("加微信详聊", "先交保证金", "点击链接填写", "转账到安全账户", "当天到账", "名额有限")
]
#: Harmless chat the live model flagged; reviewers overturned it.
HARMLESS = [
    f"{a}{b}"
    for a in ("麻将三缺一", "斗地主比赛", "象棋社活动", "桥牌俱乐部", "围棋复盘")
    for b in ("周末来玩", "只为娱乐", "欢迎新人", "输了请奶茶", "老地方见", "报名找班长")
]


def _verdict(n: int, text: str, *, labelled: bool = True) -> Record:
    record = verdict_record(f"m{n}", text, term=text[:2], category="gambling",
                            at=1_764_000_000 + n)  # fmt: skip
    return record if labelled else Record(record.kind, record.at, record.key, record.group_id,
                                          record.user_id, record.message_id,
                                          {**record.detail, "labels": []})  # fmt: skip


def _reviewed_store(path: Path, outcomes: list[tuple[str, str, str | None]]) -> SqliteRecordStore:
    """A store with a review verdict per (text, outcome, corrected category) and the
    console's outcome records for them, as the review queue writes them."""
    store = SqliteRecordStore(path, "writer")
    store.append([_verdict(n, text) for n, (text, _, _) in enumerate(outcomes)])
    verdicts = {r.key: r for r in store.export(0, time.time(), kinds=["verdict"])}
    audit = Audit(store)
    for n, (_, outcome, category) in enumerate(outcomes):
        target = verdicts[f"verdict:g1:m{n}"]
        assert audit.review("reviewer", target, outcome, category=category) is not None
    return store


def test_outcomes_become_labelled_examples(tmp_path: Path) -> None:
    cases = [("刷单返利加微信", "confirmed", None, ("gambling",)),  # as flagged
             ("冒充客服退款", "confirmed", "fraud", ("fraud",)),  # the reviewer's category
             ("麻将三缺一", "overturned", "fraud", ())]  # fmt: skip
    store = _reviewed_store(tmp_path / "r.sqlite3", [(t, o, c) for t, o, c, _ in cases])
    records = list(store.export(0, time.time() + 1))
    found = reviewed_examples(records)
    assert [(e.text, e.labels) for e in found.examples] == [(t, want) for t, _, _, want in cases]
    assert {e.source for e in found.examples} == {REVIEWED}
    # an outcome whose verdict is missing, and a confirmation nobody gave a category
    orphan = [r for r in records if r.kind == "review"][:1]
    unlabelled = _verdict(9, "无标签", labelled=False)
    review = Record("review", 1.0, "review:x", detail={"outcome": "confirmed", "category": None,
                                                        "categories": [],
                                                        "verdict_key": unlabelled.key})  # fmt: skip
    left = reviewed_examples([*orphan, unlabelled, review])
    assert (left.examples, left.without_text, left.without_category) == ([], 1, 1)


def test_records_and_an_export_give_the_same_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.sqlite3"
    _reviewed_store(path, [("刷单返利加微信", "confirmed", "fraud"), ("麻将三缺一", "overturned", None)])
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(path))
    from_store = read_data("records:")
    export = tmp_path / "export.jsonl"
    span = ["--from", "2025-01-01", "--to", "2030-01-01", "--output"]
    assert main(["records", "export", *span, str(export), "--kind", "review", "--kind", "verdict"]) == 0
    assert read_data(export) == from_store
    assert [(e.text, e.labels) for e in from_store] == [("刷单返利加微信", ("fraud",)), ("麻将三缺一", ())]
    reviews_only = tmp_path / "reviews.jsonl"
    assert main(["records", "export", *span, str(reviews_only), "--kind", "review"]) == 0
    with pytest.raises(ModelError, match="export with --kind verdict too"):
        read_data(reviews_only)
    labelled = write_corpus(tmp_path / "corpus.jsonl")  # labelled JSONL reads as before
    assert read_data(labelled)[0].labels == ("gambling",)


def test_a_model_learns_what_the_reviewers_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokenizer: Tokenizer
) -> None:
    path = tmp_path / "r.sqlite3"
    _reviewed_store(path, [(t, "confirmed", "fraud") for t in FRAUD]
                    + [(t, "overturned", None) for t in HARMLESS])  # fmt: skip
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(path))
    corpus = write_corpus(tmp_path / "corpus.jsonl")  # gambling, drugs, benign; no fraud
    card = train([corpus, "records:"], tmp_path / "reviewed-1", tokenizer=tokenizer)
    assert card["data"]["sources"][REVIEWED] == len(FRAUD) + len(HARMLESS)
    assert "fraud" in card["categories"] and "fraud" not in card["untrained"]
    model = Classifier.load(tmp_path / "reviewed-1", tokenizer)
    scam, game = model.predict_batch(["冒充客服退款请先交保证金", "斗地主比赛老地方见"])
    assert scam["fraud"] >= model.thresholds["fraud"].review
    assert max(game[c] for c in ("gambling", "drugs", "fraud")) < 0.5
    card_json = json.loads((tmp_path / "reviewed-1" / "card.json").read_text("utf-8"))
    assert card_json["data"]["files"] == [str(corpus), "records:"]
