"""``wordlist show|diff|export|history`` through the command line, on a real Redis: what
an analyst types after a publish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.engine.wordlist import Wordlist
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import SIGNING_KEY


def _lists(directory: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True)
    for name, text in FIXTURE_WORDLIST.items():
        (directory / name).write_text(text, encoding="utf-8")
    if extra:
        with (directory / "gambling.txt").open("a", encoding="utf-8") as handle:
            handle.write(extra)
    return directory


def test_show_diff_export_and_history_after_a_publish(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    boot_dir = _lists(tmp_path / "boot")
    monkeypatch.setenv("SCREENING_REDIS_URL", redis_url)
    monkeypatch.setenv("SCREENING_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("SCREENING_WORDLISTS", str(boot_dir))
    edited = _lists(tmp_path / "edited", "梭哈群 | review | substring | 赌博群\n")
    assert main(["wordlist", "publish", str(edited), "--wait", "0", "--author", "dora",
                 "--reason", "new gambling spam"]) == 0  # fmt: skip
    new = capsys.readouterr().out.strip()
    boot = Wordlist.load(boot_dir).version

    assert main(["wordlist", "diff", boot, "live"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "+ term gambling/梭哈群  severity=review  modes=substring  note=赌博群\n"
    assert f"wordlist {boot} -> {new}: 1 added, 0 removed, 0 changed" in captured.err
    assert main(["wordlist", "diff", str(edited), str(boot_dir), "--json"]) == 0  # no Redis
    assert [c["text"] for c in json.loads(capsys.readouterr().out)["removed"]] == ["梭哈群"]

    assert main(["wordlist", "show", "live"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wordlist {new}\n") and "  author     dora\n" in out
    assert "  reason     new gambling spam\n" in out and "gambling.txt" in out
    assert "term_keys" not in out.split("  history")[1]
    assert main(["wordlist", "show", boot, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["record"]["boot"] is True and shown["events"][-1]["action"] == "boot"

    assert main(["wordlist", "export", boot, str(tmp_path / "out")]) == 0
    assert Wordlist.load(tmp_path / "out").version == boot  # the same lists, byte for byte
    assert main(["wordlist", "export", "live", str(tmp_path / "out")]) == 2  # not empty
    capsys.readouterr()

    assert main(["wordlist", "rollback", "--wait", "0", "--author", "erin"]) == 0
    assert capsys.readouterr().out == f"{boot}\n"
    assert main(["wordlist", "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["rollback", "publish", "boot"]
    assert f"(was {new})  by erin" in lines[0] and "'new gambling spam'" in lines[1]
