"""Hot reload of a 100k-term wordlist: publish → every worker screening with it.

    .venv/bin/python bench/reload.py [--workers 2] [--rounds 3] [--load]

Starts a private redis-server (or uses $SCREENING_REDIS_URL) and a real `screening
worker` with ``--workers`` screening processes, then publishes versions through the
version store and times, from the publish call, until every worker process reports that
it swapped the new version in (the report is written right after the swap). Validation
runs before the clock starts: it happens on the analyst's machine, before publishing.

Rounds: a cold publish of the 100k-term list (every term new to the workers, which then
use the term keys the publisher computed while validating), then edits as analysts make
them — a term added to a small category file, and a term added to the 100k-term file
itself. The target is ≤ 2 s on all workers. ``--load`` keeps the workers screening a
steady stream of messages meanwhile. Worker logs show each build's wall and CPU time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from screening.engine.config import load_config  # noqa: E402
from screening.engine.parts import MemoNormalizer  # noqa: E402
from screening.engine.tokenize import Tokenizer  # noqa: E402
from screening.engine.wordlist import Wordlist  # noqa: E402
from screening.operations.publish import validate_wordlist, wordlist_files  # noqa: E402
from screening.operations.versions import RedisVersionStore  # noqa: E402
from screening.pipeline.signing import SigningKeys  # noqa: E402
from screening.settings import Settings  # noqa: E402
from workers.supervisor import spawn_workers  # noqa: E402

SEED = 20261123


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def padded_files(size: int, rng: random.Random) -> dict[str, str]:
    """The shipped lists plus synthetic 2–5 character terms up to ``size`` terms."""
    files = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "wordlists").glob("*.txt")}
    shipped = len(Wordlist.from_files(files).terms)
    synthetic: set[str] = set()
    while len(synthetic) < size - shipped:
        synthetic.add("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 5))))
    files["synthetic.txt"] = "".join(f"{term} | review\n" for term in sorted(synthetic))
    return files


def publish_and_wait(
    store: RedisVersionStore, files: dict[str, str], workers: int, tokenizer: Tokenizer
) -> float:
    """Validate as `screening wordlist publish` does (untimed), then time the publish."""
    encoded = {name: text.encode() for name, text in files.items()}
    normalizer = MemoNormalizer(load_config().transforms)
    # force: a few random synthetic terms hit the benign corpus (the check itself is tested)
    checked = validate_wordlist(encoded, tokenizer=tokenizer, normalizer=normalizer, force=True)
    version = checked.version
    stored = wordlist_files(encoded, normalizer)
    started = time.perf_counter()
    store.publish("wordlist", version, stored, {"terms": len(files)})
    while True:
        statuses = store.workers(max_age=600)
        done = [s for s in statuses.values() if s.get("live", {}).get("wordlist") == version]
        if len(done) >= workers:
            return time.perf_counter() - started
        failed = [s["failed"] for s in statuses.values() if s.get("failed")]
        if failed:
            raise SystemExit(f"a worker failed to load {version}: {failed}")
        if time.perf_counter() - started > 120:
            raise SystemExit(f"only {len(done)}/{workers} workers loaded {version} in 120 s")
        time.sleep(0.005)


def feed(url: str, queue: str, stop: threading.Event) -> None:
    from screening.pipeline.client import Screener

    with Screener(url, queue=queue, linger_ms=5) as screener:
        n = 0
        while not stop.is_set():
            screener.submit_many([{"message_id": f"b{n}-{i}", "group_id": "g", "sender_id": "u",
                                   "text": "周末一起打球吗，顺便吃个饭", "sent_at": time.time()}
                                  for i in range(50)])  # fmt: skip
            n += 1
            time.sleep(0.05)  # ~1,000 messages/s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="edits of each kind")
    parser.add_argument("--load", action="store_true", help="screen messages meanwhile")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    redis_process = None
    url = os.environ.get("SCREENING_REDIS_URL")
    if not url:
        port = free_port()
        redis_process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.3)
    env = {**os.environ, "SCREENING_REDIS_URL": url, "SCREENING_MODEL": "none",
           "SCREENING_METRICS_PORT": "0", "SCREENING_QUEUE": "bench-reload",
           "SCREENING_RECORDS_PATH": str(scratch / "records.sqlite3"),
           "SCREENING_SIGNING_KEY": "bench-signing-key-0123456789abcdef01"}  # fmt: skip
    settings = Settings.from_env(env)
    store = RedisVersionStore.from_url(url, keys=SigningKeys.of(env["SCREENING_SIGNING_KEY"]))
    store.client.delete(store.prefix + "workers")
    rng = random.Random(SEED)
    files = padded_files(args.terms, rng)
    tokenizer = Tokenizer("jieba")
    print(f"{len(Wordlist.from_files(files).terms)} terms, {args.workers} worker process(es)")
    supervisor = spawn_workers(settings, processes=args.workers, callback_processes=0, env=env)
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 120
        while len(store.workers()) < args.workers:  # each reports after loading at boot
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start")
            time.sleep(0.1)
        if args.load:
            threading.Thread(target=feed, args=(url, settings.queue, stop), daemon=True).start()
            time.sleep(1)
        cold = publish_and_wait(store, files, args.workers, tokenizer)
        print(f"cold publish (all {args.terms:,} terms new to the workers): {cold:.2f} s")
        results: dict[str, list[float]] = {"small file": [], "100k-term file": []}
        for round_ in range(args.rounds):
            files = {
                **files,
                "gambling.txt": files["gambling.txt"] + f"新增赌词{round_} | review\n",
            }
            results["small file"].append(publish_and_wait(store, files, args.workers, tokenizer))
            files = {
                **files,
                "synthetic.txt": files["synthetic.txt"] + f"新增词语{round_} | review\n",
            }
            results["100k-term file"].append(
                publish_and_wait(store, files, args.workers, tokenizer)
            )
        for edit, times in results.items():
            print(
                f"one term added to the {edit}: median {statistics.median(times):.2f} s, "
                f"max {max(times):.2f} s over {len(times)} publishes (target ≤ 2 s)"
            )
    finally:
        stop.set()
        supervisor.stop(timeout=60)
        if redis_process is not None:
            redis_process.terminate()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
