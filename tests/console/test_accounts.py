"""Accounts in the records database of each backend: roles, argon2id hashes, log-in."""

from __future__ import annotations

import pytest

from screening.console.accounts import ROLES, Account, AccountStore, role_at_least
from screening.errors import ConfigError, RecordsError
from screening.records.store import RecordStore

PASSWORD = "a long enough password"


@pytest.fixture
def accounts(record_store: RecordStore) -> AccountStore:
    store = AccountStore(record_store)
    store.migrate()
    record_store.execute([("DELETE FROM console_accounts", ())])
    return store


@pytest.mark.parametrize(("have", "need", "allowed"), [
    ("viewer", "viewer", True), ("viewer", "reviewer", False), ("reviewer", "viewer", True),
    ("analyst", "reviewer", True), ("analyst", "admin", False), ("admin", "analyst", True),
])  # fmt: skip
def test_roles_include_the_ones_below(have: str, need: str, allowed: bool) -> None:
    assert role_at_least(have, need) is allowed
    assert Account("a", have).can(need) is allowed
    assert Account("a", have, disabled=True).can(need) is False


def test_add_and_authenticate(accounts: AccountStore) -> None:
    accounts.add("alice", "reviewer", PASSWORD)
    assert accounts.authenticate("alice", PASSWORD) == Account("alice", "reviewer")
    assert accounts.authenticate("alice", PASSWORD + "x") is None
    assert accounts.authenticate("bob", PASSWORD) is None
    stored = accounts.store.query("SELECT password_hash FROM console_accounts")[0][0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_disabled_account_cannot_log_in(accounts: AccountStore) -> None:
    accounts.add("carol", "admin", PASSWORD)
    accounts.store.execute([("UPDATE console_accounts SET disabled = 1 WHERE name = 'carol'", ())])
    assert accounts.authenticate("carol", PASSWORD) is None
    assert accounts.get("carol") == Account("carol", "admin", disabled=True)


@pytest.mark.parametrize(("name", "role", "password", "error"), [
    ("dave", "owner", PASSWORD, "unknown console role"),
    ("dave", "viewer", "short", "at least 12"),
    (" dave", "viewer", PASSWORD, "no outer spaces"),
    ("", "viewer", PASSWORD, "1-64"),
])  # fmt: skip
def test_bad_accounts_are_refused(accounts: AccountStore, name, role, password, error) -> None:
    with pytest.raises(ConfigError, match=error):
        accounts.add(name, role, password)


def test_names_are_unique_and_listed(accounts: AccountStore) -> None:
    for name, role in (("erin", "viewer"), ("dan", "admin")):
        accounts.add(name, role, PASSWORD)
    with pytest.raises(ConfigError, match="exists"):
        accounts.add("erin", "admin", PASSWORD)
    assert accounts.all() == [Account("dan", "admin"), Account("erin", "viewer")]
    assert set(ROLES) == {"viewer", "reviewer", "analyst", "admin"}


def test_a_store_without_the_table_is_not_ready(tmp_path) -> None:
    from screening.records.sql import SqliteRecordStore

    store = SqliteRecordStore(tmp_path / "r.sqlite3")
    with pytest.raises(RecordsError, match="console add-user"):
        AccountStore(store).check_ready()
    AccountStore(store).migrate()
    AccountStore(store).check_ready()


def test_a_password_change_needs_the_current_one_and_renews_the_stamp(
    accounts: AccountStore,
) -> None:
    accounts.add("ana", "viewer", PASSWORD)
    before = accounts.get("ana")
    assert before is not None and len(before.stamp) == 16
    assert accounts.authenticate("ana", PASSWORD).stamp == before.stamp  # type: ignore[union-attr]
    assert not accounts.change_password("ana", "not the password", "another long password")
    with pytest.raises(ConfigError, match="at least 12"):
        accounts.change_password("ana", PASSWORD, "short")
    assert accounts.change_password("ana", PASSWORD, "another long password")
    after = accounts.get("ana")
    assert after == before and after.stamp != before.stamp  # type: ignore[union-attr]
    assert accounts.authenticate("ana", PASSWORD) is None
    assert not accounts.set_password("nobody", "another long password")
