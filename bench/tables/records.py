"""Run records as table inputs: loading, cell grouping, matching and marks."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.identity import cell_hash, get_dotted

REDUCED_MARK = "†"   # reduced protocol (subset, fewer epochs, narrower model, ...)
LOSSY_MARK = "‡"     # trained on a lossy copy of the data (e.g. cifar10-jpeg)
MARKS_LEGEND = f"{REDUCED_MARK} reduced protocol (not the paper's setting); {LOSSY_MARK} lossy data copy (JPEG CIFAR-10)"


def cell_key(record: dict[str, Any]) -> str:
    """Records that differ only in their seed share a cell."""
    return cell_hash(record["config"], (record.get("data") or {}).get("provenance", ""))


def matches(record: dict[str, Any], criteria: dict[str, Any]) -> bool:
    """Whether every dotted field in ``criteria`` has the given value in ``record``."""
    return all(get_dotted(record, key) == value for key, value in criteria.items())


def marks(records: Iterable[dict[str, Any]]) -> str:
    """The marks a cell built from ``records`` must carry."""
    records = list(records)
    out = ""
    if any((r.get("protocol") or {}).get("reduced") for r in records):
        out += REDUCED_MARK
    if any((r.get("data") or {}).get("lossy") for r in records):
        out += LOSSY_MARK
    return out


def metric_at(record: dict[str, Any], metric: str, epoch: int | None) -> float | None:
    """``metric`` at ``epoch`` (1-based; None: the last epoch), or None if the run did not get there."""
    rows = [row for row in record.get("history", []) if metric in row]
    if epoch is None:
        return rows[-1][metric] if rows else None
    return next((row[metric] for row in rows if row["epoch"] == epoch), None)
