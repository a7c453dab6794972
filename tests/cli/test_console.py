"""``screening console add-user`` and ``screening serve --console`` as a user runs them,
and the console's broker paths (review outcomes and lifts) end to end through a real
Redis broker to a callback receiver that checks signatures."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from screening.cli.console import build_console, retry_outcomes
from screening.cli.main import main
from screening.console.accounts import AccountStore
from screening.console.queries import QueueFilter, create_indexes, review_queue
from screening.console.review import outcome_event
from screening.enforcement.enforcer import Enforcer
from screening.enforcement.policy import load_policy
from screening.enforcement.state import RedisPolicyState
from screening.errors import RecordsError
from screening.records.sql import SqliteRecordStore
from screening.settings import Settings
from tests.fixtures.console import csrf, login, serve, verdict_record
from tests.fixtures.enforcement import make_policy, message, verdict
from tests.fixtures.engine import FIXTURE_WORDLIST
from tests.fixtures.pipeline import Pipeline, _free_port, wait_until
from tests.fixtures.records import PostgresDeployment, postgres_deployment

__all__ = ["postgres_deployment"]  # the fixture, for pytest

SCREENING = [sys.executable, "-m", "screening.cli"]
PASSWORD = "a console password"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    for name, text in FIXTURE_WORDLIST.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SCREENING_", "PROMETHEUS"))}
    return {**clean, "SCREENING_WORDLISTS": str(tmp_path), "SCREENING_MODEL": "none",
            "SCREENING_BANKS": "none", "SCREENING_RECORDS_PATH": str(tmp_path / "r.sqlite3"),
            "SCREENING_CONSOLE_COOKIE_SECURE": "false"}  # fmt: skip


def _run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*SCREENING, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@contextmanager
def _served(settings: Settings) -> Iterator[tuple[Any, Any]]:
    """The console of ``settings`` served over HTTP; its site and broker paths stopped after."""
    stops: list = []
    console = build_console(settings, lambda: None, stops)
    site = serve(console)
    try:
        yield console, site
    finally:
        site.stop()
        for stop in stops:
            stop()


def _decide_as_reviewer(console: Any, site: Any, verdict_id: int, **form: str) -> httpx.Response:
    """A reviewer logs in and decides one verdict in the served queue, as the page's form does."""
    console.accounts.add("rita", "reviewer", PASSWORD)
    client = login(site, "rita", PASSWORD)
    return client.post(f"/console/review/{verdict_id}",
                       data={"csrf": csrf(client.get("/console/review")), **form})  # fmt: skip


