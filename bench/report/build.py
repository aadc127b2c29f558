"""The report's pages from the results store: what each page shows, then the HTML (Jinja2 templates).

Pages (all static, opened from disk): ``index.html`` (every paper table that ``bench.tables``
builds, ours beside the paper, with the missing cells and the command that fills them),
``tables/<name>.html`` (one table with its figures and runs), ``runs/<run_id>.html`` (one run:
config, provenance, hardware, time, curves of every logged metric) and ``runs.html`` (every run).
A paper table is any table with a ``paper`` column; the tables are discovered at build time.
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench.errors import BenchError
from bench.records import FLAGS, flags
from bench.report import plots
from bench.report.site import Site, check_target
from bench.tables.__main__ import build as build_tables
from bench.tables.build import Table

Record = dict[str, Any]
TEMPLATES = Path(__file__).parent / "templates"
MISSING = "-"
MAX_ROW_LINKS = 8
TIME_KEY = re.compile(r"time|_s$|_per_s$")
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def page_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", run_id) + ".html"


def fill_commands(table: str) -> list[str]:
    """The commands that run a table's missing cells (``bench.sweep``, when this checkout has it)."""
    if importlib.util.find_spec("bench.sweep") is None:
        return []
    return [f"python -m bench.sweep {table} --dry-run   # list the missing cells and their commands",
            f"python -m bench.sweep {table}             # run them (add --tier cpu for the reduced CPU variant)",
            "python -m bench.report                     # then rebuild the tables and this report"]


def flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, text)`` pairs of a nested dict, for key/value tables."""
    if isinstance(value, dict) and value:
        return [pair for k, v in value.items() for pair in flat(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix, value if isinstance(value, str) else json.dumps(value, default=str))]


@dataclass
class RowView:
    cells: list[str]
    runs: list[Record]
    missing: bool
    flags: list[str]


@dataclass
class TableView:
    """One table as the pages show it."""
    table: Table
    rows: list[RowView]
    records: list[Record]
    commands: list[str] = field(default_factory=list)

    @property
    def paper(self) -> bool:
        return "paper" in self.table.columns

    @property
    def missing(self) -> list[str]:
        return [" · ".join(row.cells[:self.key_count]) for row in self.rows if row.missing]

    @property
    def key_count(self) -> int:
        columns = self.table.columns
        return columns.index("ours") if "ours" in columns else len(columns)

    @property
    def flag_counts(self) -> dict[str, int]:
        return dict(Counter(flag for record in self.records for flag in flags(record)))

    def label(self, row: RowView) -> str:
        return " · ".join(row.cells[:self.key_count])


def table_view(table: Table, by_id: dict[str, Record]) -> TableView:
    ours = table.columns.index("ours") if "ours" in table.columns else None
    rows, seen = [], {}
    for i, cells in enumerate(table.rows):
        runs = [by_id[run_id] for run_id in (table.runs[i] if i < len(table.runs) else []) if run_id in by_id]
        seen.update((r["run_id"], r) for r in runs)
        rows.append(RowView(cells, runs, ours is not None and cells[ours].strip() == MISSING,
                            sorted({flag for r in runs for flag in flags(r)})))
    view = TableView(table, rows, sorted(seen.values(), key=lambda r: r["run_id"]))
    view.commands = fill_commands(table.name) if view.paper and view.missing else []
    return view


def table_figures(view: TableView) -> list[plots.Figure]:
    """Ours beside the paper, then the runs' curves grouped by the cells they fill."""
    columns, figures = view.table.columns, []
    if "ours" in columns and "paper" in columns:
        ci = next((c for c in columns if "CI" in c), None)
        pick = lambda name: [row.cells[columns.index(name)] for row in view.rows]  # noqa: E731
        fig = plots.comparison([view.label(row) for row in view.rows], pick("ours"), pick("paper"),
                               pick(ci) if ci else None)
        figures += [fig] if fig else []
    groups: dict[tuple[str, ...], list[RowView]] = {}
    for row in view.rows:
        if row.runs:
            groups.setdefault(tuple(r["run_id"] for r in row.runs), []).append(row)
    labelled = []
    for members in groups.values():
        keys = [j for j in range(view.key_count) if len({row.cells[j] for row in members}) == 1]
        labelled.append((" · ".join(members[0].cells[j] for j in keys) or view.label(members[0]), members[0].runs))
    return figures + plots.group_curves(labelled) + plots.estimated_lr_figures(view.records)


