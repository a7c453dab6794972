"""Console accounts: a name, a role and an argon2id password hash, kept in the records
database beside ``records`` (table ``console_accounts``).

Roles are ordered, each including the ones below it: a *viewer* reads explain and
statistics; a *reviewer* also works the review queue, which shows message text and (on
request) user ids; an *analyst* also edits lists; an *admin* also lifts measures and
manages accounts. Message text and user ids are personal information (Art. 6 of the
2017 group rules), hence the split.

Passwords are hashed with argon2-cffi's defaults (argon2id, RFC 9106 low-memory
profile), rehashed at log-in when those defaults change. A failed log-in costs the same
time whether or not the account exists, so names cannot be probed.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from screening.errors import ConfigError, RecordsError
from screening.records.model import check_role_name
from screening.records.store import RecordStore

__all__ = ["ROLES", "Account", "AccountStore", "check_name", "check_role", "role_at_least"]

ROLES = ("viewer", "reviewer", "analyst", "admin")
MIN_PASSWORD = 12
_TABLE = (
    "CREATE TABLE IF NOT EXISTS console_accounts (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "password_hash TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
    "disabled INTEGER NOT NULL DEFAULT 0)"
)
_HASHER = PasswordHasher()
#: Verified against when the name is unknown, so a miss costs what a wrong password does.
_DUMMY = _HASHER.hash("not a password of anyone's")


@dataclass(frozen=True, slots=True)
class Account:
    """``stamp`` names the current password (a digest of its hash): sessions carry it, so
    a changed password ends the sessions issued under the old one."""

    name: str
    role: str
    disabled: bool = False
    stamp: str = field(default="", compare=False, repr=False)

    def can(self, role: str) -> bool:
        return not self.disabled and role_at_least(self.role, role)


def role_at_least(have: str, need: str) -> bool:
    return ROLES.index(have) >= ROLES.index(need)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown console role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not (1 <= len(name) <= 64) or not name.isprintable() or name != name.strip():
        raise ConfigError(f"account name {name!r}: 1-64 printable characters, no outer spaces")
    return name


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"passwords need at least {MIN_PASSWORD} characters")


class AccountStore:
    """Accounts in the records database. :meth:`migrate` creates the table (on PostgreSQL
    as the owner, granting the writer role what the console needs: the serving process
    logs in as a writer and cannot create tables)."""

    def __init__(self, store: RecordStore):
        self.store = store

    def migrate(self, owner_role: str | None = None, writer_role: str | None = None) -> None:
        """Create the table; on PostgreSQL hand it to the owner role, as the records are,
        and let the writer role read, add and update accounts (never delete: a name once
        used stays, disabled, so the audit records keep meaning one person)."""
        statements: list[tuple[str, tuple[Any, ...]]] = [(_TABLE, ())]
        if self.store.dialect == "postgres" and owner_role and writer_role:
            check_role_name(owner_role)
            check_role_name(writer_role)
            statements += [
                (f'ALTER TABLE console_accounts OWNER TO "{owner_role}"', ()),
                (f'GRANT SELECT, INSERT, UPDATE ON console_accounts TO "{writer_role}"', ()),
            ]
        self.store.execute(statements)

    def check_ready(self) -> None:
        """Refuse to serve the console before its table exists (PostgreSQL: the owner
        creates it with ``screening console add-user``)."""
        try:
            self.store.query("SELECT count(*) FROM console_accounts")
        except Exception as exc:
            raise RecordsError(
                f"no console accounts table in {self.store.where} ({exc}); create the first "
                "account with `screening console add-user NAME --role admin` (on PostgreSQL "
                "with SCREENING_DATABASE_OWNER_URL)"
            ) from None

    def add(self, name: str, role: str, password: str) -> Account:
        check_name(name)
        check_role(role)
        _check_password(password)
        if self.get(name) is not None:
            raise ConfigError(f"account {name!r} exists")
        self.store.execute([(
            "INSERT INTO console_accounts (name, role, password_hash, created_at) "
            "VALUES (?, ?, ?, ?)",
            (name, role, _HASHER.hash(password), time.time()),
        )])  # fmt: skip
        return Account(name, role)

    def update(self, name: str, *, role: str | None = None, disabled: bool | None = None) -> bool:
        """Change an account's role or lock it; False when there is no such account.
        Accounts are never deleted: a disabled one keeps its name, so audit records that
        name it keep meaning one person."""
        changes: list[tuple[str, tuple[Any, ...]]] = []
        if role is not None:
            changes.append(("UPDATE console_accounts SET role = ? WHERE name = ?",
                            (check_role(role), name)))  # fmt: skip
        if disabled is not None:
            changes.append(("UPDATE console_accounts SET disabled = ? WHERE name = ?",
                            (int(disabled), name)))  # fmt: skip
        return bool(changes) and self.store.execute(changes) > 0

    def set_password(self, name: str, password: str) -> bool:
        """Replace an account's password (an admin's reset, or the account's own change
        after :meth:`authenticate`); False when there is no such account."""
        _check_password(password)
        return self.store.execute([("UPDATE console_accounts SET password_hash = ? WHERE name = ?",
                                    (_HASHER.hash(password), name))]) > 0  # fmt: skip

    def change_password(self, name: str, current: str, new: str) -> bool:
        """The account's own change: False (nothing changed) unless ``current`` is its
        password; a new password too short is refused (ConfigError)."""
        _check_password(new)
        if self.authenticate(name, current) is None:
            return False
        return self.set_password(name, new)

    def get(self, name: str) -> Account | None:
        rows = self.store.query(
            "SELECT name, role, disabled, password_hash FROM console_accounts WHERE name = ?",
            (name,),
        )
        if not rows:
            return None
        found, role, disabled, password_hash = rows[0]
        return Account(found, role, bool(disabled), _stamp(password_hash))

    def all(self) -> list[Account]:
        rows = self.store.query("SELECT name, role, disabled FROM console_accounts ORDER BY name")
        return [Account(name, role, bool(disabled)) for name, role, disabled in rows]

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is its password and it is enabled, else None."""
        rows = self.store.query(
            "SELECT role, password_hash, disabled FROM console_accounts WHERE name = ?", (name,)
        )
        stored = rows[0][1] if rows else _DUMMY
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows or rows[0][2]:
            return None
        if _HASHER.check_needs_rehash(stored):  # ends its other sessions: rare, and safe
            stored = _HASHER.hash(password)
            self.store.execute([("UPDATE console_accounts SET password_hash = ? WHERE name = ?",
                                 (stored, name))])  # fmt: skip
        return Account(name, rows[0][0], stamp=_stamp(stored))
