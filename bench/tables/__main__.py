"""``python -m bench.tables [--results DIR] [--out DIR]``: rebuild every table from ``results/``.

Writes ``<out>/summary.{md,csv}`` (all runs), one table per spec in ``<results>/specs/``
(mean ± std over seeds beside the published value) and the AdaLip Tables 2-5, and prints them.
The store defaults to ``$BENCH_RESULTS_DIR`` (else ``results``), as for ``python -m bench``; a
relocated store without its own ``specs/`` or ``published/`` uses the checkout's.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import PROJECT_ROOT
from bench.errors import BenchError, report
from bench.records import ResultsStore
from bench.tables import adalip
from bench.tables.build import paper_table, summary

# Paper tables whose aggregation is not "mean ± std over seeds" (see results/specs/ for those).
CUSTOM_TABLES = (adalip.render,)
RESULTS_ENV = "BENCH_RESULTS_DIR"


def store_or_checkout(results: Path, name: str) -> Path:
    """``<results>/<name>`` when the store has its own, else the checkout's ``results/<name>``."""
    own = results / name
    return own if own.is_dir() else PROJECT_ROOT / "results" / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tables", description=__doc__)
    parser.add_argument("--results", type=Path, default=Path(os.environ.get(RESULTS_ENV) or "results"),
                        help=f"results store (default: ${RESULTS_ENV}, else results)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <results>/tables)")
    parser.add_argument("--specs", type=Path, default=None, help="paper table specs (default: <results>/specs)")
    parser.add_argument("--quiet", action="store_true", help="write the files without printing them")
    args = parser.parse_args(argv)
    try:
        if not args.results.is_dir():
            raise BenchError(f"no results store at {args.results}; pass --results <dir> or run python -m bench first")
        records = list(ResultsStore(args.results))
        specs = args.specs or store_or_checkout(args.results, "specs")
        published = store_or_checkout(args.results, "published")
        out = args.out or args.results / "tables"
        tables = [summary(records)] + [paper_table(p, published, records) for p in sorted(specs.glob("*.yaml"))]
        tables += [table for render in CUSTOM_TABLES for table in render(records, published)]
        for table in tables:
            table.write(out)
            if not args.quiet:
                print(table.markdown())
    except BenchError as error:
        report(error)
        return error.exit_code
    print(f"{len(records)} run records -> {len(tables)} tables in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
