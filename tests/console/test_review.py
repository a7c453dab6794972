"""The review queue: newest review verdicts first, filters, confirm and overturn, one
outcome per verdict, the review.outcome event, masked user ids, export."""

from __future__ import annotations

import json
import re
import time

from screening.console.review import EVENT_REVIEW_OUTCOME, outcome_event
from screening.console.web import mask
from screening.enforcement.enforcer import Enforcer
from screening.enforcement.reports import Report, handle_report
from screening.enforcement.state import MemoryPolicyState
from screening.engine.verdict import Verdict
from tests.fixtures.console import Site, csrf, login, verdict_record
from tests.fixtures.enforcement import make_policy, message


def _fill(site: Site) -> dict[str, int]:
    now = time.time()
    site.store.append([
        verdict_record("m1", "来赌博吧", at=now - 30),
        verdict_record("m2", "冰毒出售", term="冰毒", category="drugs", group="g2", at=now - 20),
        verdict_record("m3", "百家乐上线", term="百家乐", at=now - 10, user="u-secret-3"),
        verdict_record("m4", "赌博网站", decision="block", at=now),  # not for review
    ])  # fmt: skip
    rows = site.store.query("SELECT message_id, id FROM records WHERE kind = 'verdict'")
    return dict(rows)


def _queued(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="item" data-id="(\d+)"', page)]


def test_the_queue_lists_review_verdicts_newest_first(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    page = client.get("/console/review")
    assert _queued(page.text) == [ids["m3"], ids["m2"], ids["m1"]]
    assert '<mark class="hit"' in page.text and ">百家乐</mark>" in page.text


def test_filters(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    cases = [({"category": "drugs"}, ["m2"]), ({"group": "g1"}, ["m3", "m1"]),
             ({"term": "百家乐"}, ["m3"]), ({"category": "gambling", "term": "赌博"}, ["m1"]),
             ({"category": "porn"}, [])]  # fmt: skip
    for params, expected in cases:
        page = client.get("/console/review", params=params)
        assert _queued(page.text) == [ids[m] for m in expected], params


def test_the_list_filter_is_in_the_form_and_kept_when_deciding(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    page = client.get("/console/review", params={"list": "drugs.txt"})
    assert 'name="list" value="drugs.txt"' in page.text
    assert _queued(page.text) == []  # the fixture's labels name no list
    labelled = verdict_record("m5", "冰毒出售", term="冰毒", category="drugs")
    labelled.detail["labels"][0]["list"] = "drugs"
    console_site.store.append([labelled])
    page = client.get("/console/review", params={"list": "drugs.txt"})
    (vid,) = _queued(page.text)
    assert vid not in ids.values()
    answer = client.post(f"/console/review/{vid}", data={"csrf": csrf(page), "outcome": "overturned",
                                                         "list": "drugs.txt"})  # fmt: skip
    assert answer.status_code == 303 and "list=drugs.txt" in answer.headers["location"]


def test_user_ids_are_masked_unless_asked_and_asking_is_recorded(console_site: Site) -> None:
    _fill(console_site)
    name = console_site.add_user("reviewer")
    client = login(console_site, name)
    page = client.get("/console/review")
    assert "u-secret-3" not in page.text and mask("u-secret-3") in page.text
    page = client.get("/console/review", params={"ids": "1"})
    assert "u-secret-3" in page.text
    actions = console_site.store.query("SELECT detail FROM records WHERE kind = 'console'")
    assert any(json.loads(d)["action"] == "reveal_ids" and json.loads(d)["account"] == name
               for (d,) in actions)  # fmt: skip


def test_confirming_records_the_outcome_sends_the_event_and_leaves_the_queue(console_site: Site) -> None:
    ids = _fill(console_site)
    name = console_site.add_user("reviewer")
    client = login(console_site, name)
    token = csrf(client.get("/console/review"))
    answer = client.post(f"/console/review/{ids['m3']}", data={"csrf": token, "outcome": "confirmed"})
    assert answer.status_code == 303 and "done=confirmed" in answer.headers["location"]
    assert _queued(client.get("/console/review").text) == [ids["m2"], ids["m1"]]
    (detail,) = console_site.store.query("SELECT detail FROM records WHERE kind = 'review'")[0]
    outcome = json.loads(detail)
    assert outcome["account"] == name and outcome["outcome"] == "confirmed"
    assert outcome["terms"] == ["百家乐"] and outcome["categories"] == ["gambling"]
    (event,) = console_site.sent
    assert event["type"] == EVENT_REVIEW_OUTCOME and event["message_id"] == "m3"
    assert event["outcome"] == "confirmed" and event["reviewed_by"] == name


def test_overturning_with_a_corrected_category(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    token = csrf(client.get("/console/review"))
    client.post(f"/console/review/{ids['m1']}",
                data={"csrf": token, "outcome": "overturned", "corrected": "fraud"})  # fmt: skip
    (detail,) = console_site.store.query("SELECT detail FROM records WHERE kind = 'review'")[0]
    assert json.loads(detail)["category"] == "fraud"
    assert console_site.sent[0]["corrected_category"] == "fraud"


def test_a_confirmation_applies_measures_under_the_corrected_category(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    token = csrf(client.get("/console/review", params={"category": "gambling"}))
    answer = client.post(f"/console/review/{ids['m1']}", data={  # filtered: both fields
        "csrf": token, "outcome": "confirmed", "category": "gambling",
        "corrected": "violence_terror"})  # fmt: skip
    location = answer.headers["location"]
    assert "done=confirmed" in location and "measures=user_blacklist" in location
    assert "category=gambling" in location  # the filter is kept
    assert console_site.confirms == [(ids["m1"], "violence_terror")]
    page = client.get(location.removeprefix(console_site.url))
    assert "Measures applied: user_blacklist." in page.text
    token = csrf(page)
    answer = client.post(f"/console/review/{ids['m2']}", data={"csrf": token, "outcome": "confirmed"})
    assert "measures=none" in answer.headers["location"]
    assert console_site.confirms[-1] == (ids["m2"], None)
    client.post(f"/console/review/{ids['m3']}", data={"csrf": token, "outcome": "overturned"})
    assert len(console_site.confirms) == 2  # an overturned verdict applies nothing


def test_without_a_broker_a_confirmation_says_no_measure_was_applied(console_site: Site) -> None:
    ids = _fill(console_site)
    console_site.console.confirm = None
    client = login(console_site, console_site.add_user("reviewer"))
    token = csrf(client.get("/console/review"))
    answer = client.post(f"/console/review/{ids['m1']}", data={"csrf": token, "outcome": "confirmed"})
    assert "measures=unapplied" in answer.headers["location"]
    actions = [json.loads(d) for (d,) in
               console_site.store.query("SELECT detail FROM records WHERE kind = 'console'")]  # fmt: skip
    assert [a["why"] for a in actions if a["action"] == "measures_not_applied"] \
        == ["no broker configured"]  # fmt: skip
    answer = client.post(f"/console/review/{ids['m2']}",
                         data={"csrf": token, "outcome": "confirmed", "corrected": "nonsense"})  # fmt: skip
    assert answer.status_code == 400 and console_site.store.count("review") == 1


def test_the_first_outcome_stands(console_site: Site) -> None:
    ids = _fill(console_site)
    first = login(console_site, console_site.add_user("reviewer"))
    second = login(console_site, console_site.add_user("reviewer"))
    for client, outcome in ((first, "confirmed"), (second, "overturned")):
        token = csrf(client.get("/console/review"))
        answer = client.post(f"/console/review/{ids['m1']}", data={"csrf": token, "outcome": outcome})
    assert "done=already" in answer.headers["location"]
    assert console_site.store.count("review") == 1 and len(console_site.sent) == 1


def test_unsent_outcomes_are_recorded_as_such(console_site: Site) -> None:
    ids = _fill(console_site)
    console_site.console.send = None
    client = login(console_site, console_site.add_user("reviewer"))
    token = csrf(client.get("/console/review"))
    answer = client.post(f"/console/review/{ids['m1']}", data={"csrf": token, "outcome": "confirmed"})
    assert "confirmed-unsent" in answer.headers["location"]
    assert console_site.store.count("review") == 1
    actions = [json.loads(d)["action"] for (d,) in
               console_site.store.query("SELECT detail FROM records WHERE kind = 'console'")]  # fmt: skip
    assert "review_not_sent" in actions


def test_a_viewer_cannot_decide_and_bad_requests_change_nothing(console_site: Site) -> None:
    ids = _fill(console_site)
    viewer = login(console_site, console_site.add_user("viewer"))
    token = csrf(viewer.get("/console/explain"))
    assert viewer.post(f"/console/review/{ids['m1']}",
                       data={"csrf": token, "outcome": "confirmed"}).status_code == 403  # fmt: skip
    reviewer = login(console_site, console_site.add_user("reviewer"))
    token = csrf(reviewer.get("/console/review"))
    assert reviewer.post(f"/console/review/{ids['m1']}",
                         data={"csrf": token, "outcome": "maybe"}).status_code == 400  # fmt: skip
    assert reviewer.post("/console/review/999999",
                         data={"csrf": token, "outcome": "confirmed"}).status_code == 400  # fmt: skip
    assert console_site.store.count("review") == 0


def test_outcomes_are_exported_with_the_records(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    token = csrf(client.get("/console/review"))
    client.post(f"/console/review/{ids['m2']}", data={"csrf": token, "outcome": "confirmed"})
    exported = list(console_site.store.export(0, time.time() + 10, kinds=["review"]))
    assert [r.message_id for r in exported] == ["m2"]
    assert outcome_event(exported[0])["event_id"] == console_site.sent[0]["event_id"]


def _report(enforcer: Enforcer, mid: str, reporter: str, reason: str) -> None:
    """A user report as the report actor handles it: the engine passes the message, and
    enough distinct reporters put it in the queue (a ``review`` verdict and the reports)."""
    wire = message(mid, sender="author").to_wire() | {"text": f"加我微信 {mid}"}
    report = Report.from_dict({"v": 1, "message": wire, "reported_by": reporter,
                               "reason": reason})  # fmt: skip
    handle_report(enforcer, report, Verdict(mid, "pass", {}, (), {"engine": "test"}))


def test_user_reports_most_reported_first_and_decided_the_same_way(console_site: Site) -> None:
    ids = _fill(console_site)  # older review verdicts nobody reported
    enforcer = Enforcer(make_policy(), MemoryPolicyState(), console_site.store)
    for mid, reporters in (("few", 3), ("many", 5), ("under", 2)):  # 3 reporters: review
        for n in range(reporters):
            _report(enforcer, mid, f"r{n}", f"广告 {mid} {n}")
    reported = dict(console_site.store.query(
        "SELECT message_id, id FROM records WHERE kind = 'verdict' AND message_id IN "
        "('few', 'many', 'under')"))  # fmt: skip
    assert set(reported) == {"few", "many"}  # two reporters are not enough to queue it
    client = login(console_site, console_site.add_user("reviewer"))
    newest = client.get("/console/review")
    assert _queued(newest.text) == [reported["many"], reported["few"], ids["m3"], ids["m2"],
                                    ids["m1"]]  # fmt: skip
    assert "reported by 5: 广告 many 4 / 广告 many 3 / 广告 many 2" in newest.text
    page = client.get("/console/review", params={"order": "reported"})
    assert _queued(page.text) == [reported["many"], reported["few"]]
    assert "reports: 5 distinct reporters" not in page.text  # the rule at the threshold
    assert "reports: 3 distinct reporters &gt;= 3" in page.text
    answer = client.post(f"/console/review/{reported['many']}", data={
        "csrf": csrf(page), "outcome": "confirmed", "order": "reported",
        "corrected": "contact_diversion"})  # fmt: skip
    assert "order=reported" in answer.headers["location"]
    assert console_site.confirms == [(reported["many"], "contact_diversion")]
    assert _queued(client.get("/console/review", params={"order": "reported"}).text) \
        == [reported["few"]]  # fmt: skip
    assert _queued(client.get("/console/review", params={"order": "reported",
                                                         "group": "g2"}).text) == []  # fmt: skip


def test_an_overturn_gives_back_what_the_verdict_cost(console_site: Site) -> None:
    ids = _fill(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    token = csrf(client.get("/console/review"))
    answer = client.post(f"/console/review/{ids['m2']}", data={"csrf": token, "outcome": "overturned"})
    assert "lifted=group_warning" in answer.headers["location"]
    assert console_site.retracts == [ids["m2"]] and console_site.confirms == []
    page = client.get(answer.headers["location"])
    assert "Given back, and lifted: group_warning." in page.text
    answer = client.post(f"/console/review/{ids['m1']}", data={"csrf": token, "outcome": "overturned"})
    assert "lifted=none" in answer.headers["location"]
    console_site.console.retract = None  # no broker: the outcome stands, and says so
    answer = client.post(f"/console/review/{ids['m3']}", data={"csrf": token, "outcome": "overturned"})
    assert "lifted=unretracted" in answer.headers["location"]
    actions = [r.detail for r in console_site.store.export(0, time.time() + 1, kinds=["console"])]
    assert [a["review"] for a in actions if a["action"] == "retraction_not_applied"] \
        == [f"review:{ids['m3']}"]  # fmt: skip


def _reported(site: Site) -> int:
    enforcer = Enforcer(make_policy(), MemoryPolicyState(), site.store)
    for n in range(3):
        _report(enforcer, "rep", f"r{n}", f"广告 {n}")
    ((vid,),) = site.store.query("SELECT id FROM records WHERE kind = 'verdict' AND message_id = 'rep'")
    return int(vid)


def test_each_reporter_hears_the_outcome_of_the_review(console_site: Site) -> None:
    vid = _reported(console_site)
    client = login(console_site, console_site.add_user("reviewer"))
    client.post(f"/console/review/{vid}", data={
        "csrf": csrf(client.get("/console/review")), "outcome": "overturned"})  # fmt: skip
    outcome, *reports = console_site.sent
    assert outcome["type"] == EVENT_REVIEW_OUTCOME
    assert [(e["type"], e["reporter_id"], e["outcome"], e["reason"]) for e in reports] == [
        ("report.outcome", f"r{n}", "overturned", f"广告 {n}") for n in range(3)]
    assert {e["distinct_reporters"] for e in reports} == {3} and all(e["reviewed"] for e in reports)
    assert len({e["event_id"] for e in reports}) == 3
    assert all("sender_id" not in e and "text" not in e for e in reports)
    # the screening's own report.outcome (dismissed, then review) has other ids
    assert not {e["event_id"] for e in reports} & {
        e["event_id"] for e in console_site.sent if e.get("reviewed") is None}


def test_reporters_are_not_told_when_the_policy_says_not_to(console_site: Site) -> None:
    vid = _reported(console_site)
    console_site.console.notify_reporters = False
    client = login(console_site, console_site.add_user("reviewer"))
    client.post(f"/console/review/{vid}", data={
        "csrf": csrf(client.get("/console/review")), "outcome": "confirmed"})  # fmt: skip
    assert [e["type"] for e in console_site.sent] == [EVENT_REVIEW_OUTCOME]
