"""Engine configuration: which transforms run and how hits become a decision.

Decision rules live in a TOML file, not in code, so analysts can change thresholds per
category without a release. The packaged ``defaults.toml`` is always loaded first and a
user file is laid over it; every key is checked, because a misspelt threshold that is
silently ignored is worse than a refusal to start.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from screening.errors import ConfigError

__all__ = [
    "BankRules",
    "DecisionConfig",
    "EngineConfig",
    "ModelThresholds",
    "Thresholds",
    "TransformsConfig",
    "load_config",
]

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
SEVERITIES = ("block", "review", "watch")
TOKENIZER_BACKENDS = ("jieba", "rjieba")


@dataclass(frozen=True, slots=True)
class TransformsConfig:
    nfkc: bool = True
    casefold: bool = True
    t2s: bool = True
    homoglyph: bool = True
    invisible: bool = True
    noise: bool = True
    repeat: bool = True
    pinyin: bool = True
    homophone: bool = True


@dataclass(frozen=True, slots=True)
class Thresholds:
    review: float
    block: float


@dataclass(frozen=True, slots=True)
class DecisionConfig:
    severity_weights: dict[str, float]
    default: Thresholds
    per_category: dict[str, Thresholds] = field(default_factory=dict)

    def thresholds(self, category: str) -> Thresholds:
        return self.per_category.get(category, self.default)


@dataclass(frozen=True, slots=True)
class ModelThresholds:
    """Config overrides of a model's own per-category thresholds (``[model.categories.X]``).

    ``None`` keeps the value chosen at training time and stored in the model's manifest:
    thresholds belong to one model's score scale, so config only overrides them on purpose.
    """

    review: float | None = None
    block: float | None = None

    def over(self, chosen: Thresholds) -> Thresholds:
        review = chosen.review if self.review is None else self.review
        block = chosen.block if self.block is None else self.block
        if not 0 < review <= block:
            raise ConfigError(f"model thresholds need 0 < review <= block, got {review}, {block}")
        return Thresholds(review, block)


@dataclass(frozen=True, slots=True)
class BankRules:
    """When a text bank's near duplicate reviews or blocks (``[banks]``; banks/README.md).

    ``min_chars``: texts (messages and entries) of fewer compact characters are never
    compared — near duplicates of a six-character text are everywhere. A match's
    similarity (estimated Jaccard of character 3-grams) reaching a bank's ``review``
    threshold sends the message to review, reaching ``block`` blocks it unless the entry
    says ``"severity": "review"``; ``per_bank`` overrides the thresholds of one bank.
    """

    min_chars: int = 20
    default: Thresholds = field(default_factory=lambda: Thresholds(0.6, 0.8))
    per_bank: dict[str, Thresholds] = field(default_factory=dict)

    def thresholds(self, bank: str) -> Thresholds:
        return self.per_bank.get(bank, self.default)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    transforms: TransformsConfig
    tokenizer_backend: str
    decision: DecisionConfig
    model: dict[str, ModelThresholds] = field(default_factory=dict)
    banks: BankRules = field(default_factory=BankRules)


def _merge(base: dict[str, Any], over: dict[str, Any], where: str = "") -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            merged[key] = value
    return merged


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"unknown key(s) in [{where}]: {', '.join(sorted(unknown))}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _thresholds(table: dict[str, Any], fallback: Thresholds | None, where: str) -> Thresholds:
    _check_keys(table, {"review_threshold", "block_threshold"}, where)
    review = table.get("review_threshold", fallback.review if fallback else None)
    block = table.get("block_threshold", fallback.block if fallback else None)
    if review is None or block is None:
        raise ConfigError(f"[{where}] needs review_threshold and block_threshold")
    thresholds = Thresholds(_number(review, f"{where}.review_threshold"),
                            _number(block, f"{where}.block_threshold"))  # fmt: skip
    if not 0 < thresholds.review <= thresholds.block:
        raise ConfigError(f"[{where}] needs 0 < review_threshold <= block_threshold")
    return thresholds


def _model_overrides(raw: dict[str, Any]) -> dict[str, ModelThresholds]:
    _check_keys(raw, {"categories"}, "model")
    overrides = {}
    for name, table in raw.get("categories", {}).items():
        where = f"model.categories.{name}"
        _check_keys(table, {"review_threshold", "block_threshold"}, where)
        values = {k: _number(v, f"{where}.{k}") for k, v in table.items()}
        review, block = values.get("review_threshold"), values.get("block_threshold")
        if any(v <= 0 for v in values.values()) or (review or 0) > (block or float("inf")):
            raise ConfigError(f"[{where}] needs 0 < review_threshold <= block_threshold")
        overrides[name] = ModelThresholds(review, block)
    return overrides


def _similarities(table: dict[str, Any], fallback: Thresholds, where: str) -> Thresholds:
    _check_keys(table, {"review_similarity", "block_similarity"}, where)
    review, block = (
        _number(table[key], f"{where}.{key}") if key in table else default
        for key, default in (("review_similarity", fallback.review),
                             ("block_similarity", fallback.block))
    )  # fmt: skip
    if not 0 < review <= block:
        raise ConfigError(f"[{where}] needs 0 < review_similarity <= block_similarity")
    return Thresholds(review, block)


def _bank_rules(raw: dict[str, Any]) -> BankRules:
    raw = dict(raw)
    per_bank = raw.pop("bank", {})
    if not all(isinstance(table, dict) for table in per_bank.values()):
        raise ConfigError("[banks.bank.<name>] must be tables of similarities")
    min_chars = raw.pop("min_chars", BankRules().min_chars)
    if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 3:
        raise ConfigError(f"banks.min_chars must be an integer of at least 3, got {min_chars!r}")
    default = _similarities(raw, BankRules().default, "banks")
    return BankRules(
        min_chars,
        default,
        {name: _similarities(t, default, f"banks.bank.{name}") for name, t in per_bank.items()},
    )


def parse_config(raw: dict[str, Any]) -> EngineConfig:
    """Validate a merged configuration mapping and build the typed config."""
    _check_keys(raw, {"transforms", "tokenizer", "decision", "model", "banks"}, "top level")
    transforms_raw = raw.get("transforms", {})
    _check_keys(transforms_raw, {f.name for f in fields(TransformsConfig)}, "transforms")
    for key, value in transforms_raw.items():
        if not isinstance(value, bool):
            raise ConfigError(f"transforms.{key} must be true or false, got {value!r}")
    tokenizer = raw.get("tokenizer", {})
    _check_keys(tokenizer, {"backend"}, "tokenizer")
    backend = tokenizer.get("backend", "jieba")
    if backend not in TOKENIZER_BACKENDS:
        raise ConfigError(f"tokenizer.backend must be one of {TOKENIZER_BACKENDS}, got {backend!r}")

    decision = dict(raw.get("decision", {}))
    categories = decision.pop("categories", {})
    weights = decision.pop("severity_weights", {})
    if set(weights) != set(SEVERITIES):
        raise ConfigError(f"decision.severity_weights needs exactly {SEVERITIES}")
    weights = {k: _number(v, f"decision.severity_weights.{k}") for k, v in weights.items()}
    if not all(0 < w <= 1 for w in weights.values()):
        raise ConfigError("decision.severity_weights must lie in (0, 1]")
    default = _thresholds(decision, None, "decision")
    per_category = {
        name: _thresholds(table, default, f"decision.categories.{name}")
        for name, table in categories.items()
    }
    return EngineConfig(
        transforms=TransformsConfig(**transforms_raw),
        tokenizer_backend=backend,
        decision=DecisionConfig(weights, default, per_category),
        model=_model_overrides(raw.get("model", {})),
        banks=_bank_rules(raw.get("banks", {})),
    )


def load_config(path: str | Path | None = None) -> EngineConfig:
    """Load the packaged defaults, overlaid with ``path`` when given."""
    raw = tomllib.loads(DEFAULTS_PATH.read_text(encoding="utf-8"))
    if path is not None:
        try:
            user = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        raw = _merge(raw, user)
    return parse_config(raw)
