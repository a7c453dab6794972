"""``screening bank lint [--banks DIR] [--benign FILE]...``: check text banks before they ship.

Loads the banks exactly as workers do (a malformed row stops it with its file and line,
exit 2), then prints one line per finding of :func:`screening.engine.bank_lint.lint_banks`
— entries benign messages are near duplicates of, entries that duplicate an earlier one —
and a summary on stderr; exit 1 with findings, 0 without. The benign messages are the
wordlists' ``benign.txt`` plus each ``--benign`` file (text lines, or JSONL whose labelled
rows are skipped: COLD's safe rows are checked, its offensive ones are not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from screening.cli.main import _progress_line  # the wordlist lint's progress line
from screening.engine.bank_lint import lint_banks
from screening.engine.banks import BankMatcher, read_bank_files
from screening.engine.config import load_config
from screening.engine.lint import read_benign_records
from screening.engine.normalize import Normalizer
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError
from screening.settings import Settings, model_path

__all__ = ["cmd_bank_lint"]


def cmd_bank_lint(args: argparse.Namespace, settings: Settings) -> int:
    directory = model_path(args.banks, settings.banks)
    if directory is None:
        raise ConfigError("no bank directory: --banks DIR or SCREENING_BANKS")
    config = load_config(args.config or settings.config)
    files = read_bank_files(directory)
    matcher = BankMatcher(files, Normalizer(config.transforms), config.banks)
    corpus = Wordlist.load(args.wordlists or settings.wordlists).benign
    benign = [(f"benign.txt#{i}", text) for i, text in enumerate(corpus, start=1)]
    benign += [record for path in args.benign for record in read_benign_records(Path(path))]
    findings = lint_banks(matcher, files, benign, progress=_progress_line())
    for finding in findings:
        print(finding.render())
    print(
        f"{matcher.size} entries in {len(matcher.banks)} bank(s) of {directory}, version "
        f"{matcher.version}, checked against {len(benign):,} benign messages: "
        f"{len(findings)} finding(s)",
        file=sys.stderr,
    )
    return 1 if findings else 0