def time_items(record: Record) -> list[tuple[str, str]]:
    """Where the time went: every top-level time field, and per-epoch times summed over the history."""
    items = [pair for key, value in record.items() if TIME_KEY.search(key) and key not in ("last",)
             for pair in flat(value, key)]
    items += flat(record.get("resumed_at_epochs"), "resumed_at_epochs") if record.get("resumed_at_epochs") else []
    history = record.get("history") or []
    for key in sorted({k for row in history for k in row if k.endswith("time_s")}):
        values = [v for row in history if isinstance(v := row.get(key), (int, float))]
        items.append((f"sum of history {key}", f"{sum(values):.1f} over {len(values)} evaluations"))
    return items


def run_context(record: Record) -> dict[str, Any]:
    """What a run's page shows."""
    return {
        "record": record, "flags": flags(record), "final": record.get("final") or {}, "best": record.get("best") or {},
        "protocol": flat({k: v for k, v in (record.get("protocol") or {}).items() if k != "deviations"}),
        "deviations": (record.get("protocol") or {}).get("deviations") or {},
        "optimizers": record.get("optimizers") or {}, "data": flat(record.get("data") or {}),
        "git": flat(record.get("git") or {}), "hardware": flat(record.get("hardware") or {}),
        "packages": flat(record.get("packages") or {}), "time": time_items(record),
        "success": record.get("success"), "error": record.get("error"),
        "config": yaml.dump(record.get("config") or {}, Dumper=DUMPER, sort_keys=False, width=120),
        "figures": plots.run_figures(record),
    }


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["page"] = page_name
    env.globals.update(FLAGS=FLAGS, MAX_ROW_LINKS=MAX_ROW_LINKS)
    return env


@dataclass
class Built:
    records: int
    tables: int
    pages: int
    changed: int
    removed: int


def build(results: Path, out: Path, specs: Path | None = None) -> Built:
    """Write the report of the store at ``results`` into the folder ``out`` (idempotent)."""
    records, tables = build_tables(results, specs)
    check_target(out)
    by_id = {r["run_id"]: r for r in records}
    views = [table_view(t, by_id) for t in tables]
    env, site = environment(), Site(out)
    statuses = dict(sorted(Counter(r["status"] for r in records).items()))
    common = {"results": str(results), "statuses": statuses, "count": len(records)}
    site.write("assets/plotly.min.js", plotly_js())
    site.write("assets/report.css", (TEMPLATES / "report.css").read_text())
    site.write("index.html", env.get_template("index.html").render(
        root="", views=views, paper=[v for v in views if v.paper], other=[v for v in views if not v.paper], **common))
    site.write("runs.html", env.get_template("runs.html").render(root="", records=records, flags=flags, **common))
    for view in views:
        site.write(f"tables/{view.table.name}.html", env.get_template("table.html").render(
            root="../", view=view, figures=table_figures(view), flags=flags, **common))
    for record in records:
        site.write(f"runs/{page_name(record['run_id'])}", env.get_template("run.html").render(
            root="../", **run_context(record), **common))
    removed = site.finish(("tables", "runs"))
    return Built(len(records), len(tables), len(site.written) - 3, site.changed, removed)


def plotly_js() -> bytes:
    """plotly.js as shipped inside the pinned ``plotly`` package (requirements/constraints.txt)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise BenchError("the report draws its figures with plotly.js from the plotly package, which is not "
                         "installed; run ./scripts/setup.sh (or pip install -r requirements/constraints.txt)")
    return (Path(spec.origin).parent / "package_data" / "plotly.min.js").read_bytes()
