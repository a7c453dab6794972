"""`screening eval --compare`: two versions backtested on labelled data, with a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.cli.main import main
from tests.fixtures.engine import FIXTURE_WORDLIST

NEW_TERM = "新型赌球"
DATA = [
    {"text": f"周末来{NEW_TERM}，稳赚", "labels": ["gambling"]},
    {"text": "一起玩百家乐", "labels": ["gambling"]},
    {"text": f"新闻说{NEW_TERM}是骗局", "labels": []},
    {"text": "明天下午开会", "labels": []},
    {"text": "冰毒有货", "labels": ["drugs"]},
]


def test_compare_scores_both_versions_and_draws_them(
    fixture_wordlist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    for name, text in FIXTURE_WORDLIST.items():
        (candidate / name).write_text(text, encoding="utf-8")
    (candidate / "gambling.txt").write_text(
        FIXTURE_WORDLIST["gambling.txt"] + f"{NEW_TERM} | block\n", encoding="utf-8"
    )
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DATA))
    plot = tmp_path / "compare.png"
    common = ["--wordlists", str(fixture_wordlist_dir), "--model", "none"]
    argv = ["eval", *common, "--compare", "live", str(candidate), str(data), "--plot", str(plot)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "decisions that differ: 2" in out
    assert f"pass → block [gambling] 周末来{NEW_TERM}，稳赚" in out
    assert f"pass → block [benign] 新闻说{NEW_TERM}是骗局" in out
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 10_000

    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    gambling = [result["systems"][s]["per_category"]["gambling"] for s in ("live", "candidate")]
    assert [g["recall"] for g in gambling] == [0.5, 1.0]
    assert [g["precision"] for g in gambling] == [1.0, pytest.approx(2 / 3)]
