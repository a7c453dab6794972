"""Publishing: a bad version is refused before anything is stored (parse errors, invalid
UTF-8, no terms, benign hits, a truncated list, a tampered model, a malformed bank row);
a good one is stored with the term keys its validation computed, which workers check
before using. A published bank version reaches running workers, and rollback takes it
back."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from screening.engine.config import load_config
from screening.engine.parts import TERM_KEYS, MemoNormalizer
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import ModelError, ScreeningError, WordlistError
from screening.operations.publish import (
    cmd_publish,
    cmd_rollback,
    cmd_status,
    read_directory,
    validate_model,
)
from screening.operations.reload import EngineHolder
from screening.operations.versions import RedisVersionStore
from screening.settings import DEFAULT_MODEL, Settings
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import SIGNING_KEY
from tests.operations.test_reload import encoded, reloading_pipeline  # noqa: F401 - fixture
from tests.operations.test_versions import screen


def test_term_keys_from_the_publisher_are_checked_before_use() -> None:
    config = load_config()
    publisher = MemoNormalizer(config.transforms)
    terms = [f"赌{i}博" for i in range(300)] + ["賭博", "ＱＱ"]
    for term in terms:
        publisher.key(term)
    blob = publisher.export()
    worker = MemoNormalizer(config.transforms)
    assert worker.seed(blob) and worker.key("賭博") == publisher.key("賭博")
    data = json.loads(blob)
    data["keys"] = {term: key + "x" for term, key in data["keys"].items()}  # other transforms
    assert not MemoNormalizer(config.transforms).seed(json.dumps(data).encode())
    assert not MemoNormalizer(config.transforms).seed(b"not json")


def _args(**values: Any) -> argparse.Namespace:
    base = {"kind": "wordlist", "directory": None, "wordlists": None, "config": None,
            "shadow": False, "force": False, "wait": 0, "benign": [], "to": None}  # fmt: skip
    return argparse.Namespace(**{**base, **values})


def test_a_corrupt_publish_is_refused_and_nothing_changes(
    redis_url: str, tmp_path: Path, fixture_wordlist_dir: Path
) -> None:
    settings = Settings(redis_url=redis_url, signing_key=SIGNING_KEY,
                        wordlists=fixture_wordlist_dir)  # fmt: skip
    good = tmp_path / "good"
    good.mkdir()
    files = {**FIXTURE_WORDLIST, "gambling.txt": FIXTURE_WORDLIST["gambling.txt"] + "梭哈群\n"}
    for name, text in files.items():
        (good / name).write_text(text, encoding="utf-8")
    assert cmd_publish(_args(directory=str(good)), settings) == 0
    store = RedisVersionStore.from_url(redis_url)
    live = store.pointer("wordlist", "live")
    assert live == Wordlist.from_files(files).version
    assert TERM_KEYS in store.files("wordlist", live)  # type: ignore[operator]
    (good / "drugs.txt").write_text("冰毒 | block | nonsense-mode\n", encoding="utf-8")
    with pytest.raises(WordlistError, match="unknown mode"):
        cmd_publish(_args(directory=str(good)), settings)
    boot = Wordlist.load(settings.wordlists).version  # the configured lists, stored first
    assert store.pointer("wordlist", "live") == live
    assert store.history("wordlist") == [live, boot]


def test_a_model_is_validated_published_and_loaded(
    redis_url: str, fixture_wordlist_dir: Path, tmp_path: Path, tokenizer: Tokenizer
) -> None:
    shipped = DEFAULT_MODEL
    if not (shipped / "manifest.json").is_file():
        pytest.skip("no shipped model")
    settings = Settings(
        redis_url=redis_url, wordlists=fixture_wordlist_dir, signing_key=SIGNING_KEY
    )
    tampered = tmp_path / "tampered"
    shutil.copytree(shipped, tampered)
    (tampered / "features.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ModelError, match="SHA-256"):
        validate_model(
            read_directory(tampered, "*"), wordlist=Wordlist.load(fixture_wordlist_dir),
            tokenizer=tokenizer,
        )  # fmt: skip
    store = RedisVersionStore.from_url(redis_url)
    assert store.pointer("model", "live") is None

    assert cmd_publish(_args(kind="model", directory=str(shipped)), settings) == 0
    version = store.pointer("model", "live")
    renamed = tmp_path / "same-name"  # other content, same manifest version
    shutil.copytree(shipped, renamed)
    (renamed / "MODEL.md").write_text("edited", encoding="utf-8")
    with pytest.raises(ModelError, match="already published with other content"):
        cmd_publish(_args(kind="model", directory=str(renamed)), settings)
    assert store.meta("model", version)["model_version"] == DEFAULT_MODEL.name  # type: ignore[index]
    holder = EngineHolder(store, wordlists=fixture_wordlist_dir, model=None, worker="w")
    holder.builder.tokenizer = tokenizer
    engine = holder.load()
    assert engine.versions["model"] == DEFAULT_MODEL.name and engine.classifier is not None
    assert store.workers()["w"]["live"] == {
        "wordlist": None,
        "model": version,
        "bank": None,
        "engine": dict(engine.versions),
    }


#: A script no shipped bank or fixture wordlist knows.
JOB_AD = ("高薪招聘海外客服，月薪三万包吃包住，无需经验，机票报销，有意者速联系人事专员，"
          "名额有限报满即止，不要错过改变命运的机会")  # fmt: skip


def _bank(directory: Path, severity: str) -> Path:
    directory.mkdir(exist_ok=True)
    row = {"id": "job", "text": JOB_AD, "category": "fraud", "note": "海外高薪招聘诈骗",
           "severity": severity}  # fmt: skip
    (directory / "ads.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n")
    return directory


def test_a_published_bank_reaches_a_running_worker_and_rollback_takes_it_back(
    reloading_pipeline: Any,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, actors, ops, batches = reloading_pipeline
    store = ops.holder.store
    shipped = ops.holder.load().versions.get("bank")  # the configured banks/ until a publish
    assert screen(actors, batches, JOB_AD).decision == "pass"

    # one entry against the 12 the workers booted with (stored as the boot version): forced
    args = _args(kind="bank", directory=str(_bank(tmp_path / "banks", "block")), wait=10,
                 force=True)  # fmt: skip
    assert cmd_publish(args, settings) == 0  # 0: every reporting worker runs it
    first = store.pointer("bank", "live")
    assert first != shipped and ops.holder.live.versions["bank"] == first
    verdict = screen(actors, batches, "转给大家看看：" + JOB_AD)
    assert (verdict.decision, verdict.versions["bank"]) == ("block", first)
    assert [(lb.source, lb.entry) for lb in verdict.labels] == [("bank:ads", "job")]

    assert cmd_publish(_args(kind="bank", directory=str(_bank(tmp_path / "banks", "review")),
                             wait=10), settings) == 0  # fmt: skip
    assert screen(actors, batches, JOB_AD).decision == "review"
    assert cmd_rollback(_args(kind="bank", wait=10), settings) == 0
    assert ops.holder.live.versions["bank"] == first
    assert screen(actors, batches, JOB_AD).decision == "block"

    assert cmd_status(_args(), settings) == 0
    out = capsys.readouterr().out
    assert f"bank: live {first}" in out and f"bank {first}" in out
    assert store.history("bank")[-1] == shipped  # the boot version, for a rollback to it


def test_publish_runs_lint_and_records_a_forced_publish(
    redis_url: str, tmp_path: Path, fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(redis_url=redis_url, signing_key=SIGNING_KEY,
                        wordlists=fixture_wordlist_dir)  # fmt: skip
    lists = tmp_path / "lists"
    lists.mkdir()
    for name, text in FIXTURE_WORDLIST.items():
        (lists / name).write_text(text, encoding="utf-8")
    with (lists / "drugs.txt").open("a", encoding="utf-8") as handle:
        handle.write("冰毒 | review\n")  # already listed: the duplicate that went live
    store = RedisVersionStore.from_url(redis_url)
    with pytest.raises(WordlistError, match=r"(?s)publish, 1 problem.*duplicate: '冰毒'"):
        cmd_publish(_args(directory=str(lists)), settings)
    assert store.pointer("wordlist", "live") is None

    args = _args(directory=str(lists), force=True, author="carol", reason="hotfix, dedupe later")
    assert cmd_publish(args, settings) == 0
    assert "published despite: drugs.txt:" in capsys.readouterr().err
    version = store.pointer("wordlist", "live")
    meta = store.meta("wordlist", version)
    assert meta is not None and meta["forced"] is True and meta["author"] == "carol"
    assert len(meta["findings"]) == 1 and "duplicate" in meta["findings"][0]
    event = store.events("wordlist")[0]
    assert (event["action"], event["author"], event["reason"]) == ("publish", "carol",
                                                                   "hotfix, dedupe later")
    assert event["forced"] is True and "duplicate" in event["findings"][0]
    assert cmd_status(_args(), settings) == 0
    assert "by carol, forced past 1 finding(s), 'hotfix, dedupe later'" in capsys.readouterr().out


def test_a_benign_file_that_is_not_utf8_is_named_by_line(tmp_path: Path, redis_url: str) -> None:
    benign = tmp_path / "benign.txt"
    benign.write_bytes("你好\n明天见\n".encode() + "再见".encode("gbk") + b"\n")
    settings = Settings(redis_url=redis_url, signing_key=SIGNING_KEY)
    with pytest.raises(ScreeningError, match=r"benign.txt:3: not UTF-8 at column 1"):
        cmd_publish(_args(benign=[str(benign)]), settings)
