"""The banks' draft over real HTTP: start, add, change and remove entries (the loader's
checks), ``bank lint`` beside the entry, publish through the CLI's checks (refused on a
benign near duplicate unless forced), shadow and promote, roll back — on a real Redis
version store — and promoting or rolling back a model from the history page."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest

from screening.console.bank_drafts import bank_diff
from screening.console.sources import ListSources
from screening.operations.versions import RedisVersionStore
from screening.pipeline.signing import SigningKeys
from tests.fixtures.console import BENIGN, Site, csrf, login
from tests.fixtures.engine import FIXTURE_BANKS
from tests.fixtures.pipeline import SIGNING_KEY

#: A benign notice long enough to be compared with bank entries.
NOTICE = "今天下午三点在三楼会议室召开季度总结会议，请各部门负责人准时参加并带好本季度的材料"
SCRIPT = "您好这里是快递客服中心，您的包裹在运输途中丢失了，我们按照三倍的价格给您理赔，请添加客服微信办理"


@pytest.fixture
def publishing(lists_site: Site, redis_url: str) -> RedisVersionStore:
    sources = lists_site.console.lists
    assert isinstance(sources, ListSources)
    (sources.wordlists / "benign.txt").write_text(BENIGN + NOTICE + "\n", encoding="utf-8")
    versions = RedisVersionStore.from_url(redis_url, keys=SigningKeys.of(SIGNING_KEY))
    sources.versions = versions
    return versions


def _post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    page = client.get("/console/lists/banks")
    revision = re.search(r'name="revision" value="(\d+)"', page.text)
    data = {"csrf": csrf(page), **({"revision": revision.group(1)} if revision else {}), **fields}
    return client.post(f"/console{path}", data=data)


def _actions(site: Site) -> list[dict[str, Any]]:
    return [r.detail for r in site.store.export(0, 2e10, kinds=["console"])]


def _entry(**fields: str) -> dict[str, str]:
    return {"action": "add", "bank": "scams", "category": "fraud", "severity": "block",
            "note": "", **fields}  # fmt: skip


def test_bank_entries_are_drafted_linted_published_and_rolled_back(
    lists_site: Site, publishing: RedisVersionStore
) -> None:
    analyst = lists_site.add_user("analyst")
    client = login(lists_site, analyst)
    assert 'id="no-draft"' in client.get("/console/lists/banks").text
    assert _post(client, "/lists/banks", action="start").status_code == 303
    short = _post(client, "/lists/banks", **_entry(id="short", text="加我微信"))
    assert short.status_code == 400 and "min_chars" in html.unescape(short.text)
    bad = _post(client, "/lists/banks", **_entry(id="x", text=SCRIPT, category="spam"))
    assert bad.status_code == 400 and "unknown category" in html.unescape(bad.text)
    rows = json.dumps({"id": "scam-3", "text": SCRIPT + "马上", "category": "fraud", "note": ""},
                      ensure_ascii=False)  # fmt: skip
    upload = _post(client, "/lists/banks", action="upload", bank="scams",
                   jsonl=rows + '\n{"id": "scam-4"}\n')  # fmt: skip
    assert upload.status_code == 400 and "upload:2: missing text, category, note" in upload.text
    assert _post(client, "/lists/banks", action="upload", bank="scams",
                 jsonl=rows + "\n").status_code == 303  # fmt: skip
    assert _post(client, "/lists/banks", action="remove", bank="scams",
                 key="scam-3").status_code == 303  # fmt: skip
    for fields in (_entry(id="parcel", text=SCRIPT), _entry(id="meeting", text=NOTICE),
                   {"action": "change", "bank": "scams", "key": "parcel", "id": "parcel",
                    "text": SCRIPT, "category": "fraud", "severity": "review", "note": "理赔"},
                   {"action": "remove", "bank": "rumours", "key": "salt"}):  # fmt: skip
        assert _post(client, "/lists/banks", **fields).status_code == 303, fields
    page = html.unescape(client.get("/console/lists/banks").text)
    lint = re.search(r'data-id="meeting".*?class="lint">([^<]*)<', page, re.S)
    assert lint and lint.group(1).startswith("benign:")  # bank lint, beside the entry
    assert re.search(r'data-id="parcel".*?class="lint"></td>', page, re.S)
    assert "+ scams/parcel  fraud review" in page and "- rumours/salt" in page
    refused = _post(client, "/lists/banks/publish", action="publish", reason="parcel scams")
    assert refused.status_code == 400 and "near duplicate" in html.unescape(refused.text)
    assert publishing.pointer("bank", "live") is None
    forced = _post(client, "/lists/banks/publish", action="publish", reason="parcel scams",
                   force="1")  # fmt: skip
    assert forced.status_code == 303, forced.text
    live = publishing.pointer("bank", "live")
    assert live and "parcel" in (publishing.files("bank", live) or {})["scams.jsonl"].decode()
    meta = publishing.meta("bank", live) or {}
    assert (meta["author"], meta["forced"], meta["entries"]) == (analyst, True, 5)
    assert [e["action"] for e in publishing.events("bank")] == ["publish", "boot"]
    assert 'id="no-draft"' in client.get("/console/lists/banks").text
    assert _post(client, "/lists/banks/publish", action="rollback").status_code == 303
    assert publishing.pointer("bank", "live") == publishing.events("bank")[0]["version"] != live
    actions = [a["action"] for a in _actions(lists_site) if a["account"] == analyst]
    assert actions[1:] == ["bank_draft_start", "lists_refused", "lists_refused",
                           "lists_refused", "bank_draft_upload", "bank_draft_remove",
                           "bank_draft_add", "bank_draft_add", "bank_draft_change",
                           "bank_draft_remove", "lists_refused", "publish", "rollback"]  # fmt: skip


def test_a_clean_bank_draft_goes_to_shadow_and_is_promoted(
    lists_site: Site, publishing: RedisVersionStore
) -> None:
    client = login(lists_site, lists_site.add_user("analyst"))
    _post(client, "/lists/banks", action="start")
    _post(client, "/lists/banks", **_entry(id="parcel", text=SCRIPT))
    shadow = _post(client, "/lists/banks/publish", action="publish", reason="try", slot="shadow")
    assert shadow.status_code == 303, shadow.text
    candidate = publishing.pointer("bank", "shadow")
    assert candidate and not (publishing.meta("bank", candidate) or {}).get("forced")
    assert 'id="promote"' in client.get("/console/lists/banks").text
    assert _post(client, "/lists/banks/publish", action="promote").status_code == 303
    assert publishing.pointer("bank", "live") == candidate


def test_models_are_shown_promoted_and_rolled_back_from_the_history(
    lists_site: Site, publishing: RedisVersionStore
) -> None:
    for name, slot in (("m-1", "live"), ("m-2", "live"), ("m-3", "shadow")):
        files = {"manifest.json": f'{{"version": "{name}"}}'.encode()}
        publishing.publish("model", f"digest-{name}", files, {"model_version": name}, slot)
    viewer = login(lists_site, lists_site.add_user("viewer"))
    page = viewer.get("/console/lists/history").text
    row = re.search(r'data-kind="model">(.*?)</tr>', page, re.S)
    assert row and "digest-m-2 (m-2)" in row.group(1) and "digest-m-3 (m-3)" in row.group(1)
    assert 'class="promote"' not in page  # viewers read only
    token = csrf(viewer.get("/console/lists/history"))
    denied = viewer.post("/console/lists/versions",
                         data={"csrf": token, "kind": "model", "action": "promote"})  # fmt: skip
    assert denied.status_code == 403 and publishing.pointer("model", "shadow") == "digest-m-3"
    analyst = lists_site.add_user("analyst")
    client = login(lists_site, analyst)
    page = client.get("/console/lists/history?kind=model").text
    assert 'class="promote"' in page and 'id="events-title">History of the model' in page
    token = csrf(client.get("/console/lists/history"))
    answer = client.post("/console/lists/versions",
                         data={"csrf": token, "kind": "model", "action": "promote"})  # fmt: skip
    assert answer.status_code == 303
    assert publishing.pointer("model", "live") == "digest-m-3"
    assert publishing.pointer("model", "shadow") is None
    back = client.post("/console/lists/versions",
                       data={"csrf": token, "kind": "model", "action": "rollback"})  # fmt: skip
    assert back.status_code == 303 and publishing.pointer("model", "live") == "digest-m-2"
    assert publishing.events("model")[0]["author"] == analyst
    wrong = client.post("/console/lists/versions",
                        data={"csrf": token, "kind": "models", "action": "rollback"})  # fmt: skip
    assert wrong.status_code == 400 and "cannot" in html.unescape(wrong.text)
    moved = [(a["action"], a.get("kind"), a.get("version")) for a in _actions(lists_site)
             if a["account"] == analyst and a["action"] in ("promote", "rollback")]  # fmt: skip
    assert moved == [("promote", "model", "digest-m-3"), ("rollback", "model", "digest-m-2")]


def test_bank_diff_names_each_entry_that_differs() -> None:
    live = {n: c if isinstance(c, bytes) else c.encode() for n, c in FIXTURE_BANKS.items()}
    draft = {n: c.decode() for n, c in live.items()}
    draft["scams.jsonl"] = draft["scams.jsonl"].replace('"note": "test"', '"note": "scam"', 1)
    draft["rumours.jsonl"] = ""
    changes = bank_diff(live, draft)
    assert [kind for kind, _ in changes] == ["removed", "removed", "changed"]
    assert changes[2][1] == "~ scams/refund  note test -> scam"
