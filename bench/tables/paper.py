"""A paper table from its spec (``results/specs/<name>.yaml``): ours beside the published values.

Each published cell becomes one row: our value (mean ± std over seeds, or the grid statistic), the
bootstrap 95% confidence interval over seeds, n, the paper's value, Δ = ours − paper, and a mark
where the paper's value lies outside our interval. A cell reads the runs at the paper's protocol
when there are any, else the runs of a reduced tier (``sweep.tiers``) that match its overrides.
"""
from __future__ import annotations

import math
from typing import Any

from bench.tables.build import Table
from bench.tables.records import MARKS_LEGEND, REDUCED_MARK, marks
from bench.tables.reduce import CellValue, cell_value, outside
from bench.identity import get_dotted
from bench.tables.spec import Row, Spec, Tier, choices, matches

Record = dict[str, Any]
COUNTED = ("finished", "diverged")
FULL = "full"
MISSING = "-"


def reduced(record: Record) -> bool:
    return bool((record.get("protocol") or {}).get("reduced"))


def in_tier(tier: Tier, labels: dict[str, str]) -> bool:
    """Whether a tier runs the row with these labels (``only``: the labels it is limited to)."""
    return all(labels.get(column) in {str(v) for v in allowed} for column, allowed in tier.only.items())


def tier_overrides(spec: Spec, tier: str) -> dict[str, Any]:
    return {**spec.sweep_overrides, **spec.tiers[tier].overrides}


def grid_points(row: Row, runs: list[Record]) -> tuple[int, int]:
    """(grid points with a run, grid points of the row) for a grid reduction; (0, 0) otherwise."""
    grid = row.reduction.grid
    if not grid:
        return 0, 0
    wanted = {repr(v) for v in choices(row.overrides.get(grid))}
    return len(wanted & {repr(get_dotted(r["config"], grid)) for r in runs}), len(wanted)


def cell_runs(spec: Spec, row: Row, records: list[Record], overrides: dict[str, Any] | None = None) -> tuple[str, list[Record]]:
    """The tier a cell is read at and its runs: the paper's protocol first, then each reduced tier. A grid
    cell whose statistic needs the whole grid (mean, median, std) takes the first tier that covers it, else
    the first tier with runs; a best-LR cell (max, min) takes the first tier with runs, partial or not (its
    value is then a bound over the LRs run, and the cell says how many)."""
    found = []
    for name, tier in spec.tiers.items():
        if name != FULL and not in_tier(tier, row.labels):
            continue
        criteria = {**tier_overrides(spec, name), **(row.overrides if overrides is None else overrides)}
        runs = [r for r in records if reduced(r) == (name != FULL) and matches(r, criteria)]
        if runs:
            covered, points = grid_points(row, runs)
            if covered == points or row.reduction.over_grid in ("max", "min"):
                return name, runs
            found.append((name, runs))
    return found[0] if found else ("", [])


def train_time_budget(spec: Spec, row: Row, tier: str, records: list[Record]) -> float | None:
    """RMSGD's budget: the mean training time (``train_time_s``) of the reference optimizer's runs of this cell."""
    reference = {**row.overrides, **row.reduction.argument}
    _, runs = cell_runs(spec, row, records, reference) if tier else ("", [])
    times = [r["history"][-1]["train_time_s"] for r in runs
             if r["status"] == "finished" and r.get("history") and "train_time_s" in r["history"][-1]]
    return sum(times) / len(times) if times else None


def number(value: float | None, precision: int) -> str:
    if value is None:
        return MISSING
    return "NaN" if math.isnan(value) else f"{value:.{precision}f}"


def ours_text(cell: CellValue, row: Row, runs: list[Record]) -> str:
    """``mean ± std`` with marks; ``mean (k/n)`` for success-counted cells (the mean over the runs that did
    not diverge, k runs met their success rule, of n); ``NaN (0/n)`` when all diverged."""
    p, mark = row.reduction.precision, marks(runs)
    if row.reduction.success:
        value = number(cell.value, p) if cell.value is not None else "NaN"
        return f"{value} ({len(succeeded(runs))}/{len(runs)}){mark}" if runs else MISSING
    if cell.value is None:
        return f"NaN (0/{cell.diverged}){mark}" if cell.diverged else MISSING
    body = number(cell.value, p) + (f" ± {number(cell.std, p)}" if cell.std is not None and cell.n > 1 else "")
    counted = row.reduction.diverged == "count" and cell.diverged
    return body + mark + (f" ({cell.diverged} diverged)" if counted else "")


