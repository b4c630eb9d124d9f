"""The malloc arena cap of ``kubevents run`` (allocator.py), counted in glibc's own report."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# In a fresh process: threads that malloc, then glibc's malloc_info, one <heap> per arena.
PROGRAM = """
import ctypes, os, sys, tempfile, threading
from kubevents import allocator
capped = allocator.limit_arenas() if sys.argv[1] == "cap" else None
def work():
    kept = [bytes(2000 + i) for i in range(200)]  # larger than Python's own allocator takes
    barrier.wait()
barrier = threading.Barrier(8)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
f = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, f)
libc.fclose(f)
print(capped, open(path).read().count("<heap nr="))
os.unlink(path)
"""

glibc = platform.libc_ver()[0] == "glibc"


def _arenas(mode: str, env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not glibc, reason="malloc arenas are glibc's")
@pytest.mark.parametrize(
    ("mode", "env", "capped", "most"),
    [
        ("cap", {}, "True", 1),  # the cap: 8 threads share one arena
        ("cap", {"MALLOC_ARENA_MAX": "3"}, "False", 3),  # the user's setting stays
    ],
)
def test_threads_share_the_capped_arenas(
    mode: str, env: dict[str, str], capped: str, most: int
) -> None:
    done, arenas = _arenas(mode, env)
    assert done == capped
    assert arenas <= most


@pytest.mark.skipif(not glibc, reason="malloc arenas are glibc's")
def test_without_the_cap_each_thread_gets_an_arena() -> None:
    # What the cap is for: the test above would pass without it if glibc shared anyway.
    assert _arenas("none", {})[1] > 1
