"""Shadow testing: a candidate screens a sample of live traffic next to the live engine,
differences are recorded and reported, only live verdicts act, promote makes it live —
for wordlist and for bank candidates."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import redis

from screening.engine.parts import files_digest
from screening.engine.verdict import Hit, Verdict
from screening.engine.wordlist import Wordlist
from screening.operations.shadow import (
    Difference,
    MemoryShadowStore,
    RedisShadowStore,
    compare,
    sampled,
    shadow_key,
)
from screening.operations.shadow_report import cmd_shadow_report, render
from screening.operations.versions import RedisVersionStore
from screening.pipeline.signing import SigningKeys
from screening.settings import Settings
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.operations import OpsPipeline, ops_pipeline  # noqa: F401
from tests.fixtures.pipeline import SIGNING_KEY

NEW_TERM = "新型赌球"
CANDIDATE = {
    **FIXTURE_WORDLIST,
    "gambling.txt": FIXTURE_WORDLIST["gambling.txt"] + f"{NEW_TERM} | block\n",
}


def verdict(decision: str, **categories: float) -> Verdict:
    hits = tuple(Hit(f"t-{c}", c, "block", 0, 1, "x") for c in categories)
    return Verdict("m", decision, dict(categories), hits)


def test_compare_records_only_changed_decisions_with_their_categories() -> None:
    assert compare("m1", "text", verdict("pass"), verdict("pass")) is None
    assert compare("m1", "text", verdict("block", drugs=1.0), verdict("block", drugs=0.9)) is None
    difference = compare("m1", "来" * 500, verdict("pass"), verdict("block", gambling=1.0))
    assert difference is not None and difference.transition == "pass>block"
    assert difference.categories == ("gambling",) and difference.candidate_terms == ("t-gambling",)
    assert len(difference.text) == 200


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    ids = [f"msg-{i}" for i in range(20_000)]
    chosen = [i for i in ids if sampled(i, 0.1)]
    assert chosen == [i for i in ids if sampled(i, 0.1)]
    assert 0.08 < len(chosen) / len(ids) < 0.12
    assert all(sampled(i, 1.0) for i in ids[:10]) and not any(sampled(i, 0.0) for i in ids[:10])


@pytest.fixture(params=["memory", "redis"])
def shadow_store(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryShadowStore(examples_per_category=2)
    url = request.getfixturevalue("redis_url")
    return RedisShadowStore(redis.Redis.from_url(url), examples_per_category=2)


def test_stores_aggregate_batches_and_keep_the_newest_examples(shadow_store: Any) -> None:
    def diff(i: int, live: str, cand: str, *cats: str) -> Difference:
        return Difference(f"m{i}", f"text {i}", live, cand, cats, (), ("t",))

    shadow_store.record("wordlist=abc", "live=1", 10, [diff(1, "pass", "block", "gambling")])
    shadow_store.record(
        "wordlist=abc", "live=1", 5,
        [diff(2, "pass", "block", "gambling"), diff(3, "block", "pass", "drugs", "gambling")],
    )  # fmt: skip
    summary = shadow_store.summary("wordlist=abc", examples=5)
    assert summary["compared"] == 15 and summary["changed"] == 3
    assert summary["transitions"] == {"block→pass": 1, "pass→block": 2}
    assert summary["categories"] == {"gambling": {"pass→block": 2, "block→pass": 1},
                                     "drugs": {"block→pass": 1}}  # fmt: skip
    assert [e["message_id"] for e in summary["examples"]["gambling"]] == ["m3", "m2"]
    assert summary["live_versions"] == {"live=1": 15}
    assert shadow_store.keys() == ["wordlist=abc"]
    assert shadow_store.summary("wordlist=nothing") is None


def test_shadow_candidate_is_compared_on_live_traffic_and_never_acts(
    ops_pipeline: OpsPipeline,  # noqa: F811
) -> None:
    p = ops_pipeline
    holder = p.operations.holder
    candidate = Wordlist.from_files(CANDIDATE).version
    files = {name: text.encode() for name, text in CANDIDATE.items()}
    p.versions.publish("wordlist", candidate, files, {}, slot="shadow")
    assert p.wait(lambda: holder.shadow is not None)
    assert holder.shadow.versions["wordlist"] == candidate  # type: ignore[union-attr]

    texts = [f"周末{NEW_TERM}走起"] * 4 + ["一起玩百家乐"] * 2 + ["明天见"] * 6
    p.screener.submit_many([p.message(f"s{i}", t) for i, t in enumerate(texts)])
    p.screener.flush()
    assert p.wait(lambda: p.screened() == 12)
    assert p.receiver.wait_for(2)
    key = shadow_key({"wordlist": candidate})
    assert p.wait(lambda: (p.shadows.summary(key) or {}).get("compared") == 12)

    # Only the live verdicts acted: the two 百家乐 messages, not the four the candidate blocks.
    assert sorted(e["message_id"] for e in p.receiver.delivered) == ["s4", "s5"]
    summary = p.shadows.summary(key)
    assert summary is not None
    assert summary["changed"] == 4 and summary["transitions"] == {"pass→block": 4}
    assert summary["categories"] == {"gambling": {"pass→block": 4}}
    assert {e["message_id"] for e in summary["examples"]["gambling"]} == {"s0", "s1", "s2", "s3"}
    assert p.metrics.shadow_compared._value.get() == 12

    report = render(key, summary)
    assert "decisions that would change: 4 (33.33%)" in report
    assert f"s0: pass → block  周末{NEW_TERM}走起  [candidate hits: {NEW_TERM}]" in report

    assert p.versions.promote("wordlist") == candidate
    assert p.wait(lambda: holder.shadow is None and holder.live.versions["wordlist"] == candidate)  # type: ignore[union-attr]
    p.screener.submit(p.message("s-after", f"周末{NEW_TERM}走起"))
    p.screener.flush()
    assert p.receiver.wait_for(3)
    assert p.receiver.delivered[-1]["message_id"] == "s-after"
    assert p.receiver.delivered[-1]["versions"]["wordlist"] == candidate


def test_shadow_report_command(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    versions = RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))
    candidate = Wordlist.from_files(CANDIDATE).version
    versions.publish("wordlist", candidate, {"gambling.txt": b"x | block\n"}, {}, slot="shadow")
    store = RedisShadowStore(redis.Redis.from_url(redis_url))
    key = shadow_key({"wordlist": candidate})
    store.record(key, "live", 100, [
        Difference("m9", "周末新型赌球走起", "pass", "block", ("gambling",), (), (NEW_TERM,))
    ])  # fmt: skip
    args = argparse.Namespace(candidate=None, examples=5, json=False)
    assert cmd_shadow_report(args, Settings(redis_url=redis_url)) == 0
    out = capsys.readouterr().out
    assert f"candidate wordlist {candidate}" in out
    assert "decisions that would change: 1 (1.00%)" in out
    assert "gambling" in out and "m9: pass → block" in out
    args.json = True
    assert cmd_shadow_report(args, Settings(redis_url=redis_url)) == 0
    assert json.loads(capsys.readouterr().out)["transitions"] == {"pass→block": 1}


JOB_AD = ("高薪招聘海外客服，月薪三万包吃包住，无需经验，机票报销，有意者速联系人事专员，"
          "名额有限报满即止，不要错过改变命运的机会")  # fmt: skip


def test_a_bank_candidate_is_shadowed_then_promoted_and_rolled_back(
    ops_pipeline: OpsPipeline,  # noqa: F811
) -> None:
    p = ops_pipeline
    holder = p.operations.holder
    live_bank = holder.load().versions.get("bank")  # the configured banks/
    row = {"id": "job", "text": JOB_AD, "category": "fraud", "note": "海外高薪招聘诈骗"}
    files = {"ads.jsonl": (json.dumps(row, ensure_ascii=False) + "\n").encode()}
    candidate = files_digest(files)
    p.versions.publish("bank", candidate, files, {"entries": 1}, slot="shadow")
    assert p.wait(lambda: holder.shadow is not None)
    assert holder.shadow.versions["bank"] == candidate  # type: ignore[union-attr]
    assert holder.live.versions.get("bank") == live_bank  # type: ignore[union-attr]

    texts = ["转发：" + JOB_AD] * 3 + ["明天见，记得带伞"] * 3
    p.screener.submit_many([p.message(f"b{i}", t) for i, t in enumerate(texts)])
    p.screener.flush()
    key = shadow_key({"bank": candidate})
    assert key == f"bank={candidate},model=-,wordlist=-"
    assert p.wait(lambda: (p.shadows.summary(key) or {}).get("compared") == 6)
    summary = p.shadows.summary(key)
    assert summary is not None
    assert summary["transitions"] == {"pass→block": 3}
    assert summary["categories"] == {"fraud": {"pass→block": 3}}
    assert {e["message_id"] for e in summary["examples"]["fraud"]} == {"b0", "b1", "b2"}
    assert list(summary["examples"]["fraud"][0]["candidate_terms"]) == ["bank:ads/job"]
    assert render(key, summary).startswith(f"candidate bank {candidate}")
    assert p.receiver.delivered == []  # the candidate never acts

    assert p.versions.promote("bank") == candidate
    assert p.wait(lambda: holder.shadow is None and holder.live.versions["bank"] == candidate)  # type: ignore[union-attr]
    p.screener.submit(p.message("b-after", JOB_AD))
    p.screener.flush()
    assert p.receiver.wait_for(1)
    event = p.receiver.delivered[-1]
    assert event["message_id"] == "b-after" and event["versions"]["bank"] == candidate

    other = {"ads.jsonl": files["ads.jsonl"].replace(b'"fraud"', b'"fraud", "severity": "review"')}
    p.versions.publish("bank", files_digest(other), other, {"entries": 1})
    assert p.wait(lambda: holder.live.versions["bank"] == files_digest(other))  # type: ignore[union-attr]
    assert p.versions.rollback("bank") == candidate
    assert p.wait(lambda: holder.live.versions["bank"] == candidate)  # type: ignore[union-attr]
