"""The console's audit records: every action an account takes (kind ``console``) and
review outcomes (kind ``review``), appended to the audit store and retained like every
other record; ``records export --kind console --kind review`` hands them over.

An action record names the account and what it did, never a password and never the
text an analyst pasted into explain (that may be someone's message; its length and
the verdict are enough to reconstruct who looked at what).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from screening.engine.verdict import hit_list
from screening.records.model import Record
from screening.records.store import RecordStore

__all__ = ["OUTCOMES", "Audit", "review_key", "verdict_lists"]

#: What a reviewer may say about a verdict.
OUTCOMES = ("confirmed", "overturned")


def verdict_lists(detail: Mapping[str, Any]) -> list[str]:
    """The lists a verdict's evidence came from, as analysts edit them: each hit's list
    file (``gambling``, ``patterns``; derived from source and category in records written
    before hits carried it) and each bank that labelled it (``bank:<name>``)."""
    found = {
        str(h.get("list") or hit_list(str(h.get("source", "")), str(h.get("category", ""))))
        for h in detail.get("hits") or ()
    }
    labels = list(detail.get("labels") or ())
    for one in [*labels, *(also for label in labels for also in label.get("also") or ())]:
        if str(one.get("source", "")).startswith("bank:"):
            found.add(str(one["source"]))
    return sorted(found)


def review_key(verdict_id: int) -> str:
    """One outcome per verdict record: the key makes a second one a no-op."""
    return f"review:{verdict_id}"


class Audit:
    def __init__(self, store: RecordStore):
        self.store = store

    def action(
        self,
        account: str,
        action: str,
        *,
        group_id: str | None = None,
        user_id: str | None = None,
        **detail: Any,
    ) -> Record:
        record = Record(
            kind="console",
            at=time.time(),
            key=f"console:{uuid.uuid4().hex}",
            group_id=group_id,
            user_id=user_id,
            detail={"account": account, "action": action, **detail},
        )
        self.store.append([record])
        return record

    def review(
        self,
        account: str,
        verdict: Record,
        outcome: str,
        *,
        category: str | None = None,
        note: str = "",
    ) -> Record | None:
        """Append the outcome of ``verdict``; None when it already had one (another
        reviewer was first: their outcome stands)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
        assert verdict.id is not None
        detail = verdict.detail
        hits: Sequence[Mapping[str, Any]] = detail.get("hits") or ()
        record = Record(
            kind="review",
            at=time.time(),
            key=review_key(verdict.id),
            group_id=verdict.group_id,
            user_id=verdict.user_id,
            message_id=verdict.message_id,
            detail={
                "account": account,
                "outcome": outcome,
                "verdict_id": verdict.id,
                "verdict_key": verdict.key,
                "decision": detail.get("decision"),
                "categories": sorted(
                    {str(label.get("category")) for label in detail.get("labels") or ()}
                ),
                "category": category,
                "terms": sorted({str(h.get("term")) for h in hits}),
                "sources": sorted({str(h.get("source")) for h in hits}),
                "lists": verdict_lists(detail),
                "note": note,
            },
        )
        return record if self.store.append([record]) else None
