"""The draft against live on labelled sets: the CLI's figures and chart, over HTTP."""

from __future__ import annotations

import base64
import errno
import html
import json
import os
import re
from pathlib import Path

from screening.console.backtest import compare_draft
from screening.console.sources import ListSources
from screening.engine.core import Engine
from screening.engine.wordlist import Wordlist
from tests.fixtures.console import Site, csrf, login
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import wait_until

LABELLED = [
    {"text": "周末一起打牌吧", "labels": []},
    {"text": "明天开会", "labels": []},
    {"text": "来打牌赌钱，一把五百", "labels": ["gambling"]},
    {"text": "来赌博吧", "labels": ["gambling"]},
]


def _set(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in LABELLED),
                    encoding="utf-8")  # fmt: skip
    return path


def _with_card_games() -> Wordlist:
    files = dict(
        FIXTURE_WORDLIST, **{"gambling.txt": FIXTURE_WORDLIST["gambling.txt"] + "打牌 | block\n"}
    )
    return Wordlist.from_files(files)


def test_the_draft_s_difference_is_measured(engine: Engine, tmp_path: Path) -> None:
    [result] = compare_draft(engine, _with_card_games(), [_set(tmp_path)])
    assert result["data"] == "labelled.jsonl" and result["rows"] == 4
    changed = {c["text"]: (c["live"], c["candidate"]) for c in result["changed"]}
    assert changed == {
        "周末一起打牌吧": ("pass", "block"),
        "来打牌赌钱，一把五百": ("pass", "block"),
    }
    live, cand = (result["systems"][s] for s in ("live", "candidate"))
    assert live["benign"]["false_positive_rate"] == 0.0
    assert cand["benign"]["false_positive_rate"] == 0.5
    assert live["per_category"]["gambling"]["recall"] == 0.5
    assert cand["per_category"]["gambling"]["recall"] == 1.0
    assert base64.b64decode(result["chart"]).startswith(b"\x89PNG")
    unchanged = compare_draft(engine, engine.wordlist, [_set(tmp_path)])[0]
    assert unchanged["changed"] == []


def _feed(fifo: Path) -> None:
    """Write the labelled set into ``fifo`` once the job has opened it for reading."""
    opened: list[int] = []

    def reader_there() -> bool:
        try:
            opened.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:  # ENXIO: nobody reads it yet
            assert exc.errno == errno.ENXIO
        return bool(opened)

    assert wait_until(reader_there, timeout=30)
    os.set_blocking(opened[0], True)
    with os.fdopen(opened[0], "w", encoding="utf-8") as out:
        out.write(_set(fifo.parent / "copy").read_text(encoding="utf-8"))


def test_compare_runs_in_the_background_once_and_is_recorded(
    lists_site: Site, tmp_path: Path
) -> None:
    analyst = lists_site.add_user("analyst")
    client = login(lists_site, analyst)
    page = client.get("/console/lists/draft")
    client.post("/console/lists/draft", data={"csrf": csrf(page), "action": "start"})
    page = client.get("/console/lists/draft")
    revision = re.search(r'name="revision" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/console/lists/draft", data={"csrf": csrf(page), "revision": revision,
                "action": "add", "category": "gambling", "term": "打牌", "severity": "block"})  # fmt: skip
    unconfigured = client.post("/console/lists/compare", data={"csrf": csrf(page)})
    assert unconfigured.status_code == 400 and "SCREENING_CONSOLE_EVAL_DATA" in unconfigured.text
    sources = lists_site.console.lists
    assert isinstance(sources, ListSources)
    # The set is a named pipe: the job blocks reading it until the test writes the set, so
    # the request that started it can only have returned if it did not wait for the job.
    (tmp_path / "copy").mkdir()
    fifo = tmp_path / "labelled.jsonl"
    os.mkfifo(fifo)
    sources.eval_data = (fifo,)
    started = client.post("/console/lists/compare", data={"csrf": csrf(page)})
    assert started.status_code == 303 and started.headers["location"] == "/console/lists/compare"
    running = client.get("/console/lists/compare").text
    assert 'id="running"' in running and "Running since" in running
    assert '<meta http-equiv="refresh"' in running and 'id="compare-form"' not in running
    again = client.post("/console/lists/compare", data={"csrf": csrf(page)})
    assert again.status_code == 303  # one at a time: the running job is shown, no second
    _feed(fifo)
    assert wait_until(lambda: 'id="finished"' in client.get("/console/lists/compare").text,
                      timeout=60)  # fmt: skip
    text = html.unescape(client.get("/console/lists/compare").text)
    assert "labelled.jsonl: 4 labelled messages, 2 decision(s) differ" in text
    assert re.search(r'data-system="candidate">.*?class="fp">50.0 %', text, re.S)
    assert "pass → block [benign] 周末一起打牌吧" in text
    assert 'src="data:image/png;base64,' in text and '<meta http-equiv="refresh"' not in text
    assert client.post("/console/lists/compare", data={"csrf": csrf(page)}).status_code == 303
    records = [r.detail for r in lists_site.store.export(0, 2e10, kinds=["console"])]
    starts = [r for r in records if r["action"] == "compare_start"]
    [done] = [r for r in records if r["action"] == "compare"]
    assert len(starts) == 1  # neither the click while running nor the one after ran again
    assert (done["account"], done["sets"], done["key"]) == (analyst, {"labelled.jsonl": 2},
                                                            starts[0]["key"])  # fmt: skip
    assert done["key"].startswith(f"revision {int(revision) + 1} ")
    page = client.get("/console/lists/draft")
    client.post("/console/lists/draft", data={"csrf": csrf(page), "revision": str(int(revision) + 1),
                "action": "add", "category": "drugs", "term": "麻古"})  # fmt: skip
    assert 'id="stale"' in client.get("/console/lists/compare").text
    assert client.post("/console/lists/compare").status_code == 403  # no CSRF token
