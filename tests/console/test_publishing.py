"""The draft over real HTTP: start, edit, CSV, lint findings beside the term, publish
(refused on findings unless forced, which is recorded), shadow and promote, roll back —
on a real Redis version store — and every step in the audit store with the account."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from screening.console.sources import ListSources
from screening.operations.shadow import Difference, RedisShadowStore, shadow_key
from screening.operations.versions import RedisVersionStore
from screening.pipeline.signing import SigningKeys
from tests.fixtures.console import Site, csrf, login
from tests.fixtures.pipeline import SIGNING_KEY, _free_port


def _sources(site: Site) -> ListSources:
    assert isinstance(site.console.lists, ListSources)
    return site.console.lists


def _post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    page = client.get("/console/lists/draft")
    revision = re.search(r'name="revision" value="(\d+)"', page.text)
    data = {"csrf": csrf(page), **({"revision": revision.group(1)} if revision else {}), **fields}
    return client.post(f"/console{path}", data=data)


def _actions(site: Site) -> list[dict[str, Any]]:
    return [r.detail for r in site.store.export(0, 2e10, kinds=["console"])
            if r.detail["action"].startswith(("draft", "publish", "rollback", "promote",
                                              "lists"))]  # fmt: skip


def _lint_of(page: str, term: str) -> str:
    row = re.search(rf'data-text="{term}"[^>]*>.*?class="lint">([^<]*)<', page, re.S)
    assert row, page
    return row.group(1)


def test_an_added_term_shows_its_lint_finding_and_what_would_change(lists_site: Site) -> None:
    analyst = lists_site.add_user("analyst")
    client = login(lists_site, analyst)
    assert 'id="no-draft"' in client.get("/console/lists/draft").text
    assert _post(client, "/lists/draft", action="start").status_code == 303
    added = _post(client, "/lists/draft", action="add", category="gambling", term="打牌",
                  severity="review", modes="", note="card games")  # fmt: skip
    assert added.status_code == 303
    page = client.get("/console/lists/draft").text
    assert "benign-hit" in _lint_of(page, "打牌")  # the benign message 周末一起打牌吧
    assert _lint_of(page, "赌博") == ""
    assert "+ term gambling/打牌" in page
    assert 'id="unavailable"' in page and "SCREENING_REDIS_URL" in page  # no Redis here
    assert 'id="publish-form"' not in page
    _post(client, "/lists/draft", action="remove", category="gambling", text="百家乐")
    _post(client, "/lists/draft", action="change", category="drugs", text="冰毒", term="冰毒",
          severity="review", modes="pinyin", note="")  # fmt: skip
    page = html.unescape(client.get("/console/lists/draft").text)
    assert "- term gambling/百家乐" in page and "~ term drugs/冰毒  severity block -> review" in page
    actions = _actions(lists_site)
    assert [a["action"] for a in actions] == ["draft_start", "draft_add", "draft_remove",
                                              "draft_change"]  # fmt: skip
    assert {a["account"] for a in actions} == {analyst}
    assert actions[1]["term"] == "打牌" and actions[1]["category"] == "gambling"


def test_bad_rows_and_stale_forms_are_refused_and_recorded(lists_site: Site) -> None:
    client = login(lists_site, lists_site.add_user("analyst"))
    _post(client, "/lists/draft", action="start")
    bad = _post(client, "/lists/draft", action="upload", category="fraud",
                csv="刷单,review\n返利,sometimes\n")  # fmt: skip
    assert bad.status_code == 400 and "upload:2" in bad.text and "unknown severity" in bad.text
    good = _post(client, "/lists/draft", action="upload", category="fraud",
                 csv="term,severity,note\n刷单,review,兼职刷单\n返利,block,\n")  # fmt: skip
    assert good.status_code == 303
    assert "+ term fraud/刷单" in client.get("/console/lists/draft").text
    stale = client.post("/console/lists/draft", data={
        "csrf": csrf(client.get("/console/lists/draft")), "revision": "1", "action": "add",
        "category": "drugs", "term": "麻古"})  # fmt: skip
    assert stale.status_code == 400 and "changed since" in stale.text
    refused = [a for a in _actions(lists_site) if a["action"] == "lists_refused"]
    assert [r["step"] for r in refused] == ["upload", "add"]
    reviewer = login(lists_site, lists_site.add_user("reviewer"))
    assert reviewer.get("/console/lists/draft").status_code == 403
    assert _post(reviewer, "/lists/draft", action="discard").status_code == 403


@pytest.fixture
def publishing(lists_site: Site, redis_url: str) -> RedisVersionStore:
    versions = RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))
    _sources(lists_site).versions = versions
    return versions


def test_publish_is_refused_on_findings_unless_forced_and_rolls_back(
    lists_site: Site, publishing: RedisVersionStore
) -> None:
    analyst = lists_site.add_user("analyst")
    client = login(lists_site, analyst)
    _post(client, "/lists/draft", action="start")
    _post(client, "/lists/draft", action="add", category="gambling", term="打牌")
    no_reason = _post(client, "/lists/publish", action="publish", reason="")
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    refused = _post(client, "/lists/publish", action="publish", reason="card games")
    assert refused.status_code == 400 and "refusing to publish" in refused.text
    assert publishing.pointer("wordlist", "live") is None
    forced = _post(client, "/lists/publish", action="publish", reason="card games", force="1")
    assert forced.status_code == 303, forced.text
    live = publishing.pointer("wordlist", "live")
    assert live is not None and "打牌" in publishing.files("wordlist", live)["gambling.txt"].decode()
    meta = publishing.meta("wordlist", live) or {}
    assert (meta["author"], meta["reason"], meta["forced"]) == (analyst, "card games", True)
    assert any("打牌" in finding for finding in meta["findings"])
    events = publishing.events("wordlist")
    assert [e["action"] for e in events] == ["publish", "boot"]  # configured files first
    assert 'id="no-draft"' in client.get("/console/lists/draft").text  # published: gone
    history = client.get("/console/lists/history").text
    assert "FORCED past" in history and "card games" in history
    rolled = _post(client, "/lists/publish", action="rollback")
    assert rolled.status_code == 303
    assert publishing.pointer("wordlist", "live") == events[1]["version"]
    assert publishing.events("wordlist")[0]["author"] == analyst
    actions = [(a["action"], a["account"]) for a in _actions(lists_site)]
    assert actions[-2:] == [("publish", analyst), ("rollback", analyst)]
    published = next(a for a in _actions(lists_site) if a["action"] == "publish")
    assert published["forced"] and published["findings"] >= 1 and published["version"] == live


def test_a_clean_draft_goes_to_shadow_and_is_promoted(
    lists_site: Site, publishing: RedisVersionStore
) -> None:
    client = login(lists_site, lists_site.add_user("admin"))
    _post(client, "/lists/draft", action="start")
    _post(client, "/lists/draft", action="add", category="drugs", term="麻古", severity="block")
    shadow = _post(client, "/lists/publish", action="publish", reason="new drug", slot="shadow")
    assert shadow.status_code == 303, shadow.text
    candidate = publishing.pointer("wordlist", "shadow")
    assert candidate and publishing.pointer("wordlist", "live") is None
    assert not (publishing.meta("wordlist", candidate) or {}).get("forced")
    shadows = RedisShadowStore(publishing.client)
    _sources(lists_site).shadows = shadows
    page = client.get("/console/lists/draft").text
    assert candidate in page and 'id="promote"' in page
    assert "no comparisons recorded yet" in page  # workers have compared nothing yet
    key = shadow_key({"wordlist": candidate})
    shadows.record(key, "v-live", 40, [Difference("m7", "收麻古", "pass", "block", ("drugs",),
                                                  (), ("麻古",))])  # fmt: skip
    report = html.unescape(client.get("/console/lists/draft").text)
    assert "compared 40 live message(s)" in report and "decisions that would change: 1" in report
    assert "m7: pass → block  收麻古  [candidate hits: 麻古]" in report
    assert _post(client, "/lists/publish", action="promote").status_code == 303
    assert publishing.pointer("wordlist", "live") == candidate
    assert publishing.pointer("wordlist", "shadow") is None


def test_an_unreachable_version_store_is_said_not_crashed_on(lists_site: Site) -> None:
    port = _free_port()  # nothing listens there
    versions = RedisVersionStore.from_url(f"redis://127.0.0.1:{port}/0",
                                          keys=SigningKeys.of(SIGNING_KEY))  # fmt: skip
    client = login(lists_site, lists_site.add_user("analyst"))
    page = client.get("/console/lists/draft")  # a draft is started while Redis is fine
    client.post("/console/lists/draft", data={"csrf": csrf(page), "action": "start"})
    _sources(lists_site).versions = versions
    for path in ("/console/lists", "/console/lists/history", "/console/lists/draft"):
        down = client.get(path)
        assert down.status_code == 503 and 'id="unreachable"' in down.text, path
    published = client.post("/console/lists/publish", data={
        "csrf": csrf(page), "revision": "1", "action": "publish", "reason": "x"})  # fmt: skip
    assert published.status_code == 503 and 'id="unreachable"' in published.text
    refused = [a for a in _actions(lists_site) if a["action"] == "lists_refused"]
    assert refused[-1]["step"] == "publish" and "127.0.0.1" in refused[-1]["why"]


def _cell(page: str, attribute: str, key: str) -> str:
    row = re.search(rf'{attribute}="{key}"[^>]*>.*?class="lint">([^<]*)<', page, re.S)
    assert row, page
    return html.unescape(row.group(1))


def test_allow_list_entries_and_patterns_are_edited_checked_and_published(
    lists_site: Site, publishing: RedisVersionStore
) -> None:
    analyst = lists_site.add_user("analyst")
    client = login(lists_site, analyst)
    _post(client, "/lists/draft", action="start")
    added = _post(client, "/lists/draft", action="allow_add", term="百家乐", note="游戏名")
    assert added.status_code == 303, added.text
    page = client.get("/console/lists/draft").text
    assert "cancels: '百家乐'" in _cell(page, "data-allow", "百家乐")  # lint, beside the entry
    assert "shadowed" in _cell(page, "data-text", "百家乐")  # and beside the term it cancels
    slow = _post(client, "/lists/draft", action="pattern_add", name="qq2",
                 category="contact_diversion", severity="review", regex=r"qq\s*:?\s*\d{5,}")  # fmt: skip
    assert slow.status_code == 400 and "super-linear" in html.unescape(slow.text)
    assert "qq2" not in client.get("/console/lists/draft").text  # nothing saved
    wechat = r"(?<![a-z])wx\s*+[:：]?\s*+[a-z][a-z0-9_-]{5,19}"
    for fields in (
        {"action": "pattern_add", "name": "wx", "category": "contact_diversion",
         "severity": "review", "regex": wechat},
        {"action": "pattern_change", "key": "qq", "name": "qq", "category": "contact_diversion",
         "severity": "block", "regex": r"(?:qq|扣扣|企鹅)\s*+[:：号]?\s*+\d{5,11}"},
        {"action": "allow_remove", "key": "他妈妈"},
        {"action": "allow_remove", "key": "百家乐"},
    ):  # fmt: skip
        assert _post(client, "/lists/draft", **fields).status_code == 303, fields
    page = html.unescape(client.get("/console/lists/draft").text)
    assert _cell(page, "data-pattern", "wx") == "" and 'data-allow="百家乐"' not in page
    assert "+ pattern contact_diversion/wx" in page
    assert "~ pattern contact_diversion/qq  severity review -> block" in page
    assert "- allow 他妈妈" in page
    published = _post(client, "/lists/publish", action="publish", reason="wechat ids")
    assert published.status_code == 303, published.text
    live = publishing.pointer("wordlist", "live")
    assert live is not None
    files = publishing.files("wordlist", live) or {}
    assert wechat in files["patterns.txt"].decode() and "他妈妈" not in files["allow.txt"].decode()
    actions = [a["action"] for a in _actions(lists_site)]
    assert actions == ["draft_start", "draft_allow_add", "lists_refused", "draft_pattern_add",
                       "draft_pattern_change", "draft_allow_remove", "draft_allow_remove",
                       "publish"]  # fmt: skip
    refused = next(a for a in _actions(lists_site) if a["action"] == "lists_refused")
    assert refused["step"] == "pattern_add" and "super-linear" in refused["why"]