def test_add_user_then_list(env: dict[str, str]) -> None:
    made = _run(env, "console", "add-user", "ops-lead", "--role", "admin", "--password-stdin",
                stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    again = _run(env, "console", "add-user", "ops-lead", "--role", "viewer", "--password-stdin",
                 stdin=PASSWORD + "\n")  # fmt: skip
    assert again.returncode == 2 and "exists" in again.stderr
    short = _run(env, "console", "add-user", "x", "--role", "viewer", "--password-stdin",
                 stdin="short\n")  # fmt: skip
    assert short.returncode == 2 and "at least 12" in short.stderr
    assert _run(env, "console", "users").stdout == "ops-lead\tadmin\n"
    store = SqliteRecordStore(env["SCREENING_RECORDS_PATH"], "reader")
    (detail,) = store.query("SELECT detail FROM records WHERE kind = 'console'")[0]
    assert json.loads(detail)["action"] == "add_user" and PASSWORD not in detail
    store.close()


def test_passwd_sets_a_password(env: dict[str, str]) -> None:
    assert _run(env, "console", "add-user", "ana", "--role", "viewer", "--password-stdin",
                stdin=PASSWORD + "\n").returncode == 0  # fmt: skip
    changed = _run(env, "console", "passwd", "ana", "--password-stdin",
                   stdin="a forgotten one, replaced\n")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert _run(env, "console", "passwd", "ana", "--password-stdin",
                stdin="short\n").stderr.count("at least 12") == 1  # fmt: skip
    missing = _run(env, "console", "passwd", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert missing.returncode == 2 and "no console account 'bob'" in missing.stderr
    store = SqliteRecordStore(env["SCREENING_RECORDS_PATH"], "writer")
    try:
        accounts = AccountStore(store)
        assert accounts.authenticate("ana", PASSWORD) is None
        assert accounts.authenticate("ana", "a forgotten one, replaced") is not None
        actions = [json.loads(d)["action"] for (d,) in store.query(
            "SELECT detail FROM records WHERE kind = 'console' ORDER BY id")]  # fmt: skip
        assert actions == ["add_user", "reset_password"]
    finally:
        store.close()


def test_serve_console_beside_the_api(env: dict[str, str]) -> None:
    assert _run(env, "console", "add-user", "ana", "--role", "viewer", "--password-stdin",
                stdin=PASSWORD + "\n").returncode == 0  # fmt: skip
    port = _free_port()
    server = subprocess.Popen([*SCREENING, "serve", "--console", "--no-auth", "--port", str(port),
                               "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(f"{base}/readyz"), timeout=60, interval=0.2)
        client = httpx.Client(base_url=base, timeout=30)
        page = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and token
        answer = client.post("/console/login",
                             data={"csrf": token.group(1), "name": "ana", "password": PASSWORD})  # fmt: skip
        assert answer.status_code == 303
        explain = client.get("/console/explain")
        assert explain.status_code == 200 and "ana (viewer)" in explain.text
        assert client.get("/console/review").status_code == 403
        wire = {"message_id": "m1", "group_id": "g1", "sender_id": "u1", "text": "赌博",
                "sent_at": 1764000000}  # fmt: skip
        screened = client.post("/v1/screen", json={"messages": [wire]})
        assert screened.status_code == 200  # the API is served beside it
    finally:
        server.terminate()
        server.wait(30)


def test_several_processes_need_a_shared_secret(env: dict[str, str]) -> None:
    refused = _run(env, "serve", "--console", "--no-auth", "--workers", "2")
    assert refused.returncode == 2 and "SCREENING_CONSOLE_SECRET" in refused.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)
def test_outcomes_and_lifts_reach_the_platform_signed(
    real_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "r.sqlite3"))
    settings = replace(real_pipeline.settings, console_secret="c" * 32)
    stops: list = []
    console = build_console(settings, lambda: None, stops)
    try:
        console.store.append([verdict_record("m1", "来赌博吧")])
        (target,) = list(console.store.export(0, time.time() + 1, kinds=["verdict"]))
        review = console.audit.review("ana", target, "confirmed")
        assert review is not None and console.send is not None and console.lift is not None
        console.send([outcome_event(review)])
        assert real_pipeline.receiver.wait_for(1, timeout=20)
        (event,) = real_pipeline.receiver.delivered
        assert event["type"] == "review.outcome" and event["outcome"] == "confirmed"

        state = RedisPolicyState(redis.Redis.from_url(settings.redis_url or ""))
        enforcer = Enforcer(make_policy(), state, console.store)
        for n in range(3):  # a warning, then a suspension of g1
            enforcer.handle(message(f"b{n}", sender=f"u{n}"), verdict(f"b{n}"))
        lifted = console.lift("group", "g1", "group_suspend_posting", "appeal upheld (by ana)")
        assert [m["kind"] for m in lifted] == ["group_suspend_posting"]
        assert real_pipeline.receiver.wait_for(2, timeout=20)
        lift = real_pipeline.receiver.delivered[1]
        assert lift["type"] == "measure.lifted" and lift["reason"] == "appeal upheld (by ana)"
        assert console.lift("group", "g1", "group_suspend_posting", "again") == []
    finally:
        for stop in stops:
            stop()


@pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)
def test_a_confirmed_review_applies_the_policys_measures_signed(
    real_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reviewer confirms in the served queue, correcting gambling to violence_terror;
    through the production enforcer on Redis and the packaged policy that blacklists the
    sender (a confirmed violation in a blacklist category) and costs 8 points x 3. The
    platform hears the outcome and the measure, signed."""
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "r.sqlite3"))
    settings = replace(real_pipeline.settings, console_secret="c" * 32,
                       console_cookie_secure=False)  # fmt: skip
    with _served(settings) as (console, site):
        console.store.append([verdict_record("m1", "来赌博吧", user="u9")])
        (target,) = list(console.store.export(0, time.time() + 1, kinds=["verdict"]))
        answer = _decide_as_reviewer(console, site, target.id, outcome="confirmed",
                                     corrected="violence_terror")  # fmt: skip
        assert "measures=user_blacklist" in answer.headers["location"]
        assert real_pipeline.receiver.wait_for(2, timeout=20)  # it checked the signatures
        outcome, measure = sorted(real_pipeline.receiver.delivered, key=lambda e: e["type"])[::-1]
        assert outcome["type"] == "review.outcome" and outcome["corrected_category"] == "violence_terror"
        assert measure["type"] == "measure.applied"
        assert measure["measure"]["kind"] == "user_blacklist"
        assert measure["measure"]["trigger"] == "confirmed:g1:m1"
        measures = list(console.store.export(0, time.time() + 1, kinds=["measure"]))
        assert [m.detail["id"] for m in measures] == [measure["measure"]["id"]]
        state = RedisPolicyState(redis.Redis.from_url(settings.redis_url or ""))
        assert state.credit("u9", load_policy().credit, time.time()) == 100 - 8 * 3
        assert console.confirm is not None  # a retry applies nothing new, takes no points
        assert [m["id"] for m in console.confirm(target, "violence_terror")] \
            == [measure["measure"]["id"]]  # fmt: skip
        assert state.credit("u9", load_policy().credit, time.time()) == 100 - 8 * 3


@pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)
def test_an_overturn_in_the_queue_lifts_what_the_verdict_alone_caused_signed(
    real_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packaged policy warns a group at its first violence_terror review; a reviewer
    overturns that verdict in the served queue: the warning is lifted ("overturned on
    review", signed to the platform) and the sender's 2 x 3 points come back."""
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "r.sqlite3"))
    settings = replace(real_pipeline.settings, console_secret="c" * 32,
                       console_cookie_secure=False)  # fmt: skip
    with _served(settings) as (console, site):
        state = RedisPolicyState(redis.Redis.from_url(settings.redis_url or ""))
        enforcer = Enforcer(load_policy(), state, console.store)
        handled = enforcer.handle(message("v1", sender="u9"), verdict("v1", "review", "violence_terror"))
        (warning,) = handled.applied
        assert warning.kind == "group_warning"
        assert state.credit("u9", load_policy().credit, time.time()) == 94
        (target,) = list(console.store.export(0, time.time() + 1, kinds=["verdict"]))
        answer = _decide_as_reviewer(console, site, target.id, outcome="overturned")
        assert "lifted=group_warning" in answer.headers["location"]
        assert real_pipeline.receiver.wait_for(2, timeout=20)  # it checked the signatures
        lift = next(e for e in real_pipeline.receiver.delivered if e["type"] == "measure.lifted")
        assert lift["measure"]["id"] == warning.id and lift["reason"] == "overturned on review"
        assert state.credit("u9", load_policy().credit, time.time()) == 100
        (record,) = list(console.store.export(0, time.time() + 1, kinds=["lift"]))
        assert record.detail["reason_lift"] == "overturned on review"


