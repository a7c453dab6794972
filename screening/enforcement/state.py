"""Enforcement counters and active measures: Redis for real, memory for simulate and tests.

Both implement :class:`PolicyState`. Correctness under many workers and duplicate
deliveries comes from two rules, identical in both:

* **Counting is set membership.** A violation is recorded as ``ZADD NX`` of its message id
  in a sorted set per (group, rule) and per user, scored by time. A redelivered message is
  already a member, so it never counts twice; two workers adding different messages never
  lose one, because each Lua script runs atomically. Sliding windows trim by score.
* **Applying a measure is compare-and-set.** A measure takes effect only if none of its
  kind is in force for that subject (or the one in force has the same id — a redelivery
  re-applying its own measure). Two workers that both cross a threshold race; one wins.
* **Retracting is idempotent.** An overturned message leaves its group's rule windows
  (``ZREM``) and gives its sender's penalty back once: ``{u:ID}:retracted`` remembers the
  keys given back for as long as ``:seen`` remembers counted ones.
* **Lifting is at-least-once.** Taking a measure out of force (it ended, a person lifted
  it, or a new measure replaced an ended one) and writing its *pending lift* are one
  atomic step. The caller holds the pending lift for a lease (:data:`LIFT_LEASE`) and
  deletes it (:meth:`PolicyState.ack_lifts`) once its event is enqueued; if it dies
  first, the next sweep after the lease takes it (:meth:`PolicyState.claim_lifts`) and
  sends the same event again — event ids derive from measure ids, so a duplicate is
  dropped downstream.

Redis layout (prefix ``screening:policy:``; ``{g:ID}``/``{u:ID}`` keep a subject's keys
together): ``{g:ID}:rule:NAME`` zset, ``{g:ID}:m`` hash of measures and the owner id,
``{g:ID}:admins`` set, ``{g:ID}:hist`` zset of suspensions (for doubling);
``{u:ID}:credit`` hash, ``{u:ID}:seen``/``:blocks``/``:hist``/``:retracted`` zsets, ``{u:ID}:m``;
``expiry`` zset of liftable measures by end time; ``lifts`` hash of pending lifts and
``lifts:due`` zset of their lease ends; ``{r:MSG}:reporters`` set. The scripts
touch keys of more than one subject (``expiry``, ``lifts``), so Redis Cluster is not supported here.

Modules: this one (the interface), :mod:`screening.enforcement.state_redis` and its Lua
(:mod:`screening.enforcement.state_scripts`), :mod:`screening.enforcement.state_memory`,
and the keys and serialisation both share (:mod:`screening.enforcement.state_codec`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from screening.enforcement.measures import GroupSnapshot, Measure, UserSnapshot
from screening.enforcement.policy_model import CreditPolicy
from screening.enforcement.state_codec import (
    LIFT_LEASE,
    MEMO_SECONDS,
    PREFIX,
    ApplyMeasure,
    GroupRecord,
    GroupRetraction,
    PendingLift,
    UserRecord,
    UserRetraction,
    counts_suspensions,
    subject_key,
)
from screening.enforcement.state_memory import MemoryPolicyState
from screening.enforcement.state_redis import RedisPolicyState

__all__ = [
    "LIFT_LEASE",
    "MEMO_SECONDS",
    "PREFIX",
    "ApplyMeasure",
    "GroupRecord",
    "GroupRetraction",
    "MemoryPolicyState",
    "PendingLift",
    "PolicyState",
    "RedisPolicyState",
    "UserRecord",
    "UserRetraction",
    "counts_suspensions",
    "subject_key",
]


class PolicyState(Protocol):
    """The small typed interface the enforcer needs; ``now`` is always passed in."""

    # The three operations of enforcement take a batch (a worker's flagged verdicts, one
    # per distinct subject) and answer in order; Redis runs a batch in one round trip,
    # each call still atomic on its own. A single call is a batch of one.

    def record_groups(self, requests: Sequence[GroupRecord]) -> list[GroupSnapshot]:
        """Count each ``message_id`` once in each rule's window; return counts and measures."""

    def record_users(self, requests: Sequence[UserRecord]) -> list[UserSnapshot]:
        """Lower each credit by ``penalty`` once per ``key``; return credit and measures."""

    def apply(self, requests: Sequence[ApplyMeasure]) -> list[tuple[bool, Measure | None]]:
        """Compare-and-set each: ``(applied, replaced)`` where ``replaced`` is the expired
        measure of the same kind this one displaced (not yet swept), if any; a liftable
        ``replaced`` is left pending (leased to the caller) like a swept one."""

    def sweep(self, now: float, limit: int = 100) -> list[Measure]:
        """Remove and return liftable measures that ended by ``now``, each exactly once
        across all workers, and leave each pending (leased to the caller, lifted at
        ``now``, reason "expired") until :meth:`ack_lifts`."""

    def lift(
        self,
        subject: str,
        subject_id: str,
        kind: str,
        *,
        now: float | None = None,
        reason: str = "lifted",
        measure_id: str | None = None,
        forget: bool = False,
    ) -> Measure | None:
        """A person lifts a measure (e.g. takes a user off the blacklist); pending (leased
        to the caller, lifted at ``now`` for ``reason``) until :meth:`ack_lifts`. With
        ``measure_id`` only that measure (another of the kind stays); ``forget``: it no
        longer counts as an earlier suspension (a retraction)."""

    def retract_group(self, request: GroupRetraction) -> GroupSnapshot:
        """Take an overturned message out of its group's rule windows (idempotent); the
        counts, measures, owner and admins afterwards."""

    def retract_user(self, request: UserRetraction) -> tuple[UserSnapshot, bool]:
        """Give back the penalty a counted key cost the user and take it out of the
        blocks, once however often called; the user's snapshot afterwards, and whether
        this call gave it back."""

    def claim_lifts(self, now: float, limit: int = 100) -> list[PendingLift]:
        """Pending lifts whose lease ended by ``now`` (their sender died or failed before
        confirming), leased again to the caller."""

    def ack_lifts(self, measure_ids: Iterable[str]) -> None:
        """These lifts' events are enqueued: forget them."""

    def credit(self, user_id: str, credit: CreditPolicy, now: float) -> float: ...

    def report(self, message_identity: str, reporter_id: str, window: float) -> int:
        """Add a reporter of the message (its :attr:`Message.identity`); the number of
        distinct reporters of that message."""
