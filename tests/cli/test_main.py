"""The CLI contract (`scan`, `explain`, `wordlist lint`) on good and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from screening.cli.main import main

GOOD_AND_BAD = (
    b'{"id": 1, "text": "\xe5\xbf\xab\xe6\x9d\xa5\xe8\xb5\x8c\xe5\x8d\x9a", "group_id": "g1"}\n'  # 快来赌博
    b"not json\n"
    b'{"id": 3}\n'
    b'{"id": 4, "text": 5}\n'
    b"[1, 2]\n"
    b"\n"
    b'{"id": "x", "text": "\xe4\xbd\xa0\xe5\xa5\xbd"}\n'  # 你好
    b'{"id": 8, "text": "\xff\xfe"}\n'  # invalid UTF-8
    b'{"id": {"a": 1}, "text": "x"}\n'
)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_scan_writes_one_record_per_line_and_never_crashes(
    tmp_path: Path, fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(GOOD_AND_BAD)
    code, _, err = run_cli(
        ["scan", str(source), str(sink), "--wordlists", str(fixture_wordlist_dir)], capsys
    )
    assert code == 0
    records = [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["id"], r["decision"]) for r in records] == [
        (1, 1, "block"),
        (2, None, "error"),
        (3, 3, "error"),
        (4, 4, "error"),
        (5, None, "error"),
        (7, "x", "pass"),
        (8, None, "error"),
        (9, None, "error"),
    ]
    assert records[0]["hits"][0] | {"transforms": []} == {
        "term": "赌博", "category": "gambling", "severity": "block", "start": 2, "end": 4,
        "start_utf16": 2, "end_utf16": 4, "matched": "赌博", "transforms": [],
        "source": "wordlist",
    }  # fmt: skip
    reasons = [r["error"] for r in records if r["decision"] == "error"]
    assert reasons == [
        "not valid JSON: Expecting value (column 1)",
        "missing field 'text'",
        "'text' must be a string, got int",
        "expected a JSON object, got list",
        "line is not valid UTF-8: invalid start byte at byte 19",
        "'id' must be a string or a number",
    ]
    assert "screened 8 lines: 1 pass, 0 review, 1 block, 6 error" in err


def test_a_lone_surrogate_is_one_error_record_and_the_file_is_still_screened(
    tmp_path: Path, fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON lets "\\ud800" through; such a text cannot be written out as UTF-8, and scan
    used to exit 1 with no output at all."""
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(
        b'{"id": 1, "text": "\\u8d4c\\ud800\\u535a"}\n'
        b'{"id": "\\udc00", "text": "hi"}\n'
        b'{"id": 3, "text": "\\u8d4c\\u535a"}\n'
    )
    code, _, _ = run_cli(
        ["scan", str(source), str(sink), "--wordlists", str(fixture_wordlist_dir)], capsys
    )
    assert code == 0
    records = [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["id"], r["decision"]) for r in records] == [
        (1, 1, "error"), (2, None, "error"), (3, 3, "block"),
    ]  # fmt: skip
    assert records[0]["error"] == "'text' is not valid Unicode: a lone surrogate at 1"


def test_scan_plain_text_from_stdin_to_stdout(
    fixture_wordlist_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("賭博\n你好\n".encode())))
    code, out, _ = run_cli(["scan", "--text", "--wordlists", str(fixture_wordlist_dir)], capsys)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["decision"], r["line"]) for r in records] == [("block", 1), ("pass", 2)]
    assert records[0]["hits"][0]["transforms"] == ["t2s"]


def test_explain_shows_every_step(
    fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        ["explain", "看 賭😀博 吧", "--wordlists", str(fixture_wordlist_dir)], capsys
    )
    assert code == 0
    assert "folded     看 赌😀博 吧" in out
    assert "compact    看赌博吧" in out
    assert "tokens     看 / 赌博 / 吧" in out
    assert "hits       看 【賭😀博】 吧" in out
    assert "transforms: noise, t2s" in out
    assert "gambling: 1.000" in out
    assert "decision   BLOCK" in out


