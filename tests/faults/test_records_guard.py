"""Finding 9 of issue 11, end to end: someone with write access to the SQLite records file
drops the retention trigger and deletes records. The real `screening worker` must refuse
to start on that file (no screening without the guard), say why in its log, and screen
again once the operator has restored the guard with `records migrate --restore-guard`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from screening.records.model import Record, RecordsSettings
from screening.records.sql import open_store
from tests.faults.harness import Rig, make_messages
from tests.fixtures import REPO
from tests.fixtures.pipeline import wait_until


def test_workers_refuse_a_records_file_whose_guard_was_dropped(rig: Rig) -> None:
    # finding 8's key requirements, in case the rig does not set them yet
    rig.env_overrides.setdefault("SCREENING_SIGNING_KEY", "k" * 64)
    rig.env_overrides.setdefault("SCREENING_CALLBACK_SECRET", "s" * 40)
    rig.receiver.secrets = [rig.env()["SCREENING_CALLBACK_SECRET"]]
    store = open_store(RecordsSettings(path=rig.records_path))  # as a worker left it
    store.append([Record("verdict", time.time(), "verdict:earlier", "g1", "u1", "earlier")])
    store.close()
    with sqlite3.connect(rig.records_path) as conn:  # the tampering: no roles stop it
        conn.execute("DROP TRIGGER records_retention")
        conn.execute("DELETE FROM records")

    rig.start_workers(processes=1, threads=2)
    assert wait_until(lambda: "lost its retention guard" in rig.log_text(), 60), (
        rig.log_text()[-3000:]
    )
    during = make_messages("during", 20)
    rig.submit(during)
    time.sleep(2)
    assert rig.verdicts().keys() & {m["message_id"] for m in during} == set()
    assert rig.verdict_records() == {}  # nothing written to a store without its guard
    rig.stop_workers()
    rig.kill_tree()

    restored = subprocess.run(
        [sys.executable, "-m", "screening.cli", "records", "migrate", "--restore-guard"],
        cwd=REPO, env=rig.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    rig.start_workers(processes=1, threads=2)
    rig.check(during)  # the messages waited in Redis and are screened now
    with sqlite3.connect(rig.records_path) as conn:
        young = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        try:
            conn.execute("DELETE FROM records")
        except sqlite3.IntegrityError as exc:
            assert "cannot be deleted" in str(exc)
        else:
            raise AssertionError("the restored guard let a young record be deleted")
    assert young > 0
