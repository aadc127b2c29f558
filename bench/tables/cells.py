"""Aggregating the runs of one table cell: mean +- std over seeds, n, and divergence counts."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass
class Cell:
    values: list[float]
    diverged: int = 0
    failed: int = 0
    marks: str = ""

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n-1); 0 for a single run."""
        return statistics.stdev(self.values) if self.n > 1 else (0.0 if self.values else None)

    def text(self) -> str:
        """``mean ± std`` with its marks, ``NaN (k/n)`` when runs diverged, ``-`` when empty."""
        if not self.values:
            return f"NaN (0/{self.diverged}){self.marks}" if self.diverged else "-"
        body = f"{self.mean:.2f} ± {self.std:.2f}{self.marks}"
        return body + (f" ({self.diverged} diverged)" if self.diverged else "")


def fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"
