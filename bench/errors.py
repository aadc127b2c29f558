"""User-facing errors: one line that says what is wrong and how to fix it."""
from __future__ import annotations

import sys


class BenchError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2


def report(error: BenchError) -> None:
    """Print ``error`` as a single ``error: ...`` line on stderr."""
    message = " ".join(str(error).split())
    print(f"error: {message}", file=sys.stderr, flush=True)
