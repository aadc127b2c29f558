"""Table builders: the all-runs summary and the spec-driven paper tables.

Each builder returns a ``Table``: a title, column names, rows of strings, and notes, written as
Markdown, CSV and LaTeX (booktabs).
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.tables.cells import Cell, fmt
from bench.tables.records import MARKS_LEGEND, cell_key, marks, metric_at

COUNTED = ("finished", "diverged")


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    runs: list[list[str]] = field(default_factory=list)  # the run ids behind each row (the report links them)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + [f"{note}  " for note in self.notes]) + "\n"

    def latex(self) -> str:
        """A booktabs ``table`` environment (``\\usepackage{booktabs}``), notes as a footnote paragraph."""
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(self.title)}}}",
                 rf"\label{{tab:{self.name}}}", r"\begin{tabular}{" + "l" * len(self.columns) + "}", r"\toprule",
                 " & ".join(latex_escape(c) for c in self.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_escape(cell) for cell in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.notes:
            lines += [r"\par\footnotesize " + r" \\ ".join(latex_escape(note) for note in self.notes)]
        return "\n".join(lines + [r"\end{table}", ""])

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.md").write_text(self.markdown())
        (folder / f"{self.name}.tex").write_text(self.latex())
        with open(folder / f"{self.name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.columns)
            writer.writerows(self.rows)


LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
         "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "†": r"$^\dagger$",
         "‡": r"$^\ddagger$", "§": r"\S{}", "¶": r"\P{}", "Δ": r"$\Delta$", "−": "-", "↑": r"$\uparrow$",
         "↓": r"$\downarrow$", "·": r"$\cdot$", "β": r"$\beta$", "ρ": r"$\rho$", "×": r"$\times$",
         "≤": r"$\leq$", "≥": r"$\geq$", "–": "--", "—": "---", "…": r"\ldots{}"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and the tables' symbols as math."""
    return "".join(LATEX.get(char, char) for char in str(text))


def _cell(records: list[dict[str, Any]], metric: str, epoch: int | None) -> Cell:
    values = [v for r in records if r["status"] == "finished" and (v := metric_at(r, metric, epoch)) is not None]
    return Cell(values, diverged=sum(r["status"] == "diverged" for r in records),
                failed=sum(r["status"] == "failed" for r in records), marks=marks(records))


def optim_label(record: dict[str, Any]) -> str:
    """The run's optimizer, and the roles that another optimizer drove: ``ps_dasgd (entropy: adam)``."""
    others = [f"{role}: {r['optim']}" for role, r in (record.get("optimizers") or {}).items() if r["optim"] != record["optim"]]
    return f"{record['optim']} ({', '.join(others)})" if others else record["optim"]


def summary(records: list[dict[str, Any]]) -> Table:
    """One row per cell (same config but the seed): each workload's primary metric over seeds."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[cell_key(record)].append(record)
    rows, runs = [], []
    for group in groups.values():
        first = group[0]
        metric, mode = first["primary"]["metric"], first["primary"]["mode"]
        counted = [r for r in group if r["status"] in COUNTED]
        cell = _cell(counted, metric, None)
        best = Cell([r["best"]["value"] for r in counted if r["status"] == "finished" and r.get("best")])
        rows.append([
            first["experiment"], first["workload"], first["dataset"], first["model"], optim_label(first),
            first["config"]["schedule"]["name"], f"{first['history'][-1]['epoch'] if first.get('history') else 0}/"
            f"{first['config']['trainer']['epochs']}", "reduced" if first["protocol"]["reduced"] else "full",
            (first.get("data") or {}).get("provenance", "?"), f"{metric} {'↑' if mode == 'max' else '↓'}",
            cell.text(), fmt(best.mean), str(cell.n), str(cell.diverged), str(sum(r["status"] == "failed" for r in group)),
        ])
        runs.append(sorted(r["run_id"] for r in group))
    rows, runs = map(list, zip(*sorted(zip(rows, runs)))) if rows else ([], [])
    return Table("summary", "All runs: each workload's primary metric at the last evaluation, mean ± std over seeds",
                 ["experiment", "workload", "dataset", "model", "optim", "schedule", "epochs", "protocol", "data",
                  "metric", "final", "best (mean)", "n", "diverged", "failed"], rows,
                 [MARKS_LEGEND, "↑ higher is better, ↓ lower is better; best: the best evaluation of each run."], runs)


