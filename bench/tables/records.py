"""Run records as table inputs: cell grouping, matching and the marks a cell carries."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.identity import cell_hash, get_dotted

Record = dict[str, Any]
# flag -> (mark, meaning); a cell carries the mark of every flag one of its runs has.
FLAGS = {
    "reduced": ("†", "reduced protocol (not the paper's setting: fewer epochs, a subset, a narrower model, ...)"),
    "lossy": ("‡", "lossy data copy (e.g. JPEG CIFAR-10)"),
    "synthetic": ("§", "generated or stand-in data (measures nothing about the real dataset)"),
    "deviation": ("¶", "a stated version deviation from the paper (e.g. gymnasium v5 environments for v2)"),
}
REDUCED_MARK, LOSSY_MARK = FLAGS["reduced"][0], FLAGS["lossy"][0]
MARKS_LEGEND = "; ".join(f"{mark} {meaning}" for mark, meaning in FLAGS.values())


def cell_key(record: Record) -> str:
    """Records that differ only in their seed share a cell."""
    return cell_hash(record["config"], (record.get("data") or {}).get("provenance", ""))


def matches(record: Record, criteria: dict[str, Any]) -> bool:
    """Whether every dotted field in ``criteria`` has the given value in ``record``."""
    return all(get_dotted(record, key) == value for key, value in criteria.items())


def flags(record: Record) -> list[str]:
    """Which of ``FLAGS`` a run has (its table cells and its report page carry them)."""
    data = record.get("data") or {}
    provenance = str(data.get("provenance", ""))
    synthetic = ((data.get("source") or {}).get("kind") == "generated" or "synthetic" in provenance
                 or "stand-in" in provenance)
    on = {"reduced": bool((record.get("protocol") or {}).get("reduced")), "lossy": bool(data.get("lossy")),
          "synthetic": synthetic, "deviation": bool(data.get("deviation"))}
    return [name for name in FLAGS if on[name]]


def marks(records: Iterable[Record]) -> str:
    """The marks a cell built from ``records`` must carry."""
    present = {flag for record in records for flag in flags(record)}
    return "".join(mark for name, (mark, _) in FLAGS.items() if name in present)


def metric_at(record: Record, metric: str, epoch: int | None) -> float | None:
    """``metric`` at ``epoch`` (1-based; None: the last epoch), or None if the run did not get there."""
    rows = [row for row in record.get("history", []) if metric in row]
    if epoch is None:
        return rows[-1][metric] if rows else None
    return next((row[metric] for row in rows if row["epoch"] == epoch), None)
