"""``python -m bench.sweep <table> [--tier cpu] [--dry-run] [OVERRIDE...]``: run a paper table's missing cells.

Lists the cells of a paper table (``results/specs/<table>.yaml``: one cell per row of the published
table and per point of its LR grid), finds the runs already in the store (finished or diverged, at
the tier's protocol, per seed), and launches exactly the missing ones through Hydra multirun, grouped
into as few ``python -m bench --multirun`` commands as an exact Cartesian product allows. Extra
overrides go to every command: data paths (``dataset.source=...``), a launcher (``hydra/launcher=slurm``
runs them on Slurm), a thread budget. One failing command does not stop the others; the exit status
is non-zero when a cell is still missing afterwards, and the message names them. Then ``python -m bench.tables``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError, report
from bench.records import ResultsStore
from bench.tables.__main__ import RESULTS_ENV, load_specs
from bench.tables.paper import COUNTED, FULL, in_tier, reduced, tier_overrides
from bench.tables.spec import Spec, expand, matches

EXAMPLES = """examples:
  python -m bench.sweep adalip_table2 --tier cpu --dry-run dataset.source=../shared/data/mnist.tar.xz
  python -m bench.sweep adalip_table2 --tier cpu dataset.source=../shared/data/mnist.tar.xz trainer.threads=1
  python -m bench.sweep rmsgd_table1a hydra/launcher=slurm hydra.launcher.partition=gpu   # the paper's protocol
  python -m bench.sweep --list                                                         # every table and its tiers
  python -m bench.tables                                                               # then regenerate the tables"""


@dataclass
class Cell:
    """One configuration of a table (all its seeds): the Hydra overrides, and the rows it fills."""
    overrides: dict[str, Any]
    rows: list[str] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def hydra_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return ",".join(hydra_value(v) for v in value)
    return str(value)


def cells(spec: Spec, tier: str) -> list[Cell]:
    """The distinct configurations of a table at a tier, each with the labels of the rows it fills."""
    by_key: dict[tuple, Cell] = {}
    extra = tier_overrides(spec, tier) if tier != FULL else dict(spec.sweep_overrides)
    for row in spec.rows:
        if tier != FULL and not in_tier(spec.tiers[tier], row.labels):
            continue
        for overrides in expand({**row.overrides, **extra}):
            cell = by_key.setdefault(tuple(sorted((k, repr(v)) for k, v in overrides.items())), Cell(overrides))
            cell.rows.append(" · ".join(row.labels.values()))
    return list(by_key.values())


def find_missing(spec: Spec, tier: str, table_cells: list[Cell], records: Iterable[dict[str, Any]]) -> None:
    """Fill each cell's ``done`` and ``missing`` seeds (0 .. seeds-1) from the store."""
    counted = [r for r in records if r["status"] in COUNTED and reduced(r) == (tier != FULL)]
    for cell in table_cells:
        present = {r["seed"] for r in counted if matches(r, cell.overrides)}
        seeds = range(spec.tiers[tier].seeds)
        cell.done = [s for s in seeds if s in present]
        cell.missing = [s for s in seeds if s not in present]


def group(table_cells: list[Cell]) -> list[dict[str, list[Any]]]:
    """The missing runs as multirun sweeps: each a product of value lists that covers exactly its runs."""
    sweeps = [{**{k: [v] for k, v in c.overrides.items()}, "seed": list(c.missing)} for c in table_cells if c.missing]
    keys = sorted({k for s in sweeps for k in s}, key=lambda k: (k != "+experiment", k))
    for key in keys:
        merged: dict[tuple, dict[str, list[Any]]] = {}
        for sweep in sweeps:
            rest = tuple(sorted((k, repr(v)) for k, v in sweep.items() if k != key))
            if rest in merged and key in sweep and key in merged[rest]:
                merged[rest][key] += [v for v in sweep[key] if v not in merged[rest][key]]
            else:
                merged.setdefault(rest, {k: list(v) for k, v in sweep.items()})
        sweeps = list(merged.values())
    return sweeps


