"""The accounts page: admins only; create, change a role, disable and enable, each
recorded; an admin cannot change their own account."""

from __future__ import annotations

import json

import httpx

from screening.console.accounts import Account
from tests.fixtures.console import PASSWORD, Site, csrf, login


def _actions(site: Site) -> list[dict]:
    rows = site.store.query("SELECT detail FROM records WHERE kind = 'console' ORDER BY id")
    return [json.loads(detail) for (detail,) in rows]


def test_only_admins_reach_it(console_site: Site) -> None:
    analyst = login(console_site, console_site.add_user("analyst"))
    assert analyst.get("/console/accounts").status_code == 403
    admin = login(console_site, console_site.add_user("admin"))
    page = admin.get("/console/accounts")
    assert page.status_code == 200 and 'id="accounts"' in page.text


def test_create_change_disable_enable(console_site: Site) -> None:
    name = console_site.add_user("admin")
    admin = login(console_site, name)
    token = csrf(admin.get("/console/accounts"))
    steps = [
        ({"action": "add", "name": "新人", "role": "viewer", "password": PASSWORD},
         Account("新人", "viewer")),
        ({"action": "role", "name": "新人", "role": "reviewer"}, Account("新人", "reviewer")),
        ({"action": "disable", "name": "新人"}, Account("新人", "reviewer", disabled=True)),
        ({"action": "enable", "name": "新人"}, Account("新人", "reviewer")),
    ]  # fmt: skip
    for form, expected in steps:
        answer = admin.post("/console/accounts", data={"csrf": token, **form})
        assert answer.status_code == 303, answer.text
        assert console_site.console.accounts.get("新人") == expected
    done = [(a["action"], a["account"]) for a in _actions(console_site) if a.get("name") == "新人"]
    assert done == [("add_user", name), ("role_user", name), ("disable_user", name),
                    ("enable_user", name)]  # fmt: skip
    assert login(console_site, "新人").get("/console/review").status_code == 200


def test_refusals_are_shown_and_change_nothing(console_site: Site) -> None:
    name = console_site.add_user("admin")
    admin = login(console_site, name)
    token = csrf(admin.get("/console/accounts"))
    cases = [
        ({"action": "disable", "name": name}, "cannot change their own"),
        ({"action": "role", "name": name, "role": "viewer"}, "cannot change their own"),
        ({"action": "add", "name": "x", "role": "viewer", "password": "short"}, "at least 12"),
        ({"action": "add", "name": "y", "role": "root", "password": PASSWORD}, "unknown console role"),
        ({"action": "disable", "name": "nobody"}, "no account nobody"),
    ]  # fmt: skip
    for form, message in cases:
        answer = admin.post("/console/accounts", data={"csrf": token, **form})
        assert answer.status_code == 400 and message in answer.text, form
    assert console_site.console.accounts.get(name) == Account(name, "admin")
    assert [a.name for a in console_site.console.accounts.all()] == [name]


def test_the_error_is_never_taken_from_the_url(console_site: Site) -> None:
    admin = login(console_site, console_site.add_user("admin"))
    page = admin.get("/console/accounts", params={"error": "call this number"})
    assert "call this number" not in page.text


def _cannot_log_in(site: Site, name: str, password: str) -> bool:
    client = httpx.Client(base_url=site.url, timeout=30)
    token = csrf(client.get("/console/login"))
    answer = client.post("/console/login", data={"csrf": token, "name": name,
                                                 "password": password})  # fmt: skip
    return answer.status_code == 401


def test_an_account_changes_its_own_password_with_the_current_one(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client, elsewhere = login(console_site, name), login(console_site, name)
    page = client.get("/console/account")
    assert page.status_code == 200 and 'id="password-form"' in page.text
    token = csrf(page)
    new = "a much longer passphrase"
    cases = [
        ({"current": "wrong password!!", "new": new, "again": new}, "current password is wrong"),
        ({"current": PASSWORD, "new": "short", "again": "short"}, "at least 12"),
        ({"current": PASSWORD, "new": new, "again": new + "x"}, "differ"),
    ]  # fmt: skip
    for form, message in cases:
        answer = client.post("/console/account", data={"csrf": token, **form})
        assert answer.status_code == 400 and message in answer.text, form
    assert client.post("/console/account", data={"current": PASSWORD, "new": new,
                                                 "again": new}).status_code == 403  # no CSRF
    assert console_site.console.accounts.authenticate(name, PASSWORD) is not None
    answer = client.post("/console/account",
                         data={"csrf": token, "current": PASSWORD, "new": new, "again": new})  # fmt: skip
    assert answer.status_code == 303 and "done=password" in answer.headers["location"]
    assert _cannot_log_in(console_site, name, PASSWORD)
    assert client.get("/console/explain").status_code == 200  # this session goes on
    assert elsewhere.get("/console/explain").status_code == 303  # the one elsewhere ends
    login(console_site, name, new)
    stored = console_site.store.query(
        "SELECT password_hash FROM console_accounts WHERE name = ?", (name,))[0][0]
    assert stored.startswith("$argon2id$")
    actions = [a["action"] for a in _actions(console_site) if a["account"] == name]
    assert actions.count("password_change_failed") == 1 and actions.count("password_change") == 1


def test_an_admin_resets_another_account_s_password(console_site: Site) -> None:
    admin_name, name = console_site.add_user("admin"), console_site.add_user("reviewer")
    admin, theirs = login(console_site, admin_name), login(console_site, name)
    page = admin.get("/console/accounts")
    assert f'name="name" value="{name}"' in page.text and 'value="password"' in page.text
    token = csrf(page)
    short = admin.post("/console/accounts",
                       data={"csrf": token, "action": "password", "name": name, "password": "x"})  # fmt: skip
    assert short.status_code == 400 and "at least 12" in short.text
    own = admin.post("/console/accounts", data={"csrf": token, "action": "password",
                                                "name": admin_name, "password": "x" * 12})  # fmt: skip
    assert own.status_code == 400 and "cannot change their own" in own.text
    new = "reset by the admin 2026"
    reset = admin.post("/console/accounts",
                       data={"csrf": token, "action": "password", "name": name, "password": new})  # fmt: skip
    assert reset.status_code == 303
    assert theirs.get("/console/review").status_code == 303  # their session ended
    assert _cannot_log_in(console_site, name, PASSWORD)
    login(console_site, name, new)
    assert {"account": admin_name, "action": "reset_password", "name": name} in _actions(
        console_site)
    assert all("password" not in json.dumps(a).replace("reset_password", "")
               for a in _actions(console_site))  # never the password itself
