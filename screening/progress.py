"""Progress bars for the commands that run for minutes on real data (``lint --benign``,
``eval``, ``train``, ``records export``, ``policy simulate``, ``scan`` of a file).

A bar is drawn on stderr only when stderr is a terminal: piped into a file or a CI log it
would be a stream of carriage returns, so there the commands stay exactly as quiet as
before. Drawing is tqdm's (rate, ETA, redraws at most ~10 times a second); the commands
only say how much is done.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from tqdm import tqdm

__all__ = ["Progress", "progress_bar", "tracked"]

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