def paper_text(row: Row) -> str:
    text = MISSING if row.paper is None else number(row.paper, row.reduction.precision)
    if row.paper_std:
        text += f" ± {row.paper_std}"
    if "successes" in row.extras:
        text += f" ({row.extras['successes']}/{row.extras.get('runs', '?')})"
    return text


def succeeded(records: list[Record]) -> list[Record]:
    """The runs whose record says their success rule held (RL: PS Table 3's "(k/5)")."""
    return [r for r in records if (r.get("success") or {}).get("value")]


def row_cells(spec: Spec, row: Row, records: list[Record]) -> tuple[list[str], list[Record]]:
    tier, runs = cell_runs(spec, row, records)
    reduction = row.reduction
    budget = train_time_budget(spec, row, tier, records) if reduction.reducer == "at_train_time_of" else None
    cell = cell_value(runs, reduction, row.labels, budget_s=budget, clip_epochs=tier not in ("", FULL))
    ci = MISSING if cell.ci is None else f"[{number(cell.ci[0], reduction.precision)}, {number(cell.ci[1], reduction.precision)}]"
    delta = (number(cell.value - row.paper, reduction.precision)
             if cell.value is not None and row.paper is not None and not math.isnan(row.paper) else MISSING)
    covered, points = grid_points(row, runs)
    partial = f" ({covered} of {points} grid points)" if covered < points and cell.value is not None else ""
    cells = [*row.labels.values(), ours_text(cell, row, runs) + partial, ci, str(cell.n), paper_text(row), delta,
             "yes" if outside(row.paper, cell.ci) else ""]
    for name, extra in spec.extras.items():
        value = cell_value(runs, extra, row.labels, clip_epochs=tier not in ("", FULL)).value if runs else None
        cells += [number(value, extra.precision), row.extras.get(name, MISSING) or MISSING]
    return cells, runs


def notes(spec: Spec) -> list[str]:
    first = spec.rows[0].reduction if spec.rows else None
    lines = [f"Source: {spec.paper}" + (f"; transcribed in {spec.source}" if spec.source else "") + "."]
    if first:
        lines.append(f"Ours: `{first.metric}`, per run {describe(first.reduce)}"
                     + (f", {first.transform}" if first.transform else "")
                     + (f", {first.seeds} over seeds" if not first.grid else
                        f", {first.seeds} over seeds per `{first.grid}`, then {first.over_grid} over the grid")
                     + " (rows may differ: see the spec); ± sample std over seeds.")
    lines += ["95% CI: percentile bootstrap over seeds (2,000 resamples); 'paper outside CI': the paper's value lies "
              "outside it. Δ = ours − paper. '-' = no runs yet (`python -m bench.sweep "
              f"{spec.name} --dry-run` lists them).",
              f"{REDUCED_MARK} cells come from a reduced tier ({', '.join(n for n in spec.tiers if n != FULL) or 'none'}) "
              "when no run at the paper's protocol exists; a reduced run shorter than the epoch a cell reads is read "
              "at its last epoch.", MARKS_LEGEND]
    return lines + list(spec.notes)


def describe(reduce: Any) -> str:
    return reduce if isinstance(reduce, str) else ", ".join(f"{k} {v}" for k, v in reduce.items())


def paper_table(spec: Spec, records: list[Record]) -> Table:
    """The table of ``spec`` from the run records (only finished and diverged runs count)."""
    counted = [r for r in records if r["status"] in COUNTED]
    rows, runs = [], []
    for row in spec.rows:
        cells, members = row_cells(spec, row, counted)
        rows.append(cells)
        runs.append(sorted(r["run_id"] for r in members))
    columns = [*spec.keys, "ours", "95% CI", "n", "paper", "Δ", "paper outside CI"]
    for name in spec.extras:
        columns += [f"{name} (ours)", f"{name} (paper)"]
    return Table(spec.name, spec.title, columns, rows, notes(spec), runs)
