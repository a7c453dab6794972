"""The boot version: a worker that starts from its configured files stores them as the
first version, so the first publish can be rolled back — to the previous version or by
the on-disk version's id — and ``status`` says what was rolled back from. Real Redis."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.operations.boot import boot_versions, seed_boot_versions
from screening.operations.publish import cmd_publish, cmd_rollback, cmd_status
from screening.operations.reload import EngineHolder
from screening.operations.versions import RedisVersionStore
from screening.operations.versions_memory import MemoryVersionStore
from screening.pipeline.signing import SigningKeys
from screening.settings import DEFAULT_MODEL, Settings
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import SIGNING_KEY


def _args(**values: Any) -> argparse.Namespace:
    base = {"kind": "wordlist", "directory": None, "wordlists": None, "config": None,
            "model": "none", "banks": "none", "shadow": False, "force": False, "wait": 0,
            "benign": [], "to": None, "author": "alice", "reason": None}  # fmt: skip
    return argparse.Namespace(**{**base, **values})


def _edited(tmp_path: Path) -> Path:
    edited = tmp_path / "edited"
    edited.mkdir(parents=True)
    for name, text in FIXTURE_WORDLIST.items():
        (edited / name).write_text(text, encoding="utf-8")
    with (edited / "gambling.txt").open("a", encoding="utf-8") as handle:
        handle.write("梭哈群 | review | substring | 赌博群\n")
    return edited


def test_the_first_publish_rolls_back_to_what_the_workers_booted_from(
    redis_url: str, fixture_wordlist_dir: Path, tmp_path: Path, tokenizer: Tokenizer,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    store = RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))
    holder = EngineHolder(store, wordlists=fixture_wordlist_dir, model=None, worker="w1")
    holder.builder.tokenizer = tokenizer
    boot = holder.load().versions["wordlist"]
    assert boot == Wordlist.load(fixture_wordlist_dir).version
    assert store.history("wordlist") == [boot] and store.pointer("wordlist", "live") is None
    assert store.meta("wordlist", boot)["boot"] and store.meta("wordlist", boot)["author"] == "w1"
    assert store.history("model") == []  # no model configured: nothing to store

    settings = Settings(redis_url=redis_url, signing_key=SIGNING_KEY,
                        wordlists=fixture_wordlist_dir)  # fmt: skip
    assert cmd_publish(_args(directory=str(_edited(tmp_path)), reason="梭哈群 spam"), settings) == 0
    new = store.pointer("wordlist", "live")
    assert store.history("wordlist") == [new, boot]
    holder.refresh()
    assert holder.live.versions["wordlist"] == new  # type: ignore[union-attr]

    assert cmd_rollback(_args(author="bob"), settings) == 0  # the runbook's "roll back at once"
    holder.refresh()
    assert holder.live.versions["wordlist"] == boot  # type: ignore[union-attr]
    capsys.readouterr()
    assert cmd_status(_args(), settings) == 0
    out = capsys.readouterr().out
    assert f"wordlist: live {boot}, shadow -, rolled back from {new} at " in out
    assert "by bob" in out and "boot version, by w1" in out

    assert cmd_publish(_args(directory=str(_edited(tmp_path / "again"))), settings) == 0
    assert cmd_rollback(_args(to=boot), settings) == 0  # --to the on-disk version
    assert store.pointer("wordlist", "live") == boot
    # a second worker booting later stores nothing: the history exists
    other = EngineHolder(store, wordlists=_edited(tmp_path / "other"), model=None, worker="w2")
    other.builder.tokenizer = tokenizer
    other.load()
    assert store.history("wordlist")[0] == boot
    events = store.events("wordlist")
    assert [e["action"] for e in events] == ["rollback", "publish", "rollback", "publish", "boot"]
    assert (events[3]["author"], events[3]["reason"]) == ("alice", "梭哈群 spam")


def test_a_directory_changed_since_the_engine_was_built_is_not_stored(
    fixture_wordlist_dir: Path,
) -> None:
    store = MemoryVersionStore()
    found = boot_versions(fixture_wordlist_dir, None, None)
    assert seed_boot_versions(store, found, author="w", running={"wordlist": "other"}) == []
    assert store.history("wordlist") == []
    found = boot_versions(fixture_wordlist_dir, None, None)
    assert [b.kind for b in seed_boot_versions(store, found, author="w")] == ["wordlist"]
    found = boot_versions(fixture_wordlist_dir, None, None)
    assert seed_boot_versions(store, found, author="w") == []  # only the first seed counts


def test_a_model_boot_version_is_stored_under_its_digest_and_named_by_its_manifest() -> None:
    if not (DEFAULT_MODEL / "manifest.json").is_file():
        pytest.skip("no shipped model")
    (wordlist, model) = boot_versions(Path("wordlists"), DEFAULT_MODEL, None)
    assert model.kind == "model" and model.name == DEFAULT_MODEL.name
    assert model.meta["model_version"] == DEFAULT_MODEL.name and len(model.version) == 12
    assert "manifest.json" in model.files and wordlist.kind == "wordlist"
