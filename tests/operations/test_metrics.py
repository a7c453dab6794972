"""Metrics: what /metrics shows after screening known messages, that labels stay bounded
and never carry text or user ids, and that worker processes add up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dramatiq
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from screening.enforcement.enforcer import Enforcer
from screening.enforcement.reports import Report, submit_report
from screening.enforcement.state import MemoryPolicyState
from screening.engine.verdict import Hit, Verdict
from screening.engine.wordlist import Wordlist
from screening.operations.metric_labels import top_terms
from screening.operations.metrics import ScreeningMetrics
from screening.operations.metrics_buffer import Pending
from screening.pipeline.message import CALLBACKS_ACTOR
from screening.records.sql import SqliteRecordStore
from screening.timing import StageClock
from tests.fixtures import REPO
from tests.fixtures.enforcement import make_policy, message
from tests.fixtures.operations import OpsPipeline, ops_pipeline  # noqa: F401
from workers.enforcement import install

BLOCK, REVIEW, PASS = "周末一起来玩百家乐", "你他妈的别刷屏了", "明天下午三点开会"


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_screening_known_messages(ops_pipeline: OpsPipeline) -> None:  # noqa: F811
    p = ops_pipeline
    texts = [BLOCK] * 3 + [REVIEW] * 2 + [PASS] * 5
    p.screener.submit_many([p.message(f"m{i}", t) for i, t in enumerate(texts)])
    p.screener.flush()
    assert p.wait(lambda: p.screened() == 10)
    assert p.receiver.wait_for(5)
    assert p.wait(
        lambda: value(samples(p.registry), "screening_callbacks_total", outcome="delivered") == 5
    )
    found = samples(p.registry)

    assert value(found, "screening_messages_total", decision="block") == 3
    assert value(found, "screening_messages_total", decision="review") == 2
    assert value(found, "screening_messages_total", decision="pass") == 5
    assert (
        value(found, "screening_category_messages_total", category="gambling", decision="block")
        == 3
    )
    assert value(found, "screening_hits_total", category="abuse", source="wordlist") == 2
    assert value(found, "screening_term_hits_total", category="gambling", term="百家乐") == 3
    assert value(found, "screening_end_to_end_seconds_count") == 10
    assert value(found, "screening_batch_size_sum") == 10
    for stage in ("normalise", "match", "decide", "policy"):
        assert value(found, "screening_stage_duration_seconds_count", stage=stage) >= 1, stage
    assert value(found, "screening_callback_attempts_count", outcome="delivered") == 5
    assert value(found, "screening_version_info", kind="wordlist", slot="live",
                 version=p.operations.holder.live.versions["wordlist"]) == 1  # fmt: skip

    labels = {v for (_, pairs) in found for _, v in pairs}
    assert not labels & {*texts, "u-secret-7", "g1", *(f"m{i}" for i in range(10))}


def test_reports_and_the_measures_they_lead_to_are_counted(
    ops_pipeline: OpsPipeline,  # noqa: F811
    tmp_path: Path,
) -> None:
    p = ops_pipeline
    records = SqliteRecordStore(tmp_path / "records.sqlite3")
    install(p.runtime, Enforcer(make_policy(), MemoryPolicyState(), records, sweep_interval=0))
    for mid, text in (("r1", BLOCK), ("r2", BLOCK), ("r3", PASS)):
        wire = message(mid, sender="author").to_wire() | {"text": text}
        report = {"v": 1, "message": wire, "reported_by": f"x-{mid}", "reason": "骚扰"}
        submit_report(p.screener.broker, Report.from_dict(report), p.screener.queue)

    def reports() -> float:
        return sum(
            v for (name, _), v in samples(p.registry).items() if name == "screening_reports_total"
        )

    assert p.wait(lambda: reports() == 3)
    found = samples(p.registry)
    assert value(found, "screening_reports_total", outcome="block") == 2
    assert value(found, "screening_reports_total", outcome="dismissed") == 1
    assert value(found, "screening_measures_total", type="group_warning") == 1  # 2nd block in g1
    records.close()


def test_term_labels_are_a_bounded_top_set(fixture_wordlist: Wordlist) -> None:
    assert top_terms(fixture_wordlist, 3) == {"傻逼", "冰毒", "赌博", "phone", "qq"}
    # block terms first, one per category in turn, then the next round; patterns always
    assert top_terms(fixture_wordlist, 5) - {"phone", "qq"} == {
        "傻逼",
        "冰毒",
        "赌博",
        "黄片",
        "百家乐",
    }
    many = Wordlist.from_files({"gambling.txt": "".join(f"词{i} | block\n" for i in range(500))})
    assert len(top_terms(many, 50)) == 50


def test_unknown_categories_and_terms_fall_into_other() -> None:
    registry = CollectorRegistry()
    metrics = ScreeningMetrics(registry, flush_interval=0)
    hit = Hit("某用户的原话", "made_up_category", "block", 0, 2, "某用", (), "wordlist")
    metrics.record_verdicts(
        [Verdict("m1", "block", {"made_up_category": 1.0}, (hit,))], frozenset()
    )
    found = samples(registry)
    assert value(found, "screening_term_hits_total", category="other", term="other") == 1
    assert (
        value(found, "screening_category_messages_total", category="other", decision="block") == 1
    )


def test_gathered_updates_equal_direct_ones_once_flushed() -> None:
    registry = CollectorRegistry()
    direct = Histogram("direct", "", ["stage"], buckets=(0.1, 1, 10), registry=registry)
    gathered = Histogram("gathered", "", ["stage"], buckets=(0.1, 1, 10), registry=registry)
    pending = Pending(interval=3600)
    for seconds, count in ((0.05, 3), (0.1, 1), (0.5, 7), (50.0, 2)):
        pending.observe(gathered.labels("match"), seconds, count)
        for _ in range(count):
            direct.labels("match").observe(seconds)
    assert value(samples(registry), "gathered_count", stage="match") == 0
    pending.flush()
    found = samples(registry)
    compared = [(n, labels) for n, labels in found if n.startswith("direct") and "created" not in n]
    assert len(compared) == 6  # 4 buckets, sum, count
    for name, labels in compared:
        assert found[(name.replace("direct", "gathered"), labels)] == found[(name, labels)], name

    metrics = ScreeningMetrics(CollectorRegistry(), flush_interval=3600)
    metrics.record_verdicts([Verdict("m1", "pass", {}, ())], frozenset())
    assert metrics.messages.labels("pass")._value.get() == 0
    metrics.flush()
    assert metrics.messages.labels("pass")._value.get() == 1


def test_stage_clock_moves_tokenisation_out_of_match_and_classify() -> None:
    clock = StageClock()
    clock.reset()
    clock.add_all({"match": 0.5, "classify": 1.0, "normalise": 0.1})
    clock.add("tokenise@match", 0.2)
    clock.add("tokenise@classify", 0.6)
    assert clock.take() == {"match": 0.3, "classify": 0.4, "normalise": 0.1, "tokenise": 0.8}
    assert clock.take() == {}


def test_worker_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes record, a third (the exposition server's view) sums them; the
    version gauge shows the max over live processes, so a worker on an old version
    still shows its version next to the new one."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    record = textwrap.dedent("""
        import sys
        from prometheus_client import CollectorRegistry
        from screening.operations.metrics import ScreeningMetrics
        from screening.engine.verdict import Verdict
        m = ScreeningMetrics(CollectorRegistry(), flush_interval=0)
        m.record_verdicts([Verdict("x", "block", {}, ())], frozenset())
        m.set_versions("live", {"wordlist": sys.argv[1]}, {})
    """)
    for version in ("v1", "v2"):
        subprocess.run([sys.executable, "-c", record, version], env=env, check=True, cwd=REPO)
    collect = textwrap.dedent("""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        print(generate_latest(registry).decode())
    """)
    out = subprocess.run([sys.executable, "-c", collect], env=env, check=True, cwd=REPO,
                         capture_output=True, text=True).stdout  # fmt: skip
    assert 'screening_messages_total{decision="block"} 2.0' in out
    assert 'version="v1"' in out and 'version="v2"' in out


def test_timed_tokenizer_times_words_and_tokens(tokenizer) -> None:
    """The classifier asks for words (``cut``), the matcher for tokens with spans: both
    count as segmentation time of their stage."""
    from screening.engine.parts import TimedTokenizer

    clock = StageClock()
    clock.reset()
    timed = TimedTokenizer(tokenizer, clock, "tokenise@classify")
    assert timed.cut("路口交通很拥堵") == tokenizer.cut("路口交通很拥堵")
    after_cut = clock._stages()["tokenise@classify"]
    assert after_cut > 0
    assert timed.tokenize("路口交通") == tokenizer.tokenize("路口交通")
    assert clock._stages()["tokenise@classify"] > after_cut


def test_a_given_up_batch_of_callbacks_counts_each_of_its_events(
    ops_pipeline: OpsPipeline,  # noqa: F811
) -> None:
    """dramatiq gave up on a ``deliver_callbacks`` message: DeadLetters keeps one record
    per event, and the metric counts as many."""
    p = ops_pipeline
    events = [{"event_id": f"evt_{n}", "type": "message.verdict"} for n in range(3)]
    message = dramatiq.Message(
        "q-callbacks", CALLBACKS_ACTOR, (), {"events": events, "token": "t"}, {}
    )
    p.operations.telemetry.after_nack(None, message)
    p.operations.telemetry.after_nack(None, dramatiq.Message("q", "screen_batch", ({},), {}, {}))
    found = samples(p.registry)
    assert value(found, "screening_dead_letters_total", kind="callbacks") == 3
    assert value(found, "screening_dead_letters_total", kind="messages") == 1
