"""``screening wordlist import FILE.csv --category C``: terms from a spreadsheet into
``<C>.txt``, validated row by row (:mod:`screening.engine.wordlist_csv`) and linted with the
rest of the lists before anything is written.

    screening wordlist import terms.csv --category gambling [--wordlists DIR] [--benign F]
        [--dry-run] [--force]

The rows are appended to the category file (created when new) under a comment naming the
CSV, the user and the date, so the import stays one reviewable block in the file's history.
Lint findings (a term already listed, one the allow-list cancels, one that hits a benign
message) refuse the import unless ``--force``; nothing is written on a refusal. Publishing
is a separate step (``wordlist publish``), which lints again.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Any

from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.lint import lint_wordlist, read_benign_records
from screening.engine.text_files import decode_files, decode_utf8
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist, category_file
from screening.engine.wordlist_csv import csv_terms
from screening.progress import progress_bar
from screening.settings import Settings

__all__ = ["add_import_command", "cmd_wordlist_import"]


def _block(csv_path: Path, lines: list[tuple[int, str]], author: str) -> str:
    day = time.strftime("%Y-%m-%d")
    rows = "".join(f"{line}\n" for _, line in lines)
    return f"\n# imported from {csv_path.name} by {author} on {day}\n{rows}"


def cmd_wordlist_import(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.wordlists or settings.wordlists)
    name = category_file(args.category)
    csv_path = Path(args.file)
    lines = csv_terms(decode_utf8(csv_path.read_bytes(), str(csv_path)), args.category,
                      str(csv_path))  # fmt: skip
    files = {p.name: p.read_bytes() for p in sorted(directory.glob("*.txt"))}
    texts = decode_files(files, origin=f"{directory}/")
    author = args.author or getpass.getuser()
    text = texts.get(name, f"# Category: {args.category}\n")
    texts[name] = text.rstrip("\n") + "\n" + _block(csv_path, lines, author)
    wordlist = Wordlist.from_files(texts, origin=f"{directory}/")
    config = load_config(args.config or settings.config)
    engine = Engine(config, wordlist, Tokenizer(config.tokenizer_backend))
    extra = [record for path in args.benign for record in read_benign_records(Path(path))]
    with progress_bar("benign messages", unit="msg") as bar:
        findings = lint_wordlist(engine, extra, bar.callback)
    for finding in findings:
        print(finding.render())
    verdict = f"{len(lines)} term(s) from {csv_path} into {directory / name}"
    if args.dry_run:
        print(_block(csv_path, lines, author).lstrip("\n"), end="")
        print(f"dry run: would import {verdict}: {len(findings)} finding(s)", file=sys.stderr)
        return 1 if findings else 0
    if findings and not args.force:
        print(f"not imported ({len(findings)} finding(s); --force to import anyway): {verdict}",
              file=sys.stderr)  # fmt: skip
        return 1
    target = directory / name
    partial = target.with_name(f".{name}.import")
    partial.write_text(texts[name], encoding="utf-8")
    os.replace(partial, target)  # a reader never sees half a file
    print(f"imported {verdict}; wordlist version {wordlist.version} (publish it with "
          "`screening wordlist publish`)", file=sys.stderr)  # fmt: skip
    return 0


def add_import_command(wordlist_commands: Any, common: argparse.ArgumentParser) -> None:
    imported = wordlist_commands.add_parser(
        "import", parents=[common], help="append terms from a CSV (term, severity, modes, note)"
    )
    imported.add_argument("file", help="CSV, UTF-8; an optional header row names the columns")
    imported.add_argument("--category", required=True, help="the list: <category>.txt")
    imported.add_argument("--benign", action="append", default=[],
                          help="extra benign corpus the new terms must not hit; repeatable")
    imported.add_argument("--author", help="named in the file's import comment (default: "
                          "the OS user)")  # fmt: skip
    imported.add_argument("--dry-run", action="store_true", help="show the lines, write nothing")
    imported.add_argument("--force", action="store_true", help="import despite lint findings")
    imported.set_defaults(handler=cmd_wordlist_import)
