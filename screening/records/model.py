"""What the audit store keeps and how it is configured: the record, the settings, the
retention rule. No database code (:mod:`screening.records.store` and
:mod:`screening.records.sql`); :mod:`screening.records.sql` opens the store."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screening.errors import RecordsError

__all__ = [
    "COLUMNS",
    "DEFAULT_RECORDS_PATH",
    "KINDS",
    "MIN_RETENTION_DAYS",
    "Record",
    "RecordsSettings",
    "check_retention",
]

MIN_RETENTION_DAYS = 180
KINDS = ("verdict", "measure", "lift", "report", "delivery")
COLUMNS = ("id", "kind", "at", "key", "group_id", "user_id", "message_id", "detail")
DEFAULT_RECORDS_PATH = Path("var/records.sqlite3")


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    at: float
    key: str
    group_id: str | None = None
    user_id: str | None = None
    message_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None  # assigned by the store

    def row(self) -> tuple[Any, ...]:
        detail = json.dumps(self.detail, ensure_ascii=False, separators=(",", ":"), default=str)
        return (self.kind, self.at, self.key, self.group_id, self.user_id, self.message_id, detail)


@dataclass(frozen=True, slots=True)
class RecordsSettings:
    #: SCREENING_DATABASE_URL: postgresql://... ; unset: SQLite at ``path``.
    database_url: str | None = None
    #: SCREENING_RECORDS_PATH: the SQLite file (default var/records.sqlite3).
    path: Path = DEFAULT_RECORDS_PATH
    #: SCREENING_RECORDS_RETENTION_DAYS: >= 180, refused below.
    retention_days: int = MIN_RETENTION_DAYS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecordsSettings:
        env = os.environ if environ is None else environ
        raw = env.get("SCREENING_RECORDS_RETENTION_DAYS", "").strip()
        try:
            days = int(raw) if raw else MIN_RETENTION_DAYS
        except ValueError:
            raise RecordsError(
                f"SCREENING_RECORDS_RETENTION_DAYS={raw!r}: not an integer"
            ) from None
        check_retention(days)
        return cls(
            database_url=env.get("SCREENING_DATABASE_URL", "").strip() or None,
            path=Path(env.get("SCREENING_RECORDS_PATH", "").strip() or DEFAULT_RECORDS_PATH),
            retention_days=days,
        )


def check_retention(days: float) -> None:
    """The 2017 rules require records to be kept; we hold ourselves to 180 days minimum."""
    if days < MIN_RETENTION_DAYS:
        raise RecordsError(
            f"retention of {days:g} days refused: records must be kept at least "
            f"{MIN_RETENTION_DAYS} days"
        )
