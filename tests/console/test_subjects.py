"""Groups and users: measures in force and history from the records; lifting needs an
admin and a reason, goes through the injected enforcer path and is recorded."""

from __future__ import annotations

import json
import time

from screening.enforcement.events import measure_record
from screening.enforcement.measures import Measure
from tests.fixtures.console import Site, csrf, login, verdict_record


def _measure(mid: str, kind: str, subject: str, subject_id: str, *, until: float | None,
             started: float) -> Measure:  # fmt: skip
    return Measure(id=mid, kind=kind, subject=subject, subject_id=subject_id, group_id="g1",
                   started_at=started, until=until, reason="repeat violations", trigger="m1")  # fmt: skip


def _fill(site: Site) -> None:
    now = time.time()
    warning = _measure("x1", "group_warning", "group", "g1", until=now + 3600, started=now - 60)
    ended = _measure("x2", "group_suspend_posting", "group", "g1", until=now - 1, started=now - 900)
    lifted = _measure("x3", "group_suspend_posting", "group", "g1", until=None, started=now - 50)
    blacklist = _measure("x4", "user_blacklist", "user", "u-7", until=None, started=now - 40)
    site.store.append([
        verdict_record("m1", "来赌博吧", group="g1", user="u-7", at=now - 70),
        measure_record(warning), measure_record(ended), measure_record(lifted),
        measure_record(lifted, now - 20, "appeal upheld"), measure_record(blacklist),
    ])  # fmt: skip


def test_a_group_shows_what_is_in_force_and_its_history(console_site: Site) -> None:
    _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    page = client.get("/console/subjects", params={"group": "g1"})
    assert page.status_code == 200
    in_force = page.text.split('id="in-force"')[1].split("</table>")[0]
    assert "(group_warning)" in in_force and "group_suspend_posting" not in in_force
    assert "user_blacklist" not in in_force  # the user's measure, not the group's
    history = page.text.split('id="history"')[1]
    assert history.count("<tr>") == 7  # header + verdict, 3 measures, a lift, the blacklist
    assert "appeal upheld" in history and "u-7" not in history  # masked in a group's history
    assert "<form" not in in_force  # a reviewer sees no lift button


def test_a_user_shows_their_measures(console_site: Site) -> None:
    _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    page = client.get("/console/subjects", params={"user": "u-7"})
    assert "(user_blacklist)" in page.text.split('id="in-force"')[1].split("</table>")[0]


def test_an_admin_lifts_with_a_reason_and_it_is_recorded(console_site: Site) -> None:
    _fill(console_site)
    name = console_site.add_user("admin")
    client = login(console_site, name)
    page = client.get("/console/subjects", params={"user": "u-7"})
    assert 'action="/console/subjects/lift"' in page.text
    token = csrf(page)
    answer = client.post("/console/subjects/lift", data={
        "csrf": token, "user": "u-7", "kind": "user_blacklist", "reason": "appeal upheld"})
    assert answer.status_code == 303 and "done=lifted" in answer.headers["location"]
    ((subject, subject_id, kind, why),) = console_site.lifts
    assert (subject, subject_id, kind) == ("user", "u-7", "user_blacklist")
    assert "appeal upheld" in why and name in why
    actions = [json.loads(d) for (d,) in console_site.store.query(
        "SELECT detail FROM records WHERE kind = 'console' AND user_id = 'u-7'")]  # fmt: skip
    assert [(a["action"], a["account"], a["reason"]) for a in actions if a["action"] == "lift"] \
        == [("lift", name, "appeal upheld")]  # fmt: skip


def test_lifting_needs_an_admin_a_known_kind_and_a_reason(console_site: Site) -> None:
    _fill(console_site)
    analyst = login(console_site, console_site.add_user("analyst"))
    token = csrf(analyst.get("/console/subjects"))
    form = {"csrf": token, "user": "u-7", "kind": "user_blacklist", "reason": "x"}
    assert analyst.post("/console/subjects/lift", data=form).status_code == 403
    admin = login(console_site, console_site.add_user("admin"))
    token = csrf(admin.get("/console/subjects"))
    for bad in ({"reason": ""}, {"kind": "group_warning"}, {"kind": "nonsense"}):
        answer = admin.post("/console/subjects/lift", data={**form, "csrf": token, **bad})
        assert answer.status_code == 400, bad
    assert console_site.lifts == []


def test_without_redis_the_lift_changes_nothing_and_says_so(console_site: Site) -> None:
    _fill(console_site)
    console_site.console.lift = None
    admin = login(console_site, console_site.add_user("admin"))
    token = csrf(admin.get("/console/subjects"))
    answer = admin.post("/console/subjects/lift", data={
        "csrf": token, "group": "g1", "kind": "group_warning", "reason": "mistake"})
    assert "done=unavailable" in answer.headers["location"]