def test_explain_json(fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["explain", "dubo", "--json", "--wordlists", str(fixture_wordlist_dir)], capsys
    )
    explanation = json.loads(out)
    assert code == 0
    assert explanation["decision"] == "block"
    assert explanation["hits"][0]["transforms"] == ["pinyin"]


def test_malformed_wordlist_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gambling.txt").write_text("赌博 | forbid\n", encoding="utf-8")
    code, _, err = run_cli(["explain", "x", "--wordlists", str(tmp_path)], capsys)
    assert code == 2
    assert f"{tmp_path}/gambling.txt:1: unknown severity 'forbid'" in err


def test_lint_reports_duplicates_shadowed_and_benign_hits(
    fixture_wordlist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fixture_wordlist_dir / "fraud.txt").write_text("賭博 | review\n刷单\n", encoding="utf-8")
    (fixture_wordlist_dir / "allow.txt").write_text("三黄片\n刷单\n", encoding="utf-8")
    (fixture_wordlist_dir / "benign.txt").write_text("我在读博\n今晚看黄片吗\n", encoding="utf-8")
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        '{"text": "口交", "labels": []}\n{"text": "赌博", "labels": ["gambling"]}\n',
        encoding="utf-8",
    )
    code, out, _ = run_cli(
        ["wordlist", "lint", "--wordlists", str(fixture_wordlist_dir), "--benign", str(extra)],
        capsys,
    )
    assert code == 1
    lines = out.splitlines()
    assert any(
        "gambling.txt:1: duplicate: '赌博'" in line and "fraud.txt:1" in line for line in lines
    )
    assert any("fraud.txt:2: shadowed: '刷单'" in line for line in lines)
    assert any(
        "porn.txt:1: benign-hit: '黄片'" in line and "今晚看黄片吗" in line for line in lines
    )
    assert any("porn.txt:2: benign-hit: '口交'" in line for line in lines)
    assert not any("读博" in line for line in lines)
    assert len(lines) == 4


def test_lint_shows_progress_on_a_terminal_only(
    fixture_wordlist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("今天天气不错\n" * 600, encoding="utf-8")
    args = ["wordlist", "lint", "--wordlists", str(fixture_wordlist_dir), "--benign", str(extra)]
    _, _, err = run_cli(args, capsys)
    assert "benign messages" not in err  # a log file gets no carriage returns

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    main(args)
    assert "benign messages: 100%" in terminal.getvalue() and "600/600" in terminal.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _long_inputs(tmp_path: Path) -> dict[str, Path]:
    messages = tmp_path / "messages.jsonl"
    messages.write_text("".join(json.dumps({"id": f"m{n}", "text": "今天天气不错"}) + "\n"
                                for n in range(300)), encoding="utf-8")  # fmt: skip
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({"text": "冰毒出售", "labels": ["drugs"]}) + "\n"
                                for _ in range(300)), encoding="utf-8")  # fmt: skip
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_text("".join(json.dumps({
        "kind": "verdict", "at": 1_714_500_000 + n, "message_id": f"m{n}", "group_id": "g1",
        "user_id": "u1", "detail": {"text": "x", "sent_at": 1_714_500_000 + n,
                                    "decision": "review", "labels": [], "categories": {}}})
        + "\n" for n in range(300)), encoding="utf-8")  # fmt: skip
    return {"messages": messages, "labelled": labelled, "verdicts": verdicts}


