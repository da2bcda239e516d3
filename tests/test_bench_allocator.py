"""The allocator benchmark compares what it says it compares.

``benchmarks/bench_allocator.py`` runs processes with glibc's defaults and with the malloc
thresholds the README suggests. Its "defaults" must not inherit a setting from the shell
that runs it, and the suggested thresholds must do what the README says: keep a read the
size asyncio makes (``recv(262144)`` of a 60 KB page) out of a fresh mapping.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

import pytest
from _benchmarks import import_benchmark

_READS = """
import resource, socket
a, b = socket.socketpair()
a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
page = b"x" * 60_000
def one_page():
    a.sendall(page)
    got = 0
    while got < len(page):
        got += len(b.recv(262144))  # what asyncio's selector transport asks for
one_page()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    one_page()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


@pytest.fixture(scope="module")
def bench() -> Any:
    return import_benchmark("bench_allocator")


def test_the_defaults_inherit_no_malloc_setting_and_the_other_mode_sets_the_suggested_one(
    bench: Any,
) -> None:
    shell = {
        "PATH": "/usr/bin",
        "MALLOC_ARENA_MAX": "2",
        "MALLOC_TRIM_THRESHOLD_": "1",
        "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1",
    }
    defaults, raised = (bench.child_env(mode, shell) for mode in bench.MODES)
    assert defaults == {"PATH": "/usr/bin"}
    assert raised == {"PATH": "/usr/bin", **bench.TUNED}
    assert raised["MALLOC_MMAP_THRESHOLD_"] == str(4 * 1024 * 1024)
    assert raised["MALLOC_TRIM_THRESHOLD_"] == str(8 * 1024 * 1024)


def _faults_per_read(env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _READS], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's thresholds only")
def test_the_suggested_thresholds_keep_asyncio_sized_reads_out_of_fresh_mappings(
    bench: Any,
) -> None:
    defaults, raised = (bench.child_env(mode, os.environ) for mode in bench.MODES)
    # glibc maps a 256 KiB read afresh each time, and the kernel maps the 15 pages the
    # 60 KB page was written to; the buffer is shrunk before it is freed, so glibc's own
    # threshold never rises.
    assert _faults_per_read(defaults) >= 10
    assert _faults_per_read(raised) < 1
