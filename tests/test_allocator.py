"""The server keeps freed memory for reuse: a query's arrays do not fault their pages in anew each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates, touches and frees the arrays of a query-sized computation 20 times; prints the minor page
# faults of the last 19 rounds (the first maps the memory in either way).
_ROUNDS = """
import resource, sys
import numpy as np
from sextant.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def query():
    arrays = [np.ones(300_000) for _ in range(6)]
    return sum(float(a[-1]) for a in arrays)
query()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    query()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True
    ).stdout
    return int(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_arrays_are_reused_instead_of_faulted_in_again() -> None:
    # 6 arrays of 2.4 MB: about 3,500 pages a round when the allocator hands them back to the kernel.
    default, kept = _faults("default"), _faults("keep")
    assert default > 19 * 1000
    assert kept < 19 * 50
