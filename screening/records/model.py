"""What the audit store keeps and how it is configured: the record, the settings, the
retention rule. No database code (:mod:`screening.records.store` and
:mod:`screening.records.sql`); :mod:`screening.records.sql` opens the store."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screening.errors import RecordsError

__all__ = [
    "COLUMNS",
    "DEFAULT_OWNER_ROLE",
    "DEFAULT_RECORDS_PATH",
    "DEFAULT_WRITER_ROLE",
    "KINDS",
    "MIN_RETENTION_DAYS",
    "Record",
    "RecordsSettings",
    "check_retention",
    "check_role_name",
]

MIN_RETENTION_DAYS = 180
#: ``review``: a reviewer's outcome on a verdict; ``console``: an action in the analyst
#: console, with the account that took it (screening/console/).
KINDS = ("verdict", "measure", "lift", "report", "delivery", "review", "console")
COLUMNS = ("id", "kind", "at", "key", "group_id", "user_id", "message_id", "detail")
DEFAULT_RECORDS_PATH = Path("var/records.sqlite3")
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DEFAULT_OWNER_ROLE, DEFAULT_WRITER_ROLE = "screening_owner", "screening_writer"


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
    #: SCREENING_DATABASE_OWNER_URL: the PostgreSQL URL of a login in the owner role, for
    #: ``records migrate`` and ``records purge`` only, never for workers (unset: the
    #: SCREENING_DATABASE_URL).
    owner_url: str | None = field(default=None, repr=False)
    #: SCREENING_RECORDS_OWNER_ROLE: the NOLOGIN role that owns the records tables
    #: (default screening_owner); ``records migrate`` creates it.
    owner_role: str = DEFAULT_OWNER_ROLE
    #: SCREENING_RECORDS_WRITER_ROLE: the NOLOGIN role with INSERT and SELECT only (default
    #: screening_writer); ``records migrate`` creates it, workers log in as its members.
    writer_role: str = DEFAULT_WRITER_ROLE
    #: SCREENING_RECORDS_ALLOW_PRIVILEGED_WRITER: "true" lets a worker write as a role that
    #: could delete records or drop the guard (development only; logged at every start).
    allow_privileged_writer: bool = False

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
        owner_role = env.get("SCREENING_RECORDS_OWNER_ROLE", "").strip() or DEFAULT_OWNER_ROLE
        writer_role = env.get("SCREENING_RECORDS_WRITER_ROLE", "").strip() or DEFAULT_WRITER_ROLE
        for name in (owner_role, writer_role):
            check_role_name(name)
        if owner_role == writer_role:
            raise RecordsError(f"the owner and writer roles must differ (both {owner_role!r})")
        allow = env.get("SCREENING_RECORDS_ALLOW_PRIVILEGED_WRITER", "").strip().lower()
        if allow not in ("", "0", "false", "1", "true"):
            raise RecordsError(
                f"SCREENING_RECORDS_ALLOW_PRIVILEGED_WRITER={allow!r}: use true or false"
            )
        return cls(
            database_url=env.get("SCREENING_DATABASE_URL", "").strip() or None,
            path=Path(env.get("SCREENING_RECORDS_PATH", "").strip() or DEFAULT_RECORDS_PATH),
            retention_days=days,
            owner_url=env.get("SCREENING_DATABASE_OWNER_URL", "").strip() or None,
            owner_role=owner_role,
            writer_role=writer_role,
            allow_privileged_writer=allow in ("1", "true"),
        )


def check_retention(days: float) -> None:
    """The 2017 rules require records to be kept; we hold ourselves to 180 days minimum."""
    if days < MIN_RETENTION_DAYS:
        raise RecordsError(
            f"retention of {days:g} days refused: records must be kept at least "
            f"{MIN_RETENTION_DAYS} days"
        )


def check_role_name(name: str) -> None:
    """Role names go into DDL (quoted, but a plain lowercase name is what operators type in
    ``GRANT``): refuse anything else rather than create a role nobody can name."""
    if not _ROLE_NAME.fullmatch(name):
        raise RecordsError(
            f"role name {name!r} refused: lowercase letters, digits and _, at most 63"
        )