@pytest.mark.parametrize(
    ("command", "bar"),
    [
        (["scan", "{messages}", "{out}", "--model", "none"], "scan: 100%"),
        (["eval", "{labelled}", "--model", "none"], "eval: 100%"),
        (["policy", "simulate", "{verdicts}"], "simulate: 100%"),
        (["records", "export", "--from", "2024-01-01", "--to", "2025-01-01",
          "--database-url", "sqlite:///{db}"], "records: "),
    ],
)  # fmt: skip
def test_long_commands_draw_a_bar_on_a_terminal_and_stay_quiet_when_piped(
    command: list[str], bar: str, tmp_path: Path, fixture_wordlist_dir: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    paths = {**_long_inputs(tmp_path), "out": tmp_path / "out.jsonl", "db": tmp_path / "r.db"}
    args = [part.format(**paths) for part in command]
    monkeypatch.setenv("SCREENING_WORDLISTS", str(fixture_wordlist_dir))
    assert main(args) in (0, 1)
    piped = capsys.readouterr().err
    assert bar.split(":")[0] + ":" not in piped and "\r" not in piped
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(args) in (0, 1)
    drawn = terminal.getvalue()
    assert bar in drawn and "\r" in drawn
    if piped:  # the summary line still ends the output, after the bar
        assert drawn.rstrip("\n").splitlines()[-1] == piped.rstrip("\n").splitlines()[-1]


def test_lint_refuses_a_pattern_that_backtracks_naming_file_line_and_fix(
    fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fixture_wordlist_dir / "patterns.txt").write_text(
        "# a keyword, optional parts between whitespace runs, then the number\n"
        "qq | contact_diversion | review | qq\\s*(?:号)?\\s*[1-9]\\d{4,10}\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(["wordlist", "lint", "--wordlists", str(fixture_wordlist_dir)], capsys)
    assert code == 2 and out == ""
    assert f"{fixture_wordlist_dir}/patterns.txt:2: pattern 'qq' can take super-linear time" in err
    assert "`\\s*` and `\\s*` can share a run of spaces" in err and "(`\\s*+`)" in err


def test_lint_reports_a_pattern_slow_on_adversarial_input(
    fixture_wordlist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shape the static check passes but that restarts at every copy of its own scheme."""
    (fixture_wordlist_dir / "patterns.txt").write_text(
        "url | contact_diversion | watch | https?://[a-z/:]+\\.exe\n", encoding="utf-8"
    )
    code, out, _ = run_cli(["wordlist", "lint", "--wordlists", str(fixture_wordlist_dir)], capsys)
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(f"{fixture_wordlist_dir}/patterns.txt:1: slow-pattern: pattern 'url' ")
    assert "'http://a' × " in line and "super-linearly" in line and "lookbehind" in line


def test_entry_point_and_exit_codes(tmp_path: Path) -> None:
    """The installed console script is what evaluators call."""
    script = Path(sys.executable).with_name("screening")
    result = subprocess.run(
        [str(script), "scan", "--text", "--wordlists", str(tmp_path / "missing")],
        input=b"x\n", capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert b"wordlist directory not found" in result.stderr


@pytest.mark.parametrize("batch", [1, 2, 3, 256])
def test_scan_output_follows_input_whatever_the_batch_size(engine, batch: int) -> None:
    from screening.cli.main import scan_lines

    records = list(scan_lines(engine, iter(GOOD_AND_BAD.splitlines(keepends=True)), plain_text=False, batch=batch))
    assert [(r["line"], r["decision"]) for r in records] == [
        (1, "block"), (2, "error"), (3, "error"), (4, "error"), (5, "error"), (7, "pass"), (8, "error"), (9, "error")
    ]  # fmt: skip


def test_scan_and_explain_parse_alike_without_the_other_command_modules() -> None:
    """`scan` and `explain` are parsed by a parser holding only them (start-up: the
    console, enforcer and service modules are not imported), to the same arguments as by
    the whole command line; `--help` still lists every command."""
    from screening.cli.main import build_parser

    for argv in (["scan", "in.jsonl", "out.jsonl", "--model", "none", "--text"],
                 ["explain", "快来赌博", "--json", "--wordlists", "w"]):  # fmt: skip
        assert vars(build_parser(engine_only=True).parse_args(argv)) == vars(
            build_parser().parse_args(argv)
        )
    probe = """
import sys
from screening.cli.main import main
try:
    main(["scan", "--help"])
except SystemExit:
    pass
print(sorted(m for m in sys.modules
             if m.startswith(("screening.console", "screening.enforcement", "screening.service"))))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert "usage: screening scan" in out and out.rstrip().endswith("[]"), out
    full = subprocess.run([sys.executable, "-m", "screening.cli", "--help"],
                          capture_output=True, text=True)  # fmt: skip
    assert "records" in full.stdout and "serve" in full.stdout
