"""``python -m bench.tables [--results DIR] [--out DIR]``: rebuild every table from ``results/``.

Writes ``<out>/summary.{md,csv,tex}`` (all runs) and one table per spec in ``<results>/specs/``
(format: results/specs/README.md; ours with its 95% CI beside the published value) as Markdown,
CSV and LaTeX (booktabs), and prints them.
The store defaults to ``$BENCH_RESULTS_DIR`` (else ``results``), as for ``python -m bench``; a
relocated store without its own ``specs/`` or ``published/`` uses the checkout's.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench import PROJECT_ROOT
from bench.errors import BenchError, report
from bench.records import ResultsStore
from bench.tables.build import Table, summary
from bench.tables.paper import paper_table
from bench.tables.spec import Spec, load_spec
RESULTS_ENV = "BENCH_RESULTS_DIR"
EXAMPLES = """examples:
  python -m bench.tables                                   # results/runs -> results/tables/*.{md,csv}
  python -m bench.tables --quiet                           # write without printing
  python -m bench.tables --results /scratch/results --out /tmp/tables   # another store, --out: a folder
  python -m bench.report                                   # the same tables as HTML, with figures and runs"""


def store_or_checkout(results: Path, name: str) -> Path:
    """``<results>/<name>`` when the store has its own, else the checkout's ``results/<name>``."""
    own = results / name
    return own if own.is_dir() else PROJECT_ROOT / "results" / name


def build(results: Path, specs: Path | None = None) -> tuple[list[dict[str, Any]], list[Table]]:
    """The records of the store at ``results`` and every table built from them (the summary first)."""
    if not results.is_dir():
        raise BenchError(f"no results store at {results}; pass --results <dir> or run python -m bench first")
    records = list(ResultsStore(results))
    tables = [summary(records)] + [paper_table(spec, records) for spec in load_specs(results, specs)]
    return records, tables


def load_specs(results: Path, specs: Path | None = None) -> list[Spec]:
    """Every paper table spec of the store (or the checkout's), with its published CSV."""
    folder = specs or store_or_checkout(results, "specs")
    if not folder.is_dir():
        raise BenchError(f"no table specs at {folder}; pass --specs <folder of results/specs/*.yaml>")
    published = store_or_checkout(results, "published")
    return [load_spec(path, published) for path in sorted(folder.glob("*.yaml"))]


def store_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    """``--results``, ``--out`` (a folder, default ``<results>/<output>``) and ``--specs``."""
    parser.add_argument("--results", type=Path, default=Path(os.environ.get(RESULTS_ENV) or "results"),
                        help=f"results store (default: ${RESULTS_ENV}, else results)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: <results>/{output})")
    parser.add_argument("--specs", type=Path, default=None, help="paper table specs (default: <results>/specs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tables", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    store_arguments(parser, "tables")
    parser.add_argument("--quiet", action="store_true", help="write the files without printing them")
    args = parser.parse_args(argv)
    try:
        records, tables = build(args.results, args.specs)
        out = args.out or args.results / "tables"
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