def command(sweep: dict[str, list[Any]], extra: list[str]) -> list[str]:
    order = sorted(sweep, key=lambda k: (k not in ("+experiment", "optim", "model", "dataset", "schedule"), k))
    return [sys.executable, "-m", "bench", "--multirun", *(f"{k}={hydra_value(sweep[k])}" for k in order), *extra]


def plan(spec: Spec, tier: str, records: Iterable[dict[str, Any]], extra: list[str]) -> tuple[list[Cell], list[list[str]]]:
    spec.tier(tier)
    table_cells = cells(spec, tier)
    find_missing(spec, tier, table_cells, records)
    return table_cells, [command(sweep, extra) for sweep in group(table_cells)]


def describe(spec: Spec, tier: str, table_cells: list[Cell], commands: list[list[str]]) -> str:
    seeds = spec.tiers[tier].seeds
    lines = [f"{spec.name} ({spec.title}), tier {tier}: {len(table_cells)} cells x {seeds} seeds; "
             f"{sum(len(c.done) for c in table_cells)} runs in the store, {sum(len(c.missing) for c in table_cells)} missing"]
    for cell in table_cells:
        overrides = " ".join(f"{k}={hydra_value(v)}" for k, v in cell.overrides.items())
        state = "done" if not cell.missing else f"missing seeds {cell.missing}"
        lines.append(f"  [{state}] {overrides}   <- {'; '.join(dict.fromkeys(cell.rows))}")
    lines += [f"{len(commands)} commands:"] + ["  python " + " ".join(c[1:]) for c in commands]
    return "\n".join(lines)


def load_table(name: str, results: Path, specs: Path | None) -> Spec:
    tables = {spec.name: spec for spec in load_specs(results, specs)}
    if name not in tables:
        raise BenchError(f"no table {name!r}; the tables: {', '.join(sorted(tables))} (python -m bench.sweep --list)")
    return tables[name]


def list_tables(results: Path, specs: Path | None) -> str:
    return "\n".join(f"{spec.name:22s} tiers: {', '.join(spec.tiers):10s} {spec.title}"
                     for spec in load_specs(results, specs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", help="a paper table: the stem of results/specs/<table>.yaml")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides added to every command")
    parser.add_argument("--tier", default=FULL, help="full (the paper's protocol, default) or a reduced tier, e.g. cpu")
    parser.add_argument("--dry-run", action="store_true", help="print the cells and the commands; run nothing")
    parser.add_argument("--list", action="store_true", help="list the tables and their tiers")
    parser.add_argument("--results", type=Path, default=Path(os.environ.get(RESULTS_ENV) or "results"),
                        help=f"results store (default: ${RESULTS_ENV}, else results)")
    parser.add_argument("--specs", type=Path, default=None, help="table specs (default: <results>/specs)")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.list:
            print(list_tables(args.results, args.specs))
            return 0
        if not args.table:
            raise BenchError("name a table (python -m bench.sweep --list shows them)")
        spec = load_table(args.table, args.results, args.specs)
        records = list(ResultsStore(args.results)) if args.results.is_dir() else []
        table_cells, commands = plan(spec, args.tier, records, args.overrides)
        print(describe(spec, args.tier, table_cells, commands))
        if args.dry_run or not commands:
            return 0
        env = {**os.environ, RESULTS_ENV: str(args.results.resolve())}
        failed = [c for c in commands if subprocess.run(c, env=env).returncode != 0]
        find_missing(spec, args.tier, table_cells, ResultsStore(args.results))
        still = [c for c in table_cells if c.missing]
        if still:
            names = "; ".join(" ".join(f"{k}={hydra_value(v)}" for k, v in c.overrides.items()) + f" seeds {c.missing}"
                              for c in still)
            raise BenchError(f"{len(still)} cells of {spec.name} are still missing after {len(commands)} commands "
                             f"({len(failed)} failed; their logs are above): {names}")
    except BenchError as error:
        report(error)
        return error.exit_code
    print(f"{spec.name}: every cell of tier {args.tier} is in {args.results}; now python -m bench.tables", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
