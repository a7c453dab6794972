"""``wordlist import``: a CSV's terms appended to a category file when they lint clean,
nothing written when they do not (unless --force), a dry run writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.cli.main import main
from screening.engine.wordlist import Wordlist


def _import(lists: Path, csv: Path, *extra: str) -> int:
    return main(["wordlist", "import", str(csv), "--category", "gambling", "--wordlists",
                 str(lists), "--author", "fay", *extra])  # fmt: skip


def test_import_appends_validated_linted_terms(
    fixture_wordlist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "new.csv"
    csv.write_text("term,severity,modes,note\n梭哈群,review,substring,赌博群\n", encoding="utf-8")
    before = (fixture_wordlist_dir / "gambling.txt").read_text(encoding="utf-8")
    assert _import(fixture_wordlist_dir, csv, "--dry-run") == 0
    assert capsys.readouterr().out.endswith("梭哈群 | review | substring | 赌博群\n")
    assert (fixture_wordlist_dir / "gambling.txt").read_text(encoding="utf-8") == before

    assert _import(fixture_wordlist_dir, csv) == 0
    after = (fixture_wordlist_dir / "gambling.txt").read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n")) and "# imported from new.csv by fay on " in after
    terms = Wordlist.load(fixture_wordlist_dir).terms
    assert [(t.text, t.category, t.note) for t in terms if t.text == "梭哈群"] == [
        ("梭哈群", "gambling", "赌博群")
    ]

    capsys.readouterr()
    assert _import(fixture_wordlist_dir, csv) == 1  # now a duplicate: lint refuses
    assert "duplicate: '梭哈群'" in capsys.readouterr().out
    assert (fixture_wordlist_dir / "gambling.txt").read_text(encoding="utf-8") == after
    assert _import(fixture_wordlist_dir, csv, "--force") == 0
    assert Wordlist.load(fixture_wordlist_dir).version != Wordlist.from_files(
        {"gambling.txt": after}).version  # fmt: skip


def test_import_into_a_new_list_and_bad_input(
    fixture_wordlist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_bytes("词,review\n".encode("gbk"))
    assert _import(fixture_wordlist_dir, csv) == 2
    assert "bad.csv:1: not UTF-8" in capsys.readouterr().err
    csv.write_text("跑分平台,block,,洗钱\n", encoding="utf-8")
    assert main(["wordlist", "import", str(csv), "--category", "money_laundering",
                 "--wordlists", str(fixture_wordlist_dir)]) == 0  # fmt: skip
    text = (fixture_wordlist_dir / "money_laundering.txt").read_text(encoding="utf-8")
    assert text.startswith("# Category: money_laundering\n") and "跑分平台 | block" in text
    assert main(["wordlist", "import", str(csv), "--category", "allow",
                 "--wordlists", str(fixture_wordlist_dir)]) == 2  # fmt: skip
