"""How many malloc arenas ``kubevents run`` lets glibc keep.

glibc gives a thread that meets another in malloc an arena of its own (up to
8 per core) and keeps what is freed in it for that arena. ``kubevents run``
parses every watch line in a watch thread and keeps or frees the result in
the pipeline thread, so each thread's arena holds slack the other cannot
reuse. Python's own allocator (objects of up to 512 bytes) is shared by all
threads; what goes to malloc is the larger objects: watch lines, an Event's
dict tables, long messages, TLS buffers.

On the side-by-side bench with the receiver (docs/performance.md) one arena
(``MALLOC_ARENA_MAX=1``) took the peak RSS from 53-54 MiB to 50-51 MiB at the
same CPU: the threads take turns under the GIL, so they hardly ever wait for
each other in malloc. Hence :data:`ARENAS`, one arena that every thread shares.

A ``MALLOC_ARENA_MAX`` set in the environment is left as it is (glibc reads
it itself), and other C libraries (musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

ARENAS = 1
M_ARENA_MAX = -8
"""``mallopt`` parameter of glibc's ``malloc.h``."""


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; True if the cap is now in place.

    Call it before starting threads: an arena made before stays.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        logger.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)
        return False
    return True
