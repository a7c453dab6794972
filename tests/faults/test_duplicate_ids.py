"""Message ids reused across groups, and within a group for other content, through real
workers: every distinct message gets its verdict, its record and its callback; a true
resubmission does not (issue 11, finding 6: a drug sale in another group under an id seen
before got nothing)."""

from __future__ import annotations

import json
import sqlite3
import time

import redis

from tests.faults.harness import VERDICT_STREAM, Rig
from tests.fixtures.pipeline import wait_until

DRUGS, GAMBLING = "冰毒现货同城可送", "一起玩百家乐赢钱"


def _message(message_id: str, group: str, text: str) -> dict[str, object]:
    return {"message_id": message_id, "group_id": group, "sender_id": f"s-{group}",
            "text": f"{text} {group}", "sent_at": time.time()}  # fmt: skip


def test_reused_ids_lose_no_message_and_resubmissions_send_nothing_twice(rig: Rig) -> None:
    rig.start_workers(processes=2, threads=2)
    first = [_message(f"m{i}", "g-a", GAMBLING) for i in range(50)]
    other_groups = [_message(f"m{i}", f"g-{c}", DRUGS) for i in range(50) for c in "bc"]
    reused = [_message(f"m{i}", "g-a", DRUGS) for i in range(0, 50, 5)]  # same group and id
    rig.submit(first)
    assert wait_until(lambda: len(rig.callbacks()) == 50, 60)
    rig.submit(other_groups + reused + first[:10])  # first[:10]: resubmissions

    distinct = {(m["group_id"], m["message_id"], m["text"]) for m in first + other_groups + reused}
    assert len(distinct) == 160

    def events() -> list[dict]:
        return [e for e in rig.receiver.delivered if e.get("type") == "message.verdict"]

    def called_back() -> set[tuple[str, str]]:
        return {(e["group_id"], e["message_id"]) for e in events()}

    assert wait_until(lambda: len({e["event_id"] for e in events()}) == 160, 60)
    time.sleep(1.0)  # a resubmission's callback would arrive now
    assert len({e["event_id"] for e in events()}) == 160
    conflicts = [e for e in events() if e.get("id_conflict")]
    assert sorted(e["message_id"] for e in conflicts) == sorted(m["message_id"] for m in reused)
    assert called_back() == {(m["group_id"], m["message_id"]) for m in first + other_groups}

    stream = redis.Redis.from_url(rig.redis.url).xrange(VERDICT_STREAM)
    screened = {(r[2], r[0]) for _, f in stream for r in json.loads(f[b"v"])["verdicts"]}
    assert {(m["group_id"], m["message_id"]) for m in first + other_groups} <= screened
    connection = sqlite3.connect(rig.records_path)
    keys = [k for (k,) in connection.execute("SELECT key FROM records WHERE kind = 'verdict'")]
    connection.close()
    assert len(keys) == len(set(keys)) == 160  # one verdict record per distinct message
    counters = redis.Redis.from_url(rig.redis.url).hgetall("screening:counters")
    assert int(counters[b"messages.id_conflicts"]) == len(reused)
    assert int(counters[b"messages.duplicates"]) == 10
    rig.check_logs(first + other_groups + reused)
