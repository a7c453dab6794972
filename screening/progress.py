"""Progress bars for the commands that run for minutes on real data (``lint --benign``,
``eval``, ``train``, ``records export``, ``policy simulate``, ``scan`` of a file).

A bar is drawn on stderr only when stderr is a terminal: piped into a file or a CI log it
would be a stream of carriage returns, so there the commands stay exactly as quiet as
before. Drawing is tqdm's (rate, ETA, redraws at most ~10 times a second); the commands
only say how much is done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from tqdm import tqdm

__all__ = ["Progress", "progress_bar", "progress_callback", "tracked", "tracked_bytes"]

T = TypeVar("T")


class Progress:
    """One bar, or nothing when its stream is not a terminal (every method then no-ops)."""

    def __init__(
        self, desc: str, *, total: int | None = None, unit: str = "it",
        stream: IO[str] | None = None,
    ):  # fmt: skip
        stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(stream)
        self.bar: Any = None
        if self.enabled:
            self.bar = tqdm(
                total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True,
                unit_scale=True, leave=True, mininterval=0.2,
            )  # fmt: skip

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def callback(self, done: int, total: int) -> None:
        """``progress(done, total)`` for code that reports absolute counts."""
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

    def set_total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream
        return False


@contextmanager
def progress_bar(
    desc: str, *, total: int | None = None, unit: str = "it", stream: IO[str] | None = None
) -> Iterator[Progress]:
    """A :class:`Progress` closed when the block ends (also when it raises)."""
    bar = Progress(desc, total=total, unit=unit, stream=stream)
    try:
        yield bar
    finally:
        bar.close()


def tracked(
    items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it",
    stream: IO[str] | None = None,
) -> Iterator[T]:  # fmt: skip
    """``items``, advancing a bar by one per item."""
    with progress_bar(desc, total=total, unit=unit, stream=stream) as bar:
        for item in items:
            yield item
            bar.update()


def tracked_bytes(
    lines: Iterable[bytes], desc: str, *, total: int | None, stream: IO[str] | None = None
) -> Iterator[bytes]:
    """``lines`` of a file of ``total`` bytes, advancing a bar by each line's size (a rate
    in MB/s and an honest ETA without counting the lines first)."""
    with progress_bar(desc, total=total, unit="B", stream=stream) as bar:
        for line in lines:
            yield line
            bar.update(len(line))


def progress_callback(
    desc: str, *, unit: str = "it", stream: IO[str] | None = None
) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` drawing a bar that closes itself when ``done`` reaches
    ``total``; None when the stream is not a terminal (callers then skip the calls)."""
    bar = Progress(desc, unit=unit, stream=stream)
    if not bar.enabled:
        return None

    def progress(done: int, total: int) -> None:
        bar.callback(done, total)
        if done >= total:
            bar.close()

    return progress
