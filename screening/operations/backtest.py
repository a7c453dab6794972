"""``screening eval --compare LIVE CANDIDATE DATA.jsonl``: backtest two versions offline.

A version is ``live`` or ``shadow`` (the published pointers, falling back to the
configured files without Redis), a published version id, or a directory — a model
directory if it holds ``manifest.json``, a bank directory if it holds ``*.jsonl``, else a
wordlist directory; what it does not name comes from live. This module turns those specs
into engines (it reads the version store); :mod:`screening.evaluation.compare` measures
them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from screening.engine.banks import BANK_SUFFIX, BankMatcher
from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.normalize import Normalizer
from screening.engine.parts import TERM_KEYS, WordlistCache, load_model
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError
from screening.evaluation.compare import compare_engines, plot_comparison, render_comparison
from screening.operations.versions import KINDS, VersionStore
from screening.settings import Settings, model_path

__all__ = ["VersionResolver", "cmd_compare"]


class VersionResolver:
    """Turns version specs into engines sharing one tokenizer and config."""

    def __init__(self, settings: Settings, args: argparse.Namespace):
        self.settings = settings
        self.config = load_config(args.config or settings.config)
        self.tokenizer = Tokenizer(self.config.tokenizer_backend)
        self.wordlists = Path(args.wordlists or settings.wordlists)
        self.model = model_path(getattr(args, "model", None), getattr(settings, "model", None))
        self.banks = model_path(getattr(args, "banks", None), getattr(settings, "banks", None))
        self.normalizer = Normalizer(self.config.transforms)
        self.store: VersionStore | None = None
        if settings.redis_url:
            from screening.operations.publish import store_for

            self.store = store_for(settings)

    def _stored(self, kind: str, version: str) -> Any:
        files = self.store.files(kind, version) if self.store else None
        if files is None:
            return None
        if kind == "wordlist":
            files.pop(TERM_KEYS, None)
            return WordlistCache().build({n: b.decode("utf-8") for n, b in files.items()})
        if kind == "bank":
            return BankMatcher(files, self.normalizer, self.config.banks, version=version)
        return load_model(files, self.tokenizer)

    def _pointer(self, kind: str, slot: str) -> Any:
        version = self.store.pointer(kind, slot) if self.store else None
        return self._stored(kind, version) if version else None

    def live(self) -> dict[str, Any]:
        parts = {k: self._pointer(k, "live") for k in KINDS}
        if parts["wordlist"] is None:
            parts["wordlist"] = Wordlist.load(self.wordlists)
        if parts["model"] is None and self.model is not None and not self._published("model"):
            parts["model"] = load_model(self.model, self.tokenizer)
        if parts["bank"] is None and self.banks is not None and not self._published("bank"):
            parts["bank"] = BankMatcher.load(self.banks, self.normalizer, self.config.banks)
        return parts

    def _published(self, kind: str) -> bool:
        return bool(self.store and self.store.pointer(kind, "live"))

    def engine(self, spec: str, live: Mapping[str, Any]) -> Engine:
        parts = dict(live)
        if spec in ("shadow", "candidate"):
            shadow = {k: self._pointer(k, "shadow") for k in KINDS}
            if not any(shadow.values()):
                raise ConfigError("no shadow candidate is published")
            parts |= {k: v for k, v in shadow.items() if v is not None}
        elif spec != "live":
            path = Path(spec)
            if path.is_dir():
                if (path / "manifest.json").is_file():
                    parts["model"] = load_model(path, self.tokenizer)
                elif any(path.glob(f"*{BANK_SUFFIX}")):
                    parts["bank"] = BankMatcher.load(path, self.normalizer, self.config.banks)
                else:
                    parts["wordlist"] = Wordlist.load(path)
            else:
                found = {k: self._stored(k, spec) for k in KINDS}
                if not any(v is not None for v in found.values()):
                    raise ConfigError(f"{spec!r} is neither a directory nor a published version")
                parts |= {k: v for k, v in found.items() if v is not None}
        bank = parts.get("bank")
        return Engine(self.config, parts["wordlist"], self.tokenizer, parts["model"],
                      evidence=[bank] if bank is not None else [])  # fmt: skip


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from screening.evaluation.evaluate import read_examples

    examples = read_examples(args.data)
    resolver = VersionResolver(settings, args)
    live_parts = resolver.live()
    live, candidate = (resolver.engine(spec, live_parts) for spec in args.compare)
    result = compare_engines(live, candidate, examples, batch_size=args.batch_size)
    result["data"] = str(args.data)
    plot = plot_comparison(result, args.plot or "compare.png")
    if args.json:
        print(json.dumps({**result, "plot": str(plot)}, ensure_ascii=False, indent=2))
    else:
        print(render_comparison(result, args.worst))
        print(f"plot: {plot}")
    return 0
