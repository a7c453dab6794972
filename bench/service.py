"""The HTTP API under load: `screening serve` as deployed, a real load generator (figures
printed only; never a timed test).

    .venv/bin/python bench/service.py [--seconds 10] [--workers 2] [--connections 32]

Runs `screening serve` (the shipped wordlists and model, API keys on, access log off, the
rate limit off) and drives it from this machine, with the chat mix of bench/pipeline.py
(10 % flagged). The load generator is `wrk` (Debian package `wrk`) for the closed-loop
maximum, and an open-loop generator here (asyncio, HTTP/1.1 keep-alive) for latency at a
fixed rate: each request has a scheduled send time and its latency runs from that time,
so a stalled server cannot hide its queueing (no coordinated omission). Without wrk the
open-loop generator also finds the maximum. Reported for each case: requests/s and
messages/s, p50/p99, and the server's CPU per request and per message (all its
processes; /proc), with the load average — the machine is shared, wall-clock rates move
with it, CPU per request much less.

Cases (issue 12's targets): single-message /v1/screen (>= 3,000 req/s; p99 <= 20 ms at
1,500 req/s), 100 messages a request (>= 10,000 msg/s), and /v1/messages into a real Redis
started here (>= 10,000 msg/s; checks the queue holds every accepted message).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, where this file would
# shadow the standard library's `http` package for the libraries imported below.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import redis  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _pipeline_bench() -> object:
    """bench/pipeline.py's helpers (Redis, CPU of a process tree, the chat mix, quantiles)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_pipeline", REPO / "bench" / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _pipeline_bench()
cpu_seconds, quantiles = _helpers.cpu_seconds, _helpers.quantiles  # type: ignore[attr-defined]
start_redis, texts = _helpers.start_redis, _helpers.texts  # type: ignore[attr-defined]

KEY = "bench-api-key-0123456789abcdef0123456789"
SIGNING_KEY = "bench-signing-key-0123456789abcdef01"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def bodies(pool: list[str], per_request: int, n: int = 200) -> list[bytes]:
    """``n`` request bodies of ``per_request`` messages each, from the chat mix."""
    out = []
    for b in range(n):
        messages = [
            {
                "message_id": f"b{b}-{i}-{random.random():.9f}",
                "group_id": f"g{b % 50}",
                "sender_id": f"u{i}",
                "text": random.choice(pool),
                "sent_at": 1764000000,
            }
            for i in range(per_request)
        ]
        out.append(json.dumps({"messages": messages}, ensure_ascii=False).encode())
    return out


class Server:
    """`screening serve` in a subprocess, ready to answer."""

    def __init__(self, workers: int, env: dict[str, str]):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "screening.cli",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ["BENCH_SERVER_LOG"], "a")
            if os.environ.get("BENCH_SERVER_LOG")
            else subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        sys.exit("screening serve did not become ready")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- wrk: the closed-loop maximum ------------------------------------------------------

