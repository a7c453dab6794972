"""The operations subcommands: publishing versions, shadow reports, offline comparison.

``screening/cli/main.py`` calls :func:`add_operations_commands` once; handlers import their
modules lazily so ``screening scan`` stays quick.

    screening wordlist publish [DIR] [--shadow] [--force] [--wait S] [--benign FILE]
    screening wordlist rollback [--to VERSION] | promote | status
    screening wordlist show VERSION | diff A B | export VERSION DIR | history | import FILE.csv
    screening model publish DIR [--shadow] [--force] [--wait S] | rollback | promote
    screening bank lint [--banks DIR] [--benign FILE] | publish [DIR] [--shadow] [--force]
        [--wait S] [--benign FILE] | rollback [--to VERSION] | promote | status
    screening shadow report [--json] [--examples N] | clear [--kind K]
    screening eval --compare LIVE CANDIDATE DATA.jsonl [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from screening.cli.versions import add_history_commands
from screening.settings import Settings

__all__ = ["add_operations_commands"]

Handler = Callable[[argparse.Namespace, Settings], int]


def _lazy(module: str, name: str) -> Handler:
    """A handler that imports ``module`` only when it runs, then calls ``name`` in it."""

    def handler(args: argparse.Namespace, settings: Settings) -> int:
        command: Handler = getattr(importlib.import_module(module), name)
        return command(args, settings)

    return handler


_publish = _lazy("screening.operations.publish", "cmd_publish")
_rollback = _lazy("screening.operations.publish", "cmd_rollback")
_promote = _lazy("screening.operations.publish", "cmd_promote")
_status = _lazy("screening.operations.publish", "cmd_status")
_shadow_report = _lazy("screening.operations.shadow_report", "cmd_shadow_report")
_shadow_clear = _lazy("screening.operations.shadow_report", "cmd_shadow_clear")
_bank_lint = _lazy("screening.cli.banks", "cmd_bank_lint")


def _wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", type=float, default=10.0,
        help="seconds to wait for every worker to load it (0: do not wait; default 10)",
    )  # fmt: skip


def _benign(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--benign", action="append", default=[], help=text)


def _version_commands(sub: Any, common: argparse.ArgumentParser, kind: str) -> None:
    """publish / rollback / promote for one kind of version."""
    publish = sub.add_parser(
        "publish", parents=[common], help=f"validate and publish a {kind} version to the workers"
    )
    if kind in ("wordlist", "bank"):
        publish.add_argument(
            "directory", nargs="?", help=f"{kind} directory (default: --{kind}s)"
        )
        _benign(publish, "extra benign corpus that must stay unflagged; repeatable")
    else:
        publish.add_argument("directory", help="model directory (manifest.json and its files)")
        publish.set_defaults(benign=[])
    publish.add_argument(
        "--shadow", action="store_true", help="publish as a shadow candidate, not live"
    )
    publish.add_argument(
        "--force", action="store_true",
        help=f"publish despite lint findings, benign-corpus hits or a much smaller {kind} "
        "(never a parse error or a slow pattern); recorded with the version",
    )  # fmt: skip
    _author(publish)
    publish.add_argument("--reason", help="why: recorded with the version and in its history")
    _wait(publish)
    publish.set_defaults(handler=_publish, kind=kind)

    rollback = sub.add_parser("rollback", help=f"make the previous live {kind} version live again")
    rollback.add_argument(
        "--to", help="a specific stored version instead of the previous one (the boot version "
        "too" + (", or a model's manifest name)" if kind == "model" else ")"),
    )  # fmt: skip
    _author(rollback)
    _wait(rollback)
    rollback.set_defaults(handler=_rollback, kind=kind)

    promote = sub.add_parser("promote", help=f"make the shadow {kind} candidate live")
    _author(promote)
    _wait(promote)
    promote.set_defaults(handler=_promote, kind=kind)
    add_history_commands(sub, kind)


def _author(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--author", help="who, for the history (default: the OS user)")


def add_operations_commands(
    commands: Any,
    common: argparse.ArgumentParser,
    wordlist_commands: Any,
    evaluate: argparse.ArgumentParser,
) -> None:
    """Register the subcommands; ``wordlist_commands`` is the ``wordlist`` subparsers and
    ``evaluate`` the ``eval`` parser, which gains ``--compare``."""
    _version_commands(wordlist_commands, common, "wordlist")
    status = wordlist_commands.add_parser(
        "status", help="published versions (wordlist, model, bank) and what each worker runs"
    )
    status.set_defaults(handler=_status)

    model = commands.add_parser("model", help="model versions")
    _version_commands(model.add_subparsers(dest="model_command", required=True), common, "model")

    bank = commands.add_parser("bank", help="text banks: near duplicates of known texts")
    bank_commands = bank.add_subparsers(dest="bank_command", required=True)
    lint = bank_commands.add_parser(
        "lint", parents=[common], help="check the banks against the benign corpora"
    )
    _benign(lint, "benign corpus (text lines or JSONL with 'text'); repeatable")
    lint.set_defaults(handler=_bank_lint)
    _version_commands(bank_commands, common, "bank")
    bank_status = bank_commands.add_parser("status", help="the same as `wordlist status`")
    bank_status.set_defaults(handler=_status)

    shadow = commands.add_parser("shadow", help="shadow testing of candidate versions")
    shadow_commands = shadow.add_subparsers(dest="shadow_command", required=True)
    report = shadow_commands.add_parser("report", help="what the shadow candidate would change")
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument("--examples", type=int, default=5, help="examples per category")
    report.add_argument("--candidate", help="a candidate key from an earlier shadow run")
    report.set_defaults(handler=_shadow_report)
    clear = shadow_commands.add_parser("clear", help="stop shadowing (drop the candidate)")
    clear.add_argument("--kind", choices=("wordlist", "model", "bank", "all"), default="all")
    clear.set_defaults(handler=_shadow_clear)

    evaluate.add_argument(
        "--compare", nargs=2, metavar=("LIVE", "CANDIDATE"),
        help="backtest two versions: each 'live', 'shadow', a published version or a directory",
    )  # fmt: skip
    evaluate.add_argument("--plot", help="with --compare: write a PNG (default: compare.png)")
    plain = evaluate.get_default("handler")

    def evaluate_or_compare(args: argparse.Namespace, settings: Settings) -> int:
        if args.compare:
            from screening.operations.backtest import cmd_compare

            return cmd_compare(args, settings)
        return plain(args, settings)

    evaluate.set_defaults(handler=evaluate_or_compare)
