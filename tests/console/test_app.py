"""Log-in, log-out, the access rules of every page, CSRF, headers, and the audit
records of each, over real HTTP against both record backends."""

from __future__ import annotations

import json

import httpx
import pytest

from screening.console.app import MAX_FAILURES
from tests.fixtures.console import PASSWORD, Site, csrf, login

#: (page, method, least role): every page and action of the console.
PAGES = [
    ("/console/explain", "GET", "viewer"),
    ("/console/feedback", "GET", "viewer"),
    ("/console/review", "GET", "reviewer"),
    ("/console/subjects", "GET", "reviewer"),
]
ROLES = ("viewer", "reviewer", "analyst", "admin")


def _console_actions(site: Site) -> list[dict]:
    rows = site.store.query("SELECT detail FROM records WHERE kind = 'console' ORDER BY id")
    return [json.loads(detail) for (detail,) in rows]


def test_pages_need_a_session(console_site: Site) -> None:
    anonymous = httpx.Client(base_url=console_site.url)
    for page, _, _ in PAGES:
        answer = anonymous.get(page)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    assert anonymous.post("/console/review/1", data={"outcome": "confirmed"}).status_code == 303


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_pages(console_site: Site, role: str) -> None:
    client = login(console_site, console_site.add_user(role))
    for page, _, needs in PAGES:
        answer = client.get(page)
        allowed = ROLES.index(role) >= ROLES.index(needs)
        assert answer.status_code == (200 if allowed else 403), (page, role)
    denied = [a for a in _console_actions(console_site) if a["action"] == "denied"]
    assert len(denied) == sum(ROLES.index(role) < ROLES.index(n) for _, _, n in PAGES)


def test_login_sets_a_hardened_cookie_and_is_recorded(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client = login(console_site, name)
    answer = client.get("/console/explain")
    assert answer.status_code == 200 and name in answer.text
    for header in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert header in answer.headers
    actions = _console_actions(console_site)
    assert {"account": name, "action": "login", "role": "viewer"} in actions


def test_cookie_flags(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client = httpx.Client(base_url=console_site.url)
    token = csrf(client.get("/console/login"))
    answer = client.post("/console/login", data={"csrf": token, "name": name, "password": PASSWORD})
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("screening_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_wrong_password_and_unknown_name_fail_alike(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client = httpx.Client(base_url=console_site.url)
    for who, password in ((name, "wrong password!!"), ("nobody", PASSWORD)):
        token = csrf(client.get("/console/login"))
        answer = client.post("/console/login", data={"csrf": token, "name": who, "password": password})
        assert answer.status_code == 401 and "Unknown name or wrong password" in answer.text
    failed = [a["account"] for a in _console_actions(console_site) if a["action"] == "login_failed"]
    assert failed == [name, "nobody"]


def test_login_without_its_csrf_token_is_refused(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client = httpx.Client(base_url=console_site.url)
    client.get("/console/login")
    answer = client.post("/console/login", data={"csrf": "forged", "name": name, "password": PASSWORD})
    assert answer.status_code == 403 and "screening_console=" not in answer.headers.get("set-cookie", "")


def test_repeated_failures_lock_the_name(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client = httpx.Client(base_url=console_site.url)
    for _ in range(MAX_FAILURES):
        token = csrf(client.get("/console/login"))
        client.post("/console/login", data={"csrf": token, "name": name, "password": "wrong password!!"})
    token = csrf(client.get("/console/login"))
    answer = client.post("/console/login", data={"csrf": token, "name": name, "password": PASSWORD})
    assert answer.status_code == 429


def test_a_post_without_the_session_csrf_token_is_refused(console_site: Site) -> None:
    client = login(console_site, console_site.add_user("viewer"))
    answer = client.post("/console/explain", data={"csrf": "forged", "text": "赌博"})
    assert answer.status_code == 403 and "The form expired" in answer.text


def test_a_forged_cookie_is_no_session(console_site: Site) -> None:
    client = httpx.Client(base_url=console_site.url, cookies={"screening_console": "e30.deadbeef"})
    assert client.get("/console/explain").status_code == 303


def test_a_disabled_account_loses_its_session_at_once(console_site: Site) -> None:
    name = console_site.add_user("reviewer")
    client = login(console_site, name)
    console_site.store.execute([("UPDATE console_accounts SET disabled = 1 WHERE name = ?", (name,))])
    assert client.get("/console/review").status_code == 303


def test_logout_ends_the_session(console_site: Site) -> None:
    name = console_site.add_user("viewer")
    client = login(console_site, name)
    token = csrf(client.get("/console/explain"))
    answer = client.post("/console/logout", data={"csrf": token})
    assert answer.status_code == 303
    assert client.get("/console/explain").status_code == 303
    assert {"account": name, "action": "logout"} in _console_actions(console_site)
