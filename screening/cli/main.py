"""The ``screening`` command line: a stable contract that tests and evaluators call.

``scan`` reads JSONL (or plain text lines with ``--text``) and writes one JSON verdict per
input line, in order. A bad line becomes an error record for that line — the rest of the
file is still screened, and the output stays aligned with the input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from screening.engine.characters import lone_surrogate
from screening.engine.core import Engine
from screening.engine.explain import explain, render_explanation
from screening.engine.heap import settle_heap
from screening.errors import InvalidMessage, ScreeningError
from screening.progress import progress_callback, tracked_bytes
from screening.settings import Settings, model_path

__all__ = ["main"]


def _engine(args: argparse.Namespace, settings: Settings) -> Engine:
    engine = Engine.load(
        args.wordlists or settings.wordlists,
        args.config or settings.config,
        model=model_path(args.model, settings.model),
        banks=model_path(args.banks, settings.banks),
        model_cache=settings.model_cache,
    )
    settle_heap()
    return engine


def parse_scan_line(raw: bytes, *, plain_text: bool) -> tuple[Any, str]:
    """``(id, text)`` from one input line; raises :class:`InvalidMessage` with the reason.

    orjson reads the line when it can (4x faster than ``json``); whatever it refuses goes
    through ``json`` and is accepted or refused with the reason as before (orjson is
    stricter: no NaN, no integers past 64 bits, no lone surrogates)."""
    if not plain_text:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                message_id = record.get("id")
                if not isinstance(message_id, dict | list):
                    return message_id, record["text"]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"line is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    line = line.rstrip("\r\n")
    if plain_text:
        return None, line
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"not valid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(record, dict):
        raise InvalidMessage(f"expected a JSON object, got {type(record).__name__}")
    message_id = record.get("id")
    if isinstance(message_id, dict | list):
        raise InvalidMessage("'id' must be a string or a number")
    if "text" not in record:
        raise InvalidMessage("missing field 'text'")
    if not isinstance(record["text"], str):
        raise InvalidMessage(f"'text' must be a string, got {type(record['text']).__name__}")
    for name, value in (("id", message_id), ("text", record["text"])):
        index = lone_surrogate(value) if isinstance(value, str) else None
        if index is not None:
            raise InvalidMessage(f"'{name}' is not valid Unicode: a lone surrogate at {index}")
    return message_id, record["text"]


def _id_if_any(raw: bytes) -> Any:
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    found = record.get("id") if isinstance(record, dict) else None
    if isinstance(found, str) and lone_surrogate(found) is not None:
        return None  # it could not be written out
    return found if isinstance(found, str | int | float) else None


#: Lines screened together: the model scores a batch in one product (~10x cheaper per
#: message than one at a time), while output still follows input line by line.
SCAN_BATCH = 256


def scan_lines(
    engine: Engine, lines: Iterator[bytes], *, plain_text: bool, batch: int = SCAN_BATCH
) -> Iterator[dict[str, Any]]:
    """One output record per non-blank input line, in input order: a verdict or an error."""
    pending: list[tuple[int, bytes, Any, str | None, str | None]] = []  # line, raw, id, text, error

    def flush() -> Iterator[dict[str, Any]]:
        screenable = [(mid, text) for _, _, mid, text, _ in pending if text is not None]
        verdicts = iter(engine.screen_batch(screenable))
        for number, raw, _, text, error in pending:
            if text is None:
                record = {"id": _id_if_any(raw), "decision": "error", "error": error}
            else:
                record = next(verdicts).to_dict()
            record["line"] = number
            yield record
        pending.clear()

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            message_id, text = parse_scan_line(raw, plain_text=plain_text)
            pending.append((number, raw, message_id, text, None))
        except InvalidMessage as exc:
            pending.append((number, raw, None, None, str(exc)))
        if len(pending) >= batch:
            yield from flush()
    yield from flush()


def _open_in(path: str | None) -> IO[bytes]:
    return sys.stdin.buffer if path in (None, "-") else open(path, "rb")


def _open_out(path: str | None) -> IO[bytes]:
    return sys.stdout.buffer if path in (None, "-") else open(path, "wb")


def _dump(record: dict[str, Any]) -> bytes:
    """One output line: orjson, or ``json`` for what orjson would refuse (an integer id
    past 64 bits) or write differently (a NaN id ``json`` let in)."""
    message_id = record.get("id")
    if not (isinstance(message_id, float) and not math.isfinite(message_id)):
        try:
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            pass
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(args, settings)
    counts: Counter[str] = Counter()
    source, sink = _open_in(args.input), _open_out(args.output)
    lines: Iterator[bytes] = iter(source)
    if source is not sys.stdin.buffer:  # a file: its size is known, a bar makes sense
        lines = tracked_bytes(lines, "scan", total=os.fstat(source.fileno()).st_size)
    try:
        for record in scan_lines(engine, lines, plain_text=args.text):
            counts[record["decision"]] += 1
            sink.write(_dump(record))
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        if sink is not sys.stdout.buffer:
            sink.close()
        else:
            sink.flush()
    summary = ", ".join(f"{counts[d]} {d}" for d in ("pass", "review", "block", "error"))
    print(f"screened {sum(counts.values())} lines: {summary}", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    explanation = explain(_engine(args, settings), args.message)
    if args.json:
        print(json.dumps(explanation, ensure_ascii=False, indent=2))
    else:
        print(render_explanation(explanation))
    return 0


def cmd_wordlist_lint(args: argparse.Namespace, settings: Settings) -> int:
    from screening.engine.lint import lint_wordlist, read_benign_records

    # Lint judges the lists: the model would only slow the benign scan down.
    engine = Engine.load(args.wordlists or settings.wordlists, args.config or settings.config)
    extra = [record for path in args.benign for record in read_benign_records(Path(path))]
    findings = lint_wordlist(engine, extra_benign=extra, progress=_progress_line())
    for finding in findings:
        print(finding.render())
    terms = len(engine.wordlist.terms)
    print(
        f"{terms} terms, {len(engine.wordlist.allow)} allowed, {len(engine.wordlist.patterns)} "
        f"patterns, version {engine.wordlist.version}: {len(findings)} finding(s)",
        file=sys.stderr,
    )
    return 1 if findings else 0


def _progress_line() -> Callable[[int, int], None] | None:
    """The benign-corpus progress bar of the lint commands (stderr on a terminal only)."""
    return progress_callback("benign messages", unit="msg")


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from screening.training.train import cmd_train  # scikit-learn takes seconds to import

    return cmd_train(args, settings)


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from screening.evaluation.evaluate import cmd_eval

    return cmd_eval(args, settings)


#: Commands defined in this module. Parsing one of them needs none of the other command
#: modules, whose imports (the console, the enforcer, the HTTP service: ~0.5 s of CPU)
#: would otherwise be paid by every ``scan`` — the start-up of issue 15.
ENGINE_COMMANDS = frozenset({"scan", "explain"})


def build_parser(engine_only: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with ``engine_only``, only :data:`ENGINE_COMMANDS` (what
    :func:`main` builds when one of them is asked for, so ``--help`` still lists all)."""
    parser = argparse.ArgumentParser(prog="screening", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--wordlists", help="wordlist directory (default: $SCREENING_WORDLISTS)")
    common.add_argument("--config", help="engine config TOML (default: $SCREENING_CONFIG)")
    common.add_argument(
        "--model", help="model directory or 'none' (default: $SCREENING_MODEL, else shipped)"
    )
    common.add_argument(
        "--banks", help="text bank directory or 'none' (default: $SCREENING_BANKS, else banks/)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", parents=[common], help="screen JSONL messages")
    scan.add_argument("input", nargs="?", help="input file (default: stdin)")
    scan.add_argument("output", nargs="?", help="output file (default: stdout)")
    scan.add_argument("--text", action="store_true", help="input lines are plain text")
    scan.set_defaults(handler=cmd_scan)

    explain_cmd = commands.add_parser(
        "explain", parents=[common], help="show why a message gets its verdict"
    )
    explain_cmd.add_argument("message")
    explain_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    explain_cmd.set_defaults(handler=cmd_explain)
    if engine_only:
        return parser

    wordlist = commands.add_parser("wordlist", help="wordlist tools")
    wordlist_commands = wordlist.add_subparsers(dest="wordlist_command", required=True)
    lint = wordlist_commands.add_parser("lint", parents=[common], help="check the wordlists")
    lint.add_argument(
        "--benign",
        action="append",
        default=[],
        help="extra benign corpus (text lines or JSONL with 'text'); repeatable",
    )
    lint.set_defaults(handler=cmd_wordlist_lint)

    from screening.cli.imports import add_import_command  # wordlist import FILE.csv

    add_import_command(wordlist_commands, common)

    train = commands.add_parser("train", parents=[common], help="train a classifier model")
    reviewed = "'records export --kind review --kind verdict' file"
    train.add_argument("--data", action="append", required=True,
                       help="labelled JSONL, 'records:' (the audit store's reviewed records) "
                       f"or a {reviewed}; repeatable")  # fmt: skip
    train.add_argument("--out", required=True, help="model directory, e.g. models/<version>/")
    train.add_argument("--version", help="model version (default: the --out directory name)")
    train.add_argument("--eval", action="append", default=[], help="evaluation-only JSONL")
    train.add_argument("--notes", help="markdown appended to MODEL.md as notes and limitations")
    train.add_argument(
        "--frames", help="JSONL context frames: labelled texts quoted in warnings, as benign"
    )
    train.add_argument("--context-terms", help="words that mark warnings and news, one a line")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-features", type=int, default=60_000, help="vocabulary cap")
    train.add_argument("--no-wordlists", action="store_true", help="--eval: model figures only")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", parents=[common], help="measure on labelled JSONL")
    evaluate.add_argument("data", help="labelled JSONL (text, labels)")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.add_argument("--worst", type=int, default=10, help="errors listed per kind")
    evaluate.add_argument("--batch-size", type=int, default=512)
    evaluate.set_defaults(handler=_eval)

    from workers.commands import add_pipeline_commands  # run, worker, callbacks replay

    add_pipeline_commands(commands, common)

    from screening.cli.enforcement import add_enforcement_commands  # policy, records

    add_enforcement_commands(commands, common)

    from screening.cli.terms import add_terms_commands  # terms stats

    add_terms_commands(commands)

    from screening.cli.operations import add_operations_commands  # publish, shadow, compare

    add_operations_commands(commands, common, wordlist_commands, evaluate)

    from screening.cli.service import add_service_commands  # serve (the HTTP API)

    add_service_commands(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(engine_only=bool(words) and words[0] in ENGINE_COMMANDS).parse_args(argv)
    settings = Settings.from_env()
    try:
        return args.handler(args, settings)
    except (ScreeningError, OSError) as exc:
        print(f"screening: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0

