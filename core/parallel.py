"""Running vectorised work on a few threads: numpy and shapely release the GIL in their loops."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from .errors import Cancelled
from .progress import stop_if_asked


def run_parallel(tasks, fn, should_stop=None, progress=None, workers=None):
    """``fn(task)`` for every task on a few threads (shapely and numpy release the GIL), results
    in task order; ``should_stop`` is polled while waiting and raises :class:`Cancelled`."""
    if not tasks:
        return []
    stop = threading.Event()

    def guarded(task):
        return None if stop.is_set() else fn(task)

    out = []
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(guarded, t) for t in tasks]
        try:
            for k, fut in enumerate(futures):
                while True:
                    try:
                        out.append(fut.result(timeout=0.2))
                        break
                    except FutureTimeout:
                        if should_stop is not None and should_stop():
                            raise Cancelled() from None
                stop_if_asked(should_stop)
                if progress is not None:
                    progress((k + 1) / len(futures))
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise
    return out


class Beside:
    """``fn(stopped)`` run on a thread of its own beside the caller's own work::

        with Beside(lambda stopped: ...) as beside:
            ...                                  # the caller's work
            value = beside.result(should_stop)

    ``stopped()`` turns True when the caller's block fails or is cancelled (``fn`` polls it and
    gives up, e.g. as its ``should_stop``); leaving the block waits for the thread. ``result``
    waits for ``fn``'s value (raising its error), polling ``should_stop`` meanwhile, so that the
    caller's ``should_stop`` is called from the caller's thread only."""

    def __init__(self, fn):
        self._fn = fn
        self._stop = threading.Event()

    def __enter__(self):
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(self._fn, self._stop.is_set)
        return self

    def result(self, should_stop=None):
        while True:
            try:
                return self._future.result(timeout=0.2)
            except FutureTimeout:
                stop_if_asked(should_stop)

    def __exit__(self, kind, value, tb):
        if kind is not None:
            self._stop.set()
        self._pool.shutdown(wait=True)
        return False
