"""Page loads of the analyst console over a large audit store in PostgreSQL.

    python bench/console.py [--database-url URL] [--n 1000000] [--repeat 20] [--keep]

Fills a throwaway schema (``bench_console``) with ``--n`` verdict records (a quarter of
them ``review``, over 180 days, 10,000 groups, 200,000 users, 1% already reviewed, a
measure for every 50th group, one to eight user reports on every 250th), then serves the
console in process and times each page over real HTTP, logged in: the review queue
(unfiltered, by category, by a rare term, by a list and a rare list, by group, most
reported first), feedback, a
group's and a user's page, explain with the shipped lists, and the Lists page (its term
statistics computed once in the background first, timed too) and a draft. Prints the
median and p95 per page against the 200 ms target. Without --database-url it uses
SCREENING_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test (a superuser: it
creates the schema and its roles, and drops them unless --keep).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import threading
import time
from urllib.parse import quote

import httpx
import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from screening.console.accounts import AccountStore
from screening.console.app import create_console
from screening.console.drafts import DraftStore
from screening.console.queries import create_indexes
from screening.console.sessions import SessionSigner
from screening.console.sources import ListSources
from screening.console.web import Console
from screening.engine.core import Engine
from screening.records.model import Record
from screening.records.sql import PostgresRecordStore
from screening.settings import Settings

SCHEMA = "bench_console"
CATEGORIES = ("gambling", "porn", "fraud", "drugs", "ads", "abuse")
TERMS = {"gambling": "百家乐", "porn": "黄片", "fraud": "刷单", "drugs": "冰毒", "ads": "加微信",
         "abuse": "傻逼"}  # fmt: skip
RARE = "稀有词"
PASSWORD = "bench console password"


def _verdict(n: int, rng: random.Random, now: float) -> Record:
    category = rng.choices(CATEGORIES, weights=(40, 20, 15, 2, 20, 3))[0]
    term = RARE if n % 100_000 == 7 else TERMS[category]
    decision = "review" if rng.random() < 0.25 else "block"
    text = f"群里有人说{term}今晚开始，速来，名额有限{n}"
    source = "pattern:bench" if n % 100_000 == 13 else "wordlist"  # a rare list: patterns
    hit = {"term": term, "category": category, "severity": decision, "start": 5,
           "end": 5 + len(term), "matched": term, "transforms": [], "source": source,
           "list": "patterns" if source != "wordlist" else category}  # fmt: skip
    return Record(
        "verdict", now - rng.random() * 180 * 86400, f"verdict:b{n}", f"g{rng.randrange(10_000)}",
        f"u{rng.randrange(200_000)}", f"b{n}",
        {"text": text, "decision": decision, "hits": [hit],
         "labels": [{"category": category, "decision": decision, "source": source,
                     "score": 1.0, "list": hit["list"]}],
         "categories": {category: 1.0}, "model_scores": {c: 0.1 for c in CATEGORIES},
         "versions": {"engine": "0.1.0", "wordlist": "bench", "model": "zh-chat-2"}},
    )  # fmt: skip


def _fill(store: PostgresRecordStore, n: int) -> None:
    rng, now, started = random.Random(7), time.time(), time.perf_counter()
    reported: list[Record] = []
    for begin in range(0, n, 20_000):
        verdicts = [_verdict(i, rng, now) for i in range(begin, min(n, begin + 20_000))]
        store.append(verdicts)
        reported += verdicts[::250]
    reports = [Record("report", v.at + 60 * k, f"report:{v.key}:r{k}", v.group_id, f"r{k}",
                      v.message_id, {"reported_by": f"r{k}", "reason": "广告", "outcome":
                                     "review" if k >= 3 else "dismissed"})
               for v in reported for k in range(1 + rng.randrange(8))]  # fmt: skip
    store.append(reports)
    reviewed = [Record("review", now, f"review:{i}", detail={
                    "outcome": rng.choice(("confirmed", "overturned")), "verdict_id": i,
                    "terms": [rng.choice(list(TERMS.values()))], "sources": ["wordlist"],
                    "lists": [rng.choice(CATEGORIES)]})
                for i in range(1, n, 100)]  # fmt: skip
    measures = [Record("measure", now - 3600, f"measure:bm{g}", f"g{g}", None, None,
                       {"id": f"bm{g}", "kind": "group_warning", "subject": "group",
                        "subject_id": f"g{g}", "label": "警示整改", "started_at": now - 3600,
                        "until": now + 86400, "reason": "bench"})
                for g in range(0, 10_000, 50)]  # fmt: skip
    store.append(reviewed + measures)
    store.execute([("ANALYZE records", ())])
    print(f"filled {n:,} verdicts ({len(reports):,} user reports on {len(reported):,} of them) "
          f"in {time.perf_counter() - started:.0f} s")


def _time(client: httpx.Client, repeat: int, request) -> tuple[float, float]:
    request(client)  # warm: first plans, template compilation
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = request(client)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("SCREENING_DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/test")  # fmt: skip
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the schema for the next run")
    parser.add_argument("--schema", default=SCHEMA, help="its name (and its roles' prefix)")
    args = parser.parse_args()
    schema = args.schema
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    sep = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    store = PostgresRecordStore(url, "owner", owner_role=f"{schema}_owner",
                                writer_role=f"{schema}_writer")  # fmt: skip
    try:
        if store.count("verdict") < args.n:
            _fill(store, args.n - store.count("verdict"))
        AccountStore(store).migrate()
        started = time.perf_counter()
        create_indexes(store)
        print(f"console indexes ready in {time.perf_counter() - started:.0f} s")
        store.execute([("ANALYZE records", ())])
        _bench(store, args.repeat)
    finally:
        store.close()
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
                for role in ("owner", "writer"):
                    conn.execute(f"DROP OWNED BY {schema}_{role}; DROP ROLE {schema}_{role}")


def _bench(store: PostgresRecordStore, repeat: int) -> None:
    settings = Settings.from_env()
    engine = Engine.load(settings.wordlists, settings.config, model=settings.model)
    console = Console(store, SessionSigner("b" * 32, secure=False), lambda: engine)
    console.lists = ListSources(settings.wordlists, settings.banks, settings.config)
    DraftStore(store).migrate()
    if console.accounts.get("bench") is None:
        console.accounts.add("bench", "admin", PASSWORD)
    app = Starlette(routes=[Mount(console.prefix, create_console(console))])
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning", host="127.0.0.1"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/console", timeout=60)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"csrf": token, "name": "bench", "password": PASSWORD})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/explain").text).group(1)  # type: ignore[union-attr]
    started = time.perf_counter()  # the Lists figures: computed once, in the background
    while 'id="computing"' in client.get("/lists").text:
        time.sleep(1)
    print(f"term statistics of 30 days computed in the background in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    if DraftStore(store).get() is None:
        client.post("/lists/draft", data={"csrf": csrf, "action": "start"})
    client.get("/lists/draft")  # its lint, once per draft content
    pages = {
        "review queue": lambda c: c.get("/review"),
        "review ?category=drugs": lambda c: c.get("/review", params={"category": "drugs"}),
        f"review ?term={RARE} (10 in 1M)": lambda c: c.get("/review", params={"term": RARE}),
        "review ?list=drugs.txt": lambda c: c.get("/review", params={"list": "drugs.txt"}),
        "review ?list=patterns (10 in 1M)": lambda c: c.get("/review",
                                                             params={"list": "patterns"}),
        "review ?group=g1234": lambda c: c.get("/review", params={"group": "g1234"}),
        "review ?order=reported": lambda c: c.get("/review", params={"order": "reported"}),
        f"feedback ({store.count('review'):,} outcomes)": lambda c: c.get("/feedback"),
        "group g50 page": lambda c: c.get("/subjects", params={"group": "g50"}),
        "user u4242 page": lambda c: c.get("/subjects", params={"user": "u4242"}),
        "lists (cached figures)": lambda c: c.get("/lists"),
        "lists ?q=赌": lambda c: c.get("/lists", params={"q": "赌"}),
        "lists draft (lint cached)": lambda c: c.get("/lists/draft"),
        "explain (shipped lists + model)": lambda c: c.post(
            "/explain", data={"csrf": csrf, "text": "今晚一起去ＤＵ博吗，加微信领红包"}),
    }  # fmt: skip
    print(f"{store.count('verdict'):,} verdicts in PostgreSQL; load average "
          f"{os.getloadavg()[0]:.1f}; target <= 200 ms")  # fmt: skip
    for name, request in pages.items():
        median, p95 = _time(client, repeat, request)
        print(f"  {name:34} median {median:7.1f} ms   p95 {p95:7.1f} ms")
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main()
