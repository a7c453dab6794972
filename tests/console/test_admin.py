"""The accounts page: admins only; create, change a role, disable and enable, each
recorded; an admin cannot change their own account."""

from __future__ import annotations

import json

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
