"""The enforcement policy: a TOML file analysts read and edit, validated at load.

Reading and validation, no I/O beyond reading the file: which violations count, in which
windows, how many trigger each step of the group ladder (警示整改 → 暂停发布 → 关闭群组
recommended), how user credit (信用等级) falls and recovers, when a user is blacklisted,
and when user reports force a review. The validated policy is plain data, defined in
:mod:`screening.enforcement.policy_model` (import its classes from there); the decisions themselves
live in :mod:`screening.enforcement.measures`; the counters in :mod:`screening.enforcement.state`.

Validation is strict and names the offending key (``group.rules[2].window: ...``),
because a policy that silently ignores a typo enforces something nobody chose.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from screening.enforcement.policy_model import (
    CONFIRMED,
    COUNTED_DECISIONS,
    BlacklistPolicy,
    CreditPolicy,
    GroupClass,
    GroupPolicy,
    GroupRule,
    Policy,
    ReportPolicy,
    Thresholds,
)
from screening.engine.verdict import CATEGORIES
from screening.errors import PolicyError

__all__ = ["DEFAULT_POLICY_PATH", "load_policy", "parse_duration", "parse_policy"]

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.toml")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(value: Any, where: str, *, allow_zero: bool = False) -> float:
    """Seconds from a number or a string like ``"30m"``; refuses negatives and nonsense."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PolicyError(f'{where}: expected a duration like "12h", got {value!r}')
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise PolicyError(f"{where}: {value!r} is not a duration (use s, m, h or d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise PolicyError(f"{where}: duration must be {'>= 0' if allow_zero else '> 0'}")
    return seconds


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path`` (SCREENING_POLICY), or the packaged defaults."""
    source = Path(path) if path else DEFAULT_POLICY_PATH
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{source}: cannot read policy: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: invalid TOML: {exc}") from None
    try:
        return parse_policy(raw, source=str(source))
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None


def parse_policy(raw: Mapping[str, Any], source: str = "<dict>") -> Policy:
    r = _Reader(raw, "")
    r.keys({"version", "group", "credit", "blacklist", "reports"})
    version = r.get("version", str, "unversioned")
    policy = Policy(
        version=version,
        group=_group(r.table("group")),
        credit=_credit(r.table("credit")),
        blacklist=_blacklist(r.table("blacklist")),
        reports=_reports(r.table("reports")),
        source=source,
    )
    return policy


class _Reader:
    """One TOML table and its dotted path, for error messages that point at the key."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, Mapping):
            raise PolicyError(f"{path or 'top level'}: expected a table, got {data!r}")
        self.data, self.path = data, path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise PolicyError(
                f"{self.path or 'top level'}: unknown key(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(allowed))})"
            )

    def table(self, key: str) -> _Reader:
        if key not in self.data:
            raise PolicyError(f"missing table [{self.at(key)}]")
        return _Reader(self.data[key], self.at(key))

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise PolicyError(f"{self.at(key)}: required")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise PolicyError(f"{self.at(key)}: expected {kind.__name__}, got {value!r}")
        return value

    def count(self, key: str, default: Any = ...) -> int:
        value = self.get(key, int, default)
        if value is not None and value < 0:
            raise PolicyError(f"{self.at(key)}: must be >= 0")
        return value

    def points(self, key: str) -> float:
        value = self.get(key, float)
        if value < 0:
            raise PolicyError(f"{self.at(key)}: must be >= 0")
        return value

    def duration(self, key: str, *, allow_zero: bool = False, default: Any = ...) -> float:
        if key not in self.data and default is not ...:
            return default
        return parse_duration(self.get(key, object), self.at(key), allow_zero=allow_zero)

    def names(self, key: str, allowed: tuple[str, ...] | None, default: Any = ...) -> frozenset:
        values = self.get(key, list, default)
        if values is None:
            return None  # type: ignore[return-value]
        if not all(isinstance(v, str) for v in values):
            raise PolicyError(f"{self.at(key)}: expected a list of strings")
        if allowed is not None:
            bad = sorted(set(values) - set(allowed))
            if bad:
                raise PolicyError(
                    f"{self.at(key)}: unknown {', '.join(bad)} (known: {', '.join(allowed)})"
                )
        return frozenset(values)


_GROUP_KEYS = set(
    "warning_period suspension suspension_max repeat_window closure_cooldown owner_penalty "
    "admin_penalty rules classes".split()
)
_CREDIT_KEYS = set(
    "initial maximum penalties category_weights restore_after restore_per_day levels "
    "suspend_posting_below posting_suspension posting_suspension_max suspend_admin_below "
    "admin_suspension revoke_group_creation_below group_creation_revocation repeat_window".split()
)


def _thresholds(r: _Reader) -> Thresholds:
    t = Thresholds(r.count("warn", 0), r.count("suspend", 0), r.count("recommend_close", 0))
    steps = [n for n in (t.warn, t.suspend, t.recommend_close) if n]
    if not steps:
        raise PolicyError(f"{r.path}: at least one of warn, suspend, recommend_close must be > 0")
    if steps != sorted(steps) or len(set(steps)) != len(steps):
        raise PolicyError(f"{r.path}: thresholds must rise: warn < suspend < recommend_close")
    return t


def _group(r: _Reader) -> GroupPolicy:
    r.keys(_GROUP_KEYS)
    rules = []
    for i, item in enumerate(r.get("rules", list)):
        rr = _Reader(item, f"{r.path}.rules[{i}]")
        rr.keys({"name", "categories", "decisions", "window", "warn", "suspend", "recommend_close"})
        categories = rr.names("categories", (*CATEGORIES, "*"), frozenset({"*"}))
        # Omitted: the engine's decisions (a confirmation would count its message twice).
        decisions = rr.names("decisions", COUNTED_DECISIONS, frozenset({"review", "block"}))
        if not decisions or not categories:
            raise PolicyError(f"{rr.path}: categories and decisions must not be empty")
        rules.append(
            GroupRule(
                name=rr.get("name", str),
                categories=None if "*" in categories else categories,
                decisions=decisions,
                window=rr.duration("window"),
                thresholds=_thresholds(rr),
            )
        )
    names = [rule.name for rule in rules]
    if not rules or len(set(names)) != len(names):
        raise PolicyError(f"{r.path}.rules: need at least one rule, with unique names")
    classes = []
    for i, item in enumerate(r.get("classes", list, [])):
        cr = _Reader(item, f"{r.path}.classes[{i}]")
        cr.keys({"name", "min_members", "max_members", "group_categories", "scale", "rules"})
        scale = cr.get("scale", float, 1.0)
        if scale <= 0:
            raise PolicyError(f"{cr.at('scale')}: must be > 0")
        overrides_r = _Reader(cr.get("rules", dict, {}), cr.at("rules"))
        overrides_r.keys(set(names))
        overrides = {k: _thresholds(overrides_r.table(k)) for k in overrides_r.data}
        group_categories = cr.names("group_categories", None, None)
        classes.append(
            GroupClass(
                name=cr.get("name", str),
                min_members=cr.count("min_members", None),
                max_members=cr.count("max_members", None),
                group_categories=group_categories,
                scale=scale,
                overrides=overrides,
            )
        )
    return GroupPolicy(
        rules=tuple(rules),
        classes=tuple(classes),
        warning_period=r.duration("warning_period"),
        suspension=r.duration("suspension"),
        suspension_max=r.duration("suspension_max"),
        repeat_window=r.duration("repeat_window"),
        closure_cooldown=r.duration("closure_cooldown"),
        owner_penalty=r.points("owner_penalty"),
        admin_penalty=r.points("admin_penalty"),
    )


def _credit(r: _Reader) -> CreditPolicy:
    r.keys(_CREDIT_KEYS)
    penalties = _Reader(r.get("penalties", dict), r.at("penalties"))
    penalties.keys(set(COUNTED_DECISIONS))
    weights = _Reader(r.get("category_weights", dict, {}), r.at("category_weights"))
    weights.keys(set(CATEGORIES))
    levels = _Reader(r.get("levels", dict), r.at("levels"))
    level_items = sorted(((k, levels.points(k)) for k in levels.data), key=lambda kv: -kv[1])
    if not level_items:
        raise PolicyError(f"{levels.path}: need at least one level")
    credit = CreditPolicy(
        initial=r.points("initial"),
        maximum=r.points("maximum"),
        penalties={k: penalties.points(k) for k in COUNTED_DECISIONS if k != CONFIRMED}
        | {CONFIRMED: penalties.points(CONFIRMED) if CONFIRMED in penalties.data else 0.0},
        category_weights={k: weights.points(k) for k in weights.data},
        restore_after=r.duration("restore_after", allow_zero=True),
        restore_per_day=r.points("restore_per_day"),
        levels=tuple(level_items),
        suspend_posting_below=r.points("suspend_posting_below"),
        posting_suspension=r.duration("posting_suspension"),
        posting_suspension_max=r.duration("posting_suspension_max"),
        suspend_admin_below=r.points("suspend_admin_below"),
        admin_suspension=r.duration("admin_suspension"),
        revoke_group_creation_below=r.points("revoke_group_creation_below"),
        group_creation_revocation=r.duration("group_creation_revocation"),
        repeat_window=r.duration("repeat_window"),
    )
    if not 0 < credit.initial <= credit.maximum:
        raise PolicyError(f"{r.path}: need 0 < initial <= maximum")
    return credit


def _blacklist(r: _Reader) -> BlacklistPolicy:
    r.keys({"categories", "blocks", "window", "duration"})
    return BlacklistPolicy(
        categories=r.names("categories", CATEGORIES, frozenset()),
        blocks=r.count("blocks", 0),
        window=r.duration("window"),
        duration=r.duration("duration", allow_zero=True),
    )


def _reports(r: _Reader) -> ReportPolicy:
    r.keys({"review_reporters", "window", "notify_reporter"})
    reporters = r.count("review_reporters")
    if reporters < 1:
        raise PolicyError(f"{r.at('review_reporters')}: must be >= 1")
    return ReportPolicy(reporters, r.duration("window"), r.get("notify_reporter", bool, True))