@pytest.mark.parametrize("real_pipeline", ["redis"], indirect=True)
def test_what_failed_while_redis_was_down_is_done_by_retry_measures(
    real_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reviewer confirms while the console's Redis is unreachable: the outcome stands,
    recorded as neither sent nor applied. Once Redis answers, ``console retry-measures``
    sends the outcome and applies the blacklist (signed, to the receiver), records that it
    did, and a second run finds nothing to do."""
    monkeypatch.setenv("SCREENING_RECORDS_PATH", str(tmp_path / "r.sqlite3"))
    settings = replace(real_pipeline.settings, console_secret="c" * 32,
                       console_cookie_secure=False)  # fmt: skip
    down = replace(settings, redis_url=f"redis://127.0.0.1:{_free_port()}/0")  # nobody there
    with _served(down) as (console, site):
        console.store.append([verdict_record("m1", "来赌博吧", user="u9")])
        (target,) = list(console.store.export(0, time.time() + 1, kinds=["verdict"]))
        answer = _decide_as_reviewer(console, site, target.id, outcome="confirmed",
                                     corrected="violence_terror")  # fmt: skip
        assert "measures=unapplied" in answer.headers["location"]
        assert "done=confirmed-unsent" in answer.headers["location"]
    result = retry_outcomes(settings)
    key = f"review:{target.id}"
    assert result.done == [("review_not_sent", key), ("measures_not_applied", key)]
    assert real_pipeline.receiver.wait_for(2, timeout=20)  # it checked the signatures
    types = sorted(e["type"] for e in real_pipeline.receiver.delivered)
    assert types == ["measure.applied", "review.outcome"]
    state = RedisPolicyState(redis.Redis.from_url(settings.redis_url or ""))
    assert state.credit("u9", load_policy().credit, time.time()) == 100 - 8 * 3
    assert retry_outcomes(settings).done == []  # recorded as done: never again


def test_retry_measures_needs_redis(env: dict[str, str]) -> None:
    done = _run(env, "console", "retry-measures")
    assert done.returncode == 2 and "SCREENING_REDIS_URL" in done.stderr


def test_on_postgresql_the_owner_sets_up_and_the_writer_serves(
    postgres_deployment: PostgresDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in production: ``console add-user`` with the owner's URL creates the table
    (owned by the owner role) and indexes; the server logs in as a writer, which can log
    accounts in and append outcomes but create nothing and delete no account."""
    _use_deployment(postgres_deployment, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["console", "add-user", "lead", "--role", "admin", "--password-stdin"]) == 0
    stops: list = []
    console = build_console(Settings(console_secret="c" * 32), lambda: None, stops)
    try:
        assert "as " + postgres_deployment.role("worker") in console.store.where
        assert console.accounts.authenticate("lead", PASSWORD) is not None
        console.store.append([verdict_record("m1", "来赌博吧")])
        (target,) = review_queue(console.store, QueueFilter())
        assert console.audit.review("lead", target, "confirmed") is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            console.store.execute([("DELETE FROM console_accounts", ())])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            create_indexes(console.store)
    finally:
        for stop in stops:
            stop()


def test_an_upgraded_deployment_is_told_to_run_console_migrate(
    postgres_deployment: PostgresDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accounts from before the drafts table: the server refuses to start naming the
    command, and `console migrate` (as the owner) is all it takes."""
    settings = _use_deployment(postgres_deployment, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["console", "add-user", "lead", "--role", "admin", "--password-stdin"]) == 0
    with psycopg.connect(settings.owner_url, autocommit=True) as owner:
        owner.execute("DROP TABLE console_drafts")  # as an earlier version left it
    stops: list = []
    with pytest.raises(RecordsError, match="screening console migrate"):
        build_console(Settings(console_secret="c" * 32), lambda: None, stops)
    for stop in stops:
        stop()
    assert main(["console", "migrate"]) == 0
    assert main(["console", "migrate"]) == 0  # idempotent
    console = build_console(Settings(console_secret="c" * 32), lambda: None, stops)
    try:
        assert console.accounts.authenticate("lead", PASSWORD) is not None
    finally:
        for stop in stops:
            stop()


def _use_deployment(deployment: PostgresDeployment, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the CLI at the deployment as production does: writer URL, owner URL, roles."""
    settings = deployment.settings
    for name, value in (("SCREENING_DATABASE_URL", settings.database_url),
                        ("SCREENING_DATABASE_OWNER_URL", settings.owner_url),
                        ("SCREENING_RECORDS_OWNER_ROLE", settings.owner_role),
                        ("SCREENING_RECORDS_WRITER_ROLE", settings.writer_role)):  # fmt: skip
        monkeypatch.setenv(name, value or "")
    return settings
