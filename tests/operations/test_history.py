"""Reading versions back: names resolve (live, shadow, ids, a model's manifest name), two
wordlists compare term by term, a version exports only into an empty directory, and a
record describes who published it and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError
from screening.operations.history import (
    describe_record,
    diff_wordlists,
    export_version,
    resolve_version,
    version_files,
)
from screening.operations.versions_memory import MemoryVersionStore

BEFORE = {
    "drugs.txt": "冰毒 | block | substring | 甲基苯丙胺\n麻古 | review\n",
    "gambling.txt": "百家乐 | review\n",
    "allow.txt": "冰毒宣传\n",
}


@pytest.mark.parametrize(
    ("after", "rendered"),
    [
        ({**BEFORE, "drugs.txt": BEFORE["drugs.txt"] + "K粉 | block\n"},
         ["+ term drugs/K粉  severity=block  modes=substring"]),
        ({**BEFORE, "gambling.txt": "# emptied\n"}, ["- term gambling/百家乐  severity=review  "
                                                     "modes=substring"]),
        ({**BEFORE, "drugs.txt": "冰毒 | review | substring,pinyin | 甲基苯丙胺\n麻古 | review\n"},
         ["~ term drugs/冰毒  severity block -> review; modes substring -> pinyin,substring"]),
        ({**BEFORE, "allow.txt": ""}, ["- allow 冰毒宣传  "]),
        ({**BEFORE, "patterns.txt": r"qq | contact_diversion | review | qq\d{5,}" + "\n"},
         [r"+ pattern contact_diversion/qq  severity=review  regex=qq\d{5,}"]),
        (BEFORE, []),
    ],
)  # fmt: skip
def test_diff_names_each_added_removed_and_changed_entry(
    after: dict[str, str], rendered: list[str]
) -> None:
    diff = diff_wordlists(Wordlist.from_files(BEFORE), Wordlist.from_files(after))
    assert [c.render() for c in [*diff.added, *diff.removed, *diff.changed]] == rendered


def test_names_resolve_to_stored_versions() -> None:
    store = MemoryVersionStore()
    store.publish("model", "abc123", {"manifest.json": b"{}"}, {"model_version": "zh-chat-2"})
    store.publish("model", "def456", {"manifest.json": b"{ }"}, {"model_version": "zh-chat-3"},
                  slot="shadow")  # fmt: skip
    assert resolve_version(store, "model", "zh-chat-2") == "abc123"
    assert resolve_version(store, "model", "live") == "abc123"
    assert resolve_version(store, "model", "shadow") == "def456"
    assert resolve_version(store, "model", "unknown") == "unknown"
    with pytest.raises(ConfigError, match="no shadow wordlist"):
        resolve_version(store, "wordlist", "shadow")
    with pytest.raises(ConfigError, match="not stored"):
        version_files(store, "wordlist", "unknown")


def test_export_writes_a_version_into_an_empty_directory_only(tmp_path: Path) -> None:
    written = export_version({"drugs.txt": b"x\n", "porn.txt": b"y\n"}, tmp_path / "out")
    assert [p.name for p in written] == ["drugs.txt", "porn.txt"]
    assert (tmp_path / "out" / "drugs.txt").read_bytes() == b"x\n"
    with pytest.raises(ConfigError, match="not empty"):
        export_version({"drugs.txt": b"z\n"}, tmp_path / "out")
    with pytest.raises(ConfigError, match="refusing to write"):
        export_version({"../evil.txt": b""}, tmp_path / "other")


@pytest.mark.parametrize(
    ("meta", "text"),
    [
        ({}, ""),
        ({"author": "alice"}, "by alice"),
        ({"boot": True, "author": "host:12"}, "boot version, by host:12"),
        ({"author": "bob", "forced": True, "findings": ["a", "b"], "reason": "spam wave"},
         "by bob, forced past 2 finding(s), 'spam wave'"),
    ],
)  # fmt: skip
def test_a_record_says_who_and_why(meta: dict, text: str) -> None:
    assert describe_record(meta) == text
