"""Time to build the HTML report of a generated store, against building its tables (same process).

Generates ``--records`` records (``tests/report_store.py``: marked synthetic, not runs) in a
temporary store, then times, alternating over ``--reps`` repetitions: the baseline (reading the store
and building every table, what ``python -m bench.tables`` does before writing) and the report's first
build into a new folder and its rebuild (which must write nothing: idempotent). Prints the median
seconds and the ratios to the baseline.

    python scripts/bench_report.py [--records 1000] [--epochs 50] [--reps 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's packages first
from bench.report.build import build  # noqa: E402
from bench.tables.__main__ import build as build_tables  # noqa: E402
from tests.report_store import generate  # noqa: E402


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "results"
        generate(store, args.records, args.epochs)
        times: dict[str, list[float]] = {"tables (baseline)": [], "report, first build": [], "report, rebuild": []}
        for rep in range(args.reps):
            out = Path(tmp) / f"report{rep}"
            times["tables (baseline)"].append(timed(lambda: build_tables(store))[0])
            first, built = timed(lambda: build(store, out))
            again, rebuilt = timed(lambda: build(store, out))
            times["report, first build"].append(first)
            times["report, rebuild"].append(again)
            assert rebuilt.changed == 0 and rebuilt.removed == 0, "a rebuild of the same store rewrote files"
        base = statistics.median(times["tables (baseline)"])
        print(f"{args.records} generated records x {args.epochs} epochs, {built.pages} pages, median of {args.reps}:")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:22s} {median:6.2f} s   x{median / base:5.2f}   (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
