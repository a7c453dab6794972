"""Limits: the body size, and a rate per API key (in-process, or shared through Redis).

The rate limit is GCRA (the generic cell rate algorithm, a token bucket kept as one
number): each key may make ``rate`` requests a second on average and ``burst`` at once.
A refused request learns when the next one would pass, which becomes ``Retry-After``.

With Redis configured the state lives there (one small key per API key, expiring when
idle), so every process and host of the service shares one budget per key; the check is
one script call. Without Redis each process keeps its own, and ``screening serve`` gives
each of its N processes 1/N of the rate.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Protocol

from starlette.requests import Request

from screening.service.problems import Problem

__all__ = ["MemoryRateLimiter", "RateLimiter", "RedisRateLimiter", "read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over ``limit``
    bytes: from ``Content-Length`` before reading anything, else while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem("body-too-large", f"the body is {declared} bytes; at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem("body-too-large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> float:
        """0.0 when a request of ``key`` may go ahead (and it is counted), else the
        seconds until one would."""
        ...


class MemoryRateLimiter:
    """GCRA per key in this process. ``rate`` requests a second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, *, clock: Any = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self.interval = 1.0 / rate
        self.tolerance = self.interval * (burst - 1)
        self.clock = clock
        self._tat: dict[str, float] = {}  # theoretical arrival time per key
        self._lock = threading.Lock()

    async def acquire(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            wait = tat - self.tolerance - now
            if wait > 0:
                return wait
            self._tat[key] = tat + self.interval
        return 0.0


#: GCRA in one script: time from the Redis server (every process agrees on the clock),
#: the key's theoretical arrival time in microseconds, expiring once the bucket is full.
_GCRA = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now_us)
if tat < now_us then tat = now_us end
local wait = tat - tolerance - now_us
if wait > 0 then return wait end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now_us) / 1000) + 1)
return 0
"""


class RedisRateLimiter:
    """GCRA per key in Redis, shared by every process (``client`` is a redis.asyncio
    client, created in the process's event loop)."""

    def __init__(self, client: Any, rate: float, burst: int, *, prefix: str = "screening:rate:"):
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self.client = client
        self.prefix = prefix
        self.interval_us = math.ceil(1_000_000 / rate)
        self.tolerance_us = self.interval_us * (burst - 1)
        self._script = client.register_script(_GCRA)

    async def acquire(self, key: str) -> float:
        wait = await self._script(
            keys=[self.prefix + key], args=[self.interval_us, self.tolerance_us]
        )
        return int(wait) / 1_000_000
