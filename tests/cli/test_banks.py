"""The bank commands: `bank lint` exit codes and findings, and `--banks` on scan/explain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.cli.main import main
from tests.fixtures.engine import BANK_TEXTS, FIXTURE_BANKS

REFUND = next(text for _, entry_id, _, text in BANK_TEXTS if entry_id == "refund")


@pytest.fixture()
def banks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "banks"
    directory.mkdir()
    for name, text in FIXTURE_BANKS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_lint_passes_clean_banks_and_reports_benign_matches(
    banks_dir: Path, tmp_path: Path, fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--banks", str(banks_dir), "--wordlists", str(fixture_wordlist_dir)]
    code, out, err = run(["bank", "lint", *common], capsys)
    assert (code, out) == (0, "")
    assert "4 entries in 2 bank(s)" in err and ": 0 finding(s)" in err

    benign = tmp_path / "benign.jsonl"
    rows = [{"text": "警惕！" + REFUND, "labels": []},  # a warning that quotes the script whole
            {"text": REFUND, "labels": ["fraud"]}]  # labelled rows are not benign examples
    benign.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    code, out, err = run(["bank", "lint", *common, "--benign", str(benign)], capsys)
    assert code == 1
    assert out.startswith("scams.jsonl:1: benign: entry 'refund' is near-duplicated by 1 benign "
                          "message(s): benign.jsonl:1 (")  # fmt: skip
    assert ": 1 finding(s)" in err


def test_lint_stops_on_a_malformed_bank_naming_file_and_line(
    banks_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (banks_dir / "scams.jsonl").write_text(
        FIXTURE_BANKS["scams.jsonl"] + '{"id": "x", "text": "短", "category": "fraud"}\n'
    )
    code, _, err = run(["bank", "lint", "--banks", str(banks_dir)], capsys)
    assert code == 2
    assert "scams.jsonl:3: missing note" in err


def test_scan_and_explain_use_the_banks_flag(
    banks_dir: Path, fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = banks_dir / "in.txt"  # (the wordlist directory would take it for a list)
    source.write_text(REFUND + "\n", encoding="utf-8")
    base = ["--wordlists", str(fixture_wordlist_dir), "--model", "none"]
    code, out, _ = run(["scan", "--text", str(source), *base, "--banks", str(banks_dir)], capsys)
    verdict = json.loads(out)
    assert code == 0 and verdict["decision"] == "block"
    assert verdict["labels"] == [{"category": "fraud", "decision": "block", "source": "bank:scams",
                                  "score": 1.0, "entry": "refund", "similarity": 1.0}]  # fmt: skip
    assert "bank" in verdict["versions"]
    code, out, _ = run(["scan", "--text", str(source), *base, "--banks", "none"], capsys)
    assert json.loads(out)["decision"] == "pass"
    code, out, _ = run(["explain", REFUND, *base, "--banks", str(banks_dir)], capsys)
    assert "fraud: block by bank:scams (1.000), entry refund, similarity 1.0" in out
