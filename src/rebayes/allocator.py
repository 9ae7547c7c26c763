"""glibc's allocator, tuned for a process that samples in threads (the ``rebayes`` command).

Two calls, both doing nothing where the C library is not glibc (macOS, Windows):
:func:`limit_arenas` before any thread starts, :func:`release_free_memory` after large frees.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from typing import Any

__all__ = ["limit_arenas", "release_free_memory"]

# glibc's mallopt parameter for the number of malloc arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


@cache
def _glibc(name: str) -> Any | None:
    """Return the C library's function ``name`` (looked up once), or None without it."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def limit_arenas(arenas: int = 1) -> None:
    """Cap glibc's malloc arenas; call it before any thread starts.

    glibc gives threads their own arenas, up to 8 per core, and a report's threads (nutpie's
    chains, the background sampler and the cache writer) each kept one: the shipped
    dataset's cold report peaked at 915 MB with the default, 816 MB with 2 arenas and
    797 MB with 1, in the same time (measured; docs/performance.md). A
    ``MALLOC_ARENA_MAX`` the user set stands.
    """
    mallopt = _glibc("mallopt")
    if mallopt is not None and "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(arenas))


def release_free_memory() -> None:
    """Give memory freed by the process back to the system (glibc's ``malloc_trim``).

    glibc keeps freed memory for reuse, and the pattern in which a report's threads free
    fits left ~60 MB of it idle at the report's peak (the shipped dataset, cold: 826 ->
    761-765 MB, measured; the time unchanged).
    """
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)
