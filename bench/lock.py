"""One launch at a time per run: an exclusive, non-blocking lock on ``<work_dir>/<run_id>/lock``.

The first launch of a run takes the lock and holds it until its record is written; a second launch
of the same run (a duplicate sweep, a resubmitted job) finds the lock taken and skips. The lock is
``flock(2)``: the kernel releases it when its holder dies, so a killed run never leaves it stuck.
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Fault injection for tests: after taking the lock, create ``<path>.held`` and wait until ``<path>``
# exists, so that a second launch provably runs while the first holds the lock.
HOLD_ENV = "BENCH_FAULT_HOLD_LOCK"


def _hold_for_test() -> None:
    release = os.environ.get(HOLD_ENV)
    if not release:
        return
    Path(f"{release}.held").touch()
    deadline = time.monotonic() + 600
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@contextmanager
def run_lock(path: Path) -> Iterator[bool]:
    """Hold the lock at ``path`` for the block; yields False (and holds nothing) when it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            _hold_for_test()
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
