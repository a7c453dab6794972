"""Publishing: a bad version is refused before anything is stored (parse errors, invalid
UTF-8, no terms, benign hits, a truncated list, a tampered model); a good one is stored
with the term keys its validation computed, which workers check before using."""

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
    read_directory,
    validate_model,
    validate_wordlist,
)
from screening.operations.reload import EngineHolder
from screening.operations.versions import RedisVersionStore
from screening.settings import DEFAULT_MODEL, Settings
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import SIGNING_KEY
from tests.operations.test_reload import encoded


def test_term_keys_from_the_publisher_are_checked_before_use() -> None:
    config = load_config()
    publisher = MemoNormalizer(config.transforms)
    terms = [f"赌{i}博" for i in range(300)] + ["賭博", "ＱＱ"]
    for term in terms:
        publisher.key(term), publisher.collapsed_key(term)
    blob = publisher.export()
    worker = MemoNormalizer(config.transforms)
    assert worker.seed(blob) and worker.key("賭博") == publisher.key("賭博")
    data = json.loads(blob)
    data["keys"] = {term: key + "x" for term, key in data["keys"].items()}  # other transforms
    assert not MemoNormalizer(config.transforms).seed(json.dumps(data).encode())
    assert not MemoNormalizer(config.transforms).seed(b"not json")


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({**FIXTURE_WORDLIST, "drugs.txt": "冰毒 | block | | x | y\n"}, "at most 4 fields"),
        ({"allow.txt": "三黄片\n"}, "no terms"),
        ({**FIXTURE_WORDLIST, "abuse.txt": "你 | review\n"}, "benign"),
    ],
)
def test_validation_refuses_bad_wordlists(
    files: dict[str, str], reason: str, tokenizer: Tokenizer
) -> None:
    files = {**files, "benign.txt": "你好，明天见\n"}
    with pytest.raises(WordlistError, match=reason):
        validate_wordlist(encoded(files), tokenizer=tokenizer)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        # whitespace runs around an optional part: the shape that stalled the fleet
        (r"qq\s*(?:号)?\s*[1-9]\d{4,10}", r"patterns.txt:1: pattern 'p' can take super-linear"),
        # a shape that passes, but restarts at every copy of its own scheme
        (r"https?://[a-z/:]+\.exe", r"--force does not override this.*slow-pattern: pattern 'p'"),
    ],
)
def test_validation_refuses_a_slow_pattern_even_with_force(
    pattern: str, reason: str, tokenizer: Tokenizer
) -> None:
    files = {**FIXTURE_WORDLIST, "patterns.txt": f"p | contact_diversion | review | {pattern}\n"}
    with pytest.raises(WordlistError, match=f"(?s){reason}"):
        validate_wordlist(encoded(files), tokenizer=tokenizer, force=True)


def test_validation_refuses_invalid_utf8_and_a_truncated_list(tokenizer: Tokenizer) -> None:
    with pytest.raises(WordlistError, match="not UTF-8"):
        validate_wordlist(
            {**encoded(FIXTURE_WORDLIST), "porn.txt": b"\xff\xfe"}, tokenizer=tokenizer
        )
    with pytest.raises(WordlistError, match="truncated"):
        validate_wordlist(encoded(FIXTURE_WORDLIST), tokenizer=tokenizer, live_terms=100)
    assert validate_wordlist(
        encoded(FIXTURE_WORDLIST), tokenizer=tokenizer, live_terms=100, force=True
    )


def _args(**values: Any) -> argparse.Namespace:
    base = {"kind": "wordlist", "directory": None, "wordlists": None, "config": None,
            "shadow": False, "force": False, "wait": 0, "benign": [], "to": None}  # fmt: skip
    return argparse.Namespace(**{**base, **values})


def test_a_corrupt_publish_is_refused_and_nothing_changes(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=redis_url, signing_key=SIGNING_KEY)
    good = tmp_path / "good"
    good.mkdir()
    for name, text in FIXTURE_WORDLIST.items():
        (good / name).write_text(text, encoding="utf-8")
    assert cmd_publish(_args(directory=str(good)), settings) == 0
    store = RedisVersionStore.from_url(redis_url)
    live = store.pointer("wordlist", "live")
    assert live == Wordlist.from_files(FIXTURE_WORDLIST).version
    assert TERM_KEYS in store.files("wordlist", live)  # type: ignore[operator]
    (good / "drugs.txt").write_text("冰毒 | block | nonsense-mode\n", encoding="utf-8")
    with pytest.raises(WordlistError, match="unknown mode"):
        cmd_publish(_args(directory=str(good)), settings)
    assert store.pointer("wordlist", "live") == live and store.history("wordlist") == [live]
    with pytest.raises(ScreeningError, match="no earlier"):
        cmd_rollback(_args(), settings)


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
    assert store.meta("model", version)["model_version"] == "zh-chat-1"  # type: ignore[index]
    holder = EngineHolder(store, wordlists=fixture_wordlist_dir, model=None, worker="w")
    holder.builder.tokenizer = tokenizer
    engine = holder.load()
    assert engine.versions["model"] == "zh-chat-1" and engine.classifier is not None
    assert store.workers()["w"]["live"] == {
        "wordlist": None,
        "model": version,
        "engine": dict(engine.versions),
    }
