"""The Lists page over real HTTP: every entry with its production statistics, search,
who may see what, and the history with its diff (on a real Redis version store)."""

from __future__ import annotations

import re
import time

import pytest

from screening.console.lists import entries
from screening.console.sources import ListSources
from screening.engine.wordlist import Wordlist
from screening.operations.versions import RedisVersionStore
from screening.pipeline.signing import SigningKeys
from tests.fixtures.console import Site, login, verdict_record
from tests.fixtures.engine import FIXTURE_BANKS, FIXTURE_WORDLIST
from tests.fixtures.pipeline import SIGNING_KEY


def _rows(page: str) -> dict[tuple[str, str, str], str]:
    """``(kind, list, text) -> hits`` of the entries table."""
    table = page.split('id="entries"')[1].split("</table>")[0]
    found = re.findall(r'data-kind="([^"]+)" data-list="([^"]+)" data-text="([^"]+)">'
                       r'.*?class="hits">(\d*)<', table, re.S)  # fmt: skip
    return {(k, li, t): hits for k, li, t, hits in found}


def test_entries_cover_terms_patterns_allow_and_banks() -> None:
    wordlist = Wordlist.from_files(FIXTURE_WORDLIST)
    rows = entries(wordlist, {k: v.encode() for k, v in FIXTURE_BANKS.items()}, {})
    kinds = {(r.kind, r.list) for r in rows}
    assert ("term", "gambling") in kinds and ("pattern", "patterns") in kinds
    assert ("allow", "allow") in kinds and ("bank", "scams") in kinds
    assert len(rows) == len(wordlist.terms) + 2 + 2 + 4


def test_a_viewer_browses_every_entry_with_its_hits(lists_site: Site) -> None:
    now = time.time()
    lists_site.store.append([
        verdict_record("m1", "来赌博吧", at=now - 5, group="g1"),
        verdict_record("m2", "赌博赌博", at=now - 4, group="g2", decision="block"),
        verdict_record("m3", "冰毒出售", term="冰毒", category="drugs", at=now - 3),
        verdict_record("m4", "old 赌博", at=now - 40 * 86400),  # outside the window
    ])  # fmt: skip
    client = login(lists_site, lists_site.add_user("viewer"))
    page = client.get("/console/lists")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert rows[("term", "gambling", "赌博")] == "2"
    assert rows[("term", "drugs", "冰毒")] == "1"
    assert rows[("term", "gambling", "百家乐")] == "0"
    assert rows[("pattern", "patterns", "phone")] == "0"
    assert ("allow", "allow", "三黄片") in rows and ("bank", "rumours", "salt") in rows
    assert "Draft" not in page.text.split("</p>")[0]  # no draft link for a viewer
    assert client.get("/console/lists/draft").status_code == 403
    searched = _rows(client.get("/console/lists", params={"q": "黄片"}).text)
    assert set(searched) == {("term", "porn", "黄片"), ("allow", "allow", "三黄片")}
    banks = _rows(client.get("/console/lists", params={"kind": "bank"}).text)
    assert {k for k, _, _ in banks} == {"bank"} and len(banks) == 4
    longer = _rows(client.get("/console/lists", params={"days": "60"}).text)
    assert longer[("term", "gambling", "赌博")] == "3"


def test_without_redis_the_history_says_where_it_lives(lists_site: Site) -> None:
    client = login(lists_site, lists_site.add_user("viewer"))
    page = client.get("/console/lists/history")
    assert page.status_code == 200 and 'id="no-store"' in page.text


@pytest.fixture
def versions(redis_url: str) -> RedisVersionStore:
    return RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))


def test_the_history_shows_author_reason_forced_and_the_diff(
    lists_site: Site, versions: RedisVersionStore
) -> None:
    sources = lists_site.console.lists
    assert isinstance(sources, ListSources)
    sources.versions = versions
    first = {k: v.encode() for k, v in FIXTURE_WORDLIST.items()}
    second = dict(first, **{"drugs.txt": "冰毒 | block | pinyin\n麻古 | block\n".encode()})
    versions.publish("wordlist", "v1", first, {"author": "ana", "reason": "start"})
    versions.publish("wordlist", "v2", second, {"author": "bob", "reason": "新型毒品",
                                                "forced": True, "findings": ["x"]})  # fmt: skip
    client = login(lists_site, lists_site.add_user("viewer"))
    page = client.get("/console/lists/history").text
    events = re.findall(r'data-version="([^"]+)" data-action="publish">.*?class="author">([^<]*)<'
                        r'.*?class="reason">([^<]*)<.*?class="forced">([^<]*)<', page, re.S)  # fmt: skip
    assert events == [("v2", "bob", "新型毒品", "FORCED past 1 finding(s)"),
                      ("v1", "ana", "start", "")]  # fmt: skip
    diff = client.get("/console/lists/history", params={"a": "v1", "b": "live"}).text
    assert "v1 → v2: 1 added, 0 removed, 0 changed" in diff
    assert "+ term drugs/麻古" in diff
    # The page lists what is live: the store's version, not the files.
    assert "麻古" in client.get("/console/lists", params={"q": "麻古"}).text
    unknown = client.get("/console/lists/history", params={"a": "nope", "b": "live"})
    assert unknown.status_code == 200 and 'id="error"' in unknown.text
    assert 'data-version="v2"' in unknown.text  # the history still shows
