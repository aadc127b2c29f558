"""``python -m bench.report [--results DIR] [--out DIR]``: the results store as a static HTML report.

Writes ``<out>/index.html`` (every paper table that ``python -m bench.tables`` builds: ours beside
the paper with n, the confidence interval where the table has one, marks for reduced, lossy-data
and synthetic-data runs, and the cells still missing with the command that fills them), one page
per table with its figures, and one page per run (config, provenance, hardware, time, curves of
every logged metric, per-layer and estimated learning rates where logged). Open it from disk: no
server and no internet needed. Rebuilding rewrites only what changed and removes pages of runs that
are gone. ``--out`` is a folder (default ``<results>/report``).
"""
from __future__ import annotations

import argparse
import sys

from bench.errors import BenchError, report
from bench.report.build import build
from bench.tables.__main__ import store_arguments

EXAMPLES = """examples:
  python -m bench.report                                    # results/ -> results/report/index.html
  python -m bench.report --results /scratch/results --out /tmp/report   # another store; --out: a folder
  xdg-open results/report/index.html                        # or open the file in any browser"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    store_arguments(parser, "report")
    args = parser.parse_args(argv)
    out = args.out or args.results / "report"
    try:
        built = build(args.results, out, args.specs)
    except BenchError as error:
        report(error)
        return error.exit_code
    print(f"{built.records} run records, {built.tables} tables -> {built.pages} pages in {out} "
          f"({built.changed} files written, {built.removed} removed); open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