WRK_SCRIPT = """
local bodies, i = {}, 0
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(url: str, path: str, payloads: list[bytes], seconds: float, connections: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bodies").write_bytes(b"\n".join(payloads) + b"\n")
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        env = {**os.environ, "BODIES": f"{tmp}/bodies", "KEY": KEY}
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{int(seconds)}s",
                "-s",
                f"{tmp}/post.lua",
                url + path,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests, micros, errors, p50, p99 = (int(x) for x in line.split()[1:])
    return {
        "requests": requests,
        "rate": requests / (micros / 1e6),
        "errors": errors,
        "p50": p50 / 1000,
        "p99": p99 / 1000,
    }


# -- open loop: latency at a fixed rate --------------------------------------------------


async def _open_loop(
    host: str,
    port: int,
    path: str,
    payloads: list[bytes],
    rate: float,
    seconds: float,
    connections: int,
) -> dict:
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        for n in counter:
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = payloads[n % len(payloads)]
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            errors += not status_line.split(b" ")[1].startswith(b"2")
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    p50, p99 = quantiles(latencies)
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "errors": errors,
        "p50": p50,
        "p99": p99,
    }


def open_loop(
    url: str, path: str, payloads: list[bytes], rate: float, seconds: float, connections: int
) -> dict:
    host, port = url.removeprefix("http://").split(":")
    return asyncio.run(_open_loop(host, int(port), path, payloads, rate, seconds, connections))


# -- the cases ----------------------------------------------------------------------------


def measure(server: Server, run, per_request: int) -> dict:  # type: ignore[no-untyped-def]
    before = server.cpu()
    result = run()
    spent = server.cpu() - before
    result["cpu_per_request_us"] = spent / max(1, result["requests"]) * 1e6
    result["cpu_per_message_us"] = result["cpu_per_request_us"] / per_request
    result["messages_per_s"] = result["rate"] * per_request
    return result


def show(name: str, result: dict) -> None:
    print(
        f"{name:<34} {result['rate']:>8,.0f} req/s {result['messages_per_s']:>9,.0f} msg/s  "
        f"p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms  server CPU "
        f"{result['cpu_per_request_us']:6.0f} us/req {result['cpu_per_message_us']:5.0f} us/msg"
        f"  errors {result['errors']}  ({load()})",
        flush=True,
    )


def maximum(server: Server, path: str, payloads: list[bytes], args: argparse.Namespace) -> dict:
    if shutil.which("wrk"):
        return wrk(server.url, path, payloads, args.seconds, args.connections)
    return open_loop(server.url, path, payloads, 1e9, args.seconds, args.connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--half-rate",
        type=float,
        default=1500.0,
        help="single-message requests a second for the latency case",
    )
    parser.add_argument(
        "--cases",
        default="max,half,hundred,enforced,ingest",
        help="comma-separated: max, half (latency at --half-rate), hundred, enforced "
        "(single-message /v1/screen with Redis: enforcement, records, callbacks), ingest",
    )
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    random.seed(7)
    pool = texts(0.1, random.Random(7))
    env = {
        "SCREENING_API_KEYS": f"bench:{KEY}",
        "SCREENING_HTTP_RATE_LIMIT": "0",
        "SCREENING_HTTP_ACCESS_LOG": "0",
    }
    print(
        f"generator: {'wrk' if shutil.which('wrk') else 'open-loop asyncio'}; "
        f"{args.workers} server processes; {os.cpu_count()} cores; {load()}",
        flush=True,
    )
    one, hundred = bodies(pool, 1), bodies(pool, 100, 40)
    server = Server(args.workers, env)
    try:
        maximum(server, "/v1/screen", one, args)  # warm up
        if "max" in cases:
            show(
                "screen, 1 message, max",
                measure(server, lambda: maximum(server, "/v1/screen", one, args), 1),
            )
        if "half" in cases:
            show(
                f"screen, 1 message, {args.half_rate:,.0f} req/s",
                measure(
                    server,
                    lambda: open_loop(
                        server.url,
                        "/v1/screen",
                        one,
                        args.half_rate,
                        args.seconds,
                        args.connections,
                    ),
                    1,
                ),
            )
        if "hundred" in cases:
            show(
                "screen, 100 messages, max",
                measure(server, lambda: maximum(server, "/v1/screen", hundred, args), 100),
            )
    finally:
        server.stop()
    if not cases & {"ingest", "enforced"}:
        return
    with tempfile.TemporaryDirectory() as tmp:
        url, redis_process = start_redis("off", tmp)
        ingest = Server(
            args.workers,
            {
                **env,
                "SCREENING_REDIS_URL": url,
                "SCREENING_SIGNING_KEY": SIGNING_KEY,
                "SCREENING_RECORDS_PATH": f"{tmp}/records.sqlite3",
                "SCREENING_MAX_QUEUED_BATCHES": "0",
                "SCREENING_HTTP_INGEST_BUFFER": "100000",
            },
        )
        accepted = 0.0
        try:
            if "enforced" in cases:  # each request also runs the queue path's act_on_verdicts
                show(
                    "screen, 1 message, with Redis, max",
                    measure(ingest, lambda: maximum(ingest, "/v1/screen", one, args), 1),
                )
            if "ingest" in cases:
                before = _accepted(ingest.url)
                result = measure(
                    ingest, lambda: maximum(ingest, "/v1/messages", hundred, args), 100
                )
                accepted = _accepted(ingest.url) - before
                result["messages_per_s"] = accepted / args.seconds  # 503s (buffer full) left out
                show("ingest, 100 messages, max", result)
        finally:
            ingest.stop()  # flushes what it buffered
            if "ingest" in cases:
                print(
                    f"  accepted {accepted:,.0f} messages (the rest answered 503 + Retry-After: "
                    f"buffer full); Redis holds {_queued(url):,}",
                    flush=True,
                )
            if redis_process is not None:
                redis_process.terminate()
                redis_process.wait(timeout=10)


def _accepted(url: str) -> float:
    """Messages /v1/messages accepted so far, by the service's own metrics."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("screening_http_messages_total{") and "accepted" in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _queued(url: str) -> int:
    """Chat messages in the screening queue (each queue message is a batch)."""
    client = redis.Redis.from_url(url)
    total = 0
    for raw in client.hvals("dramatiq:screening.msgs"):
        total += len(json.loads(raw)["args"][0]["messages"])
    return total


if __name__ == "__main__":
    main()
