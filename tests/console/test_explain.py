"""The explain page: hits marked at their spans in the original, with their details on
hover, and what ``screening explain --json`` gives, readable."""

from __future__ import annotations

import html
import json
import re

import pytest

from screening.console.explain import MAX_TEXT, Piece, pieces
from tests.fixtures.console import Site, csrf, login


def _hit(term: str, start: int, end: int, **extra: object) -> dict:
    return {"term": term, "start": start, "end": end, "source": "wordlist", "category": "gambling",
            "severity": "block", "transforms": [], **extra}  # fmt: skip


PIECE_CASES = [
    # (text, hits as (start, end), pieces as (text, number of covering hits))
    ("无命中", [], [("无命中", 0)]),
    ("来玩赌博吧", [(2, 4)], [("来玩", 0), ("赌博", 1), ("吧", 0)]),
    ("赌博", [(0, 2)], [("赌博", 1)]),
    ("百家乐赌博", [(0, 3), (3, 5)], [("百家乐", 1), ("赌博", 1)]),
    ("abcdef", [(1, 4), (2, 5)], [("a", 0), ("b", 1), ("cd", 2), ("e", 1), ("f", 0)]),
    ("短", [(0, 9)], [("短", 1)]),  # a span past the end is cut to the text
]


@pytest.mark.parametrize(("text", "spans", "expected"), PIECE_CASES)
def test_pieces_cut_the_text_at_every_hit_boundary(text, spans, expected) -> None:
    got = pieces(text, [_hit(text[s:e], s, e) for s, e in spans])
    assert [(p.text, len(p.hits)) for p in got] == expected
    assert "".join(p.text for p in got) == text


def test_a_piece_says_what_undid_which_transform() -> None:
    piece = Piece("堵博", [_hit("赌博", 0, 2, transforms=["homophone"])])
    assert piece.title == "赌博 · wordlist · gambling/block · transforms: homophone"


def test_the_page_marks_the_hit_and_shows_every_part(console_site: Site) -> None:
    client = login(console_site, console_site.add_user("viewer"))
    token = csrf(client.get("/console/explain"))
    text = "今晚一起去ＤＵ博吗"
    page = client.post("/console/explain", data={"csrf": token, "text": text})
    assert page.status_code == 200
    mark = re.search(r'<mark class="hit"[^>]*data-tip="([^"]*)"[^>]*>([^<]*)</mark>', page.text)
    assert mark, page.text
    assert html.unescape(mark.group(2)) == "ＤＵ博"
    assert "赌博" in html.unescape(mark.group(1)) and "pinyin" in html.unescape(mark.group(1))
    for part in ('id="folded"', 'id="compact"', 'id="tokens"', 'id="scores"', 'id="labels"',
                 'id="decision">block<'):  # fmt: skip
        assert part in page.text, part
    recorded = console_site.store.query("SELECT detail FROM records WHERE kind = 'console'")
    explained = [json.loads(d) for (d,) in recorded if '"explain"' in d]
    assert explained[0]["chars"] == len(text) and explained[0]["decision"] == "block"
    assert text not in recorded[-1][0]  # the pasted text stays out of the audit store


def test_the_text_is_escaped(console_site: Site) -> None:
    client = login(console_site, console_site.add_user("viewer"))
    token = csrf(client.get("/console/explain"))
    page = client.post("/console/explain", data={"csrf": token, "text": "<script>x()</script>赌博"})
    assert "<script>x()" not in page.text and "&lt;script&gt;" in page.text


def test_a_long_text_is_refused(console_site: Site) -> None:
    client = login(console_site, console_site.add_user("viewer"))
    token = csrf(client.get("/console/explain"))
    page = client.post("/console/explain", data={"csrf": token, "text": "长" * (MAX_TEXT + 1)})
    assert page.status_code == 413


def test_while_the_engine_loads_the_page_says_so(console_site: Site) -> None:
    console_site.console.engine = lambda: None
    client = login(console_site, console_site.add_user("viewer"))
    token = csrf(client.get("/console/explain"))
    page = client.post("/console/explain", data={"csrf": token, "text": "赌博"})
    assert page.status_code == 503 and "still loading" in page.text
