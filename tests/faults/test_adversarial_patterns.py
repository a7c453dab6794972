"""Crafted messages aimed at the contact patterns (a keyword, then 1,500 spaces and no
number: the 1,503-character message that froze one screening process after another for
230 s) in the middle of an ordinary stream. Every message, crafted or not, gets its
verdict promptly; flagged ones their record and callback; no text reaches a log."""

from __future__ import annotations

import time

from tests.faults.harness import Rig, make_messages

#: keyword + a long run of what the patterns' whitespace takes + something that is not a
#: number; the last ones are real contact details behind the same run (flagged).
CRAFTED = [
    "qq" + " " * 1500 + "x",
    "群号" + "\u3000" * 1500 + "x",
    "微信" + " \t" * 750 + "。",
    "tg" + " " * 1500 + "!",
    "加我qq" + " " * 1500 + "12345678",
    "飞机" + " " * 1500 + "@durov_channel",
]


def test_crafted_messages_do_not_stall_screening(rig: Rig) -> None:
    rig.start_workers(processes=2, threads=2)
    ordinary = make_messages("ord", 200)
    crafted = [
        {"message_id": f"crafted-{i}", "group_id": f"g{i}", "sender_id": "attacker",
         "text": f"{text} 第{i}条", "sent_at": time.time()}
        for i, text in enumerate(CRAFTED * 3)
    ]  # fmt: skip
    messages = [*crafted[:9], *ordinary, *crafted[9:]]
    started = time.monotonic()
    rig.submit(messages)
    ids = [m["message_id"] for m in messages]
    assert rig.wait_screened(ids, 30), f"no verdict within 30 s for {rig.missing(ids)[:20]}"
    elapsed = time.monotonic() - started
    verdicts = rig.verdicts()
    contacts = [m["message_id"] for m in crafted if m["text"].startswith(("加我qq", "飞机"))]
    assert all(set(verdicts[i]) - {"pass"} for i in contacts), {i: verdicts[i] for i in contacts}
    rig.check(messages)
    assert elapsed < 30, f"{len(messages)} messages took {elapsed:.1f} s"
