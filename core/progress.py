"""Progress and cancel for the core's long loops: one helper, one "cancelled" wording.

Every operation of the core takes ``progress(fraction 0..1)`` and ``should_stop() -> bool``, both
optional. The loops report and poll through these helpers, so a stop raises the same
:class:`~.errors.Cancelled` (its message: :data:`~.errors.CANCELLED_MESSAGE`) wherever it comes.
"""
from __future__ import annotations

from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Optional[Callable[[float], None]]
StopFn = Optional[Callable[[], bool]]


def stop_if_asked(should_stop: StopFn) -> None:
    """Raise :class:`Cancelled` when ``should_stop()`` says so (None: never)."""
    if should_stop is not None and should_stop():
        raise Cancelled()


def report(progress: ProgressFn, fraction: float) -> None:
    """``progress(fraction)`` clamped to 0..1 (None: nothing)."""
    if progress is not None:
        progress(min(1.0, max(0.0, fraction)))


def span(progress: ProgressFn, lo: float, hi: float) -> ProgressFn:
    """A progress callback for a step that covers lo..hi of the caller's range (None for None)."""
    if progress is None:
        return None
    return lambda r: progress(lo + (hi - lo) * min(1.0, max(0.0, r)))


def checkpoint(progress: ProgressFn, should_stop: StopFn, fraction: float) -> None:
    """Poll ``should_stop`` (raising :class:`Cancelled`), then report ``fraction``."""
    stop_if_asked(should_stop)
    report(progress, fraction)


def ticker(progress: ProgressFn, should_stop: StopFn, lo: float, hi: float, n: int, every: int = 256):
    """``tick(i)`` for item i of n: every ``every`` items a :func:`checkpoint` at lo..hi."""
    def tick(i):
        if i % every == 0:
            checkpoint(progress, should_stop, lo + (hi - lo) * i / n if n else lo)
    return tick
