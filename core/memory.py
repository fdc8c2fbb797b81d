"""Handing memory the run has freed back to the operating system."""
from __future__ import annotations

import ctypes
import functools
import sys


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim   # glibc; absent from other C libraries (musl)
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Returns the memory freed so far to the operating system where the C library keeps it in
    the process: glibc keeps freed blocks in its arenas (one per thread that allocated), so the
    resident size stays near the highest point of every stage before (at planet scale about
    half a GiB more at the start of the writing). ``malloc_trim(0)`` there (a few hundredths of a
    second); nothing elsewhere (Windows and macOS return freed memory themselves)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
