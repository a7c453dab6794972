"""The enforcement policy as data: frozen dataclasses, no I/O, no parsing.

:mod:`screening.enforcement.policy` reads and validates the TOML file into these; the
decisions (:mod:`screening.enforcement.measures`) and the state
(:mod:`screening.enforcement.state`) only need the model, so they import it from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CONFIRMED",
    "COUNTED_DECISIONS",
    "SEVERE_DECISIONS",
    "BlacklistPolicy",
    "CreditPolicy",
    "GroupClass",
    "GroupPolicy",
    "GroupRule",
    "Policy",
    "ReportPolicy",
    "Thresholds",
]

#: A ``review`` verdict a person confirmed (the console's review queue): a decision of its
#: own, so a policy says what a confirmation adds to what the review already counted.
CONFIRMED = "confirmed"
#: Decisions that count as violations: the engine's two, and a reviewer's confirmation.
COUNTED_DECISIONS = ("review", "block", CONFIRMED)
#: Decisions as grave as a block for the blacklist: the engine blocked, or a person agreed.
SEVERE_DECISIONS = frozenset({"block", CONFIRMED})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Counts that trigger each ladder step; 0 turns a step off."""

    warn: int
    suspend: int
    recommend_close: int

    def scaled(self, factor: float) -> Thresholds:
        def one(n: int) -> int:
            return 0 if n == 0 else max(1, math.ceil(n * factor))

        return Thresholds(one(self.warn), one(self.suspend), one(self.recommend_close))


@dataclass(frozen=True, slots=True)
class GroupRule:
    name: str
    categories: frozenset[str] | None  # None: every category
    decisions: frozenset[str]
    window: float
    thresholds: Thresholds

    def counts(self, decision: str, categories: frozenset[str]) -> bool:
        if decision not in self.decisions:
            return False
        return self.categories is None or bool(self.categories & categories)


@dataclass(frozen=True, slots=True)
class GroupClass:
    """分级分类: a band of group sizes and/or a set of group categories."""

    name: str
    min_members: int | None
    max_members: int | None
    group_categories: frozenset[str] | None
    scale: float
    overrides: Mapping[str, Thresholds]

    def matches(self, members: int | None, category: str | None) -> bool:
        if self.min_members is not None and (members is None or members < self.min_members):
            return False
        if self.max_members is not None and (members is None or members > self.max_members):
            return False
        return self.group_categories is None or category in self.group_categories


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    rules: tuple[GroupRule, ...]
    classes: tuple[GroupClass, ...]
    warning_period: float
    suspension: float
    suspension_max: float
    repeat_window: float
    closure_cooldown: float
    owner_penalty: float
    admin_penalty: float

    def group_class(self, members: int | None, category: str | None) -> GroupClass | None:
        return next((c for c in self.classes if c.matches(members, category)), None)

    def thresholds(self, rule: GroupRule, group_class: GroupClass | None) -> Thresholds:
        if group_class is None:
            return rule.thresholds
        if rule.name in group_class.overrides:
            return group_class.overrides[rule.name]
        return rule.thresholds.scaled(group_class.scale)


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    initial: float
    maximum: float
    penalties: Mapping[str, float]
    category_weights: Mapping[str, float]
    restore_after: float
    restore_per_day: float
    levels: tuple[tuple[str, float], ...]  # highest minimum first
    suspend_posting_below: float
    posting_suspension: float
    posting_suspension_max: float
    suspend_admin_below: float
    admin_suspension: float
    revoke_group_creation_below: float
    group_creation_revocation: float
    repeat_window: float

    def level(self, credit: float) -> str:
        return next((name for name, low in self.levels if credit >= low), self.levels[-1][0])


@dataclass(frozen=True, slots=True)
class BlacklistPolicy:
    categories: frozenset[str]
    blocks: int  # 0: off
    window: float
    duration: float  # 0: until a person lifts it


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    review_reporters: int
    window: float
    notify_reporter: bool


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    group: GroupPolicy
    credit: CreditPolicy
    blacklist: BlacklistPolicy
    reports: ReportPolicy
    source: str = "<defaults>"

    @property
    def history_window(self) -> float:
        """How long a user's violations are remembered for dedupe and block counting."""
        return max(self.blacklist.window, *(r.window for r in self.group.rules), 86400.0)
