"""The results store: one immutable JSON record per run under ``<results_dir>/runs/``.

Record schema (``schema: 1``)::

    run_id        "<experiment>-<optim>-seed<seed>-<hash12>"; the hash covers the resolved config
                  minus volatile keys (paths, logging, force) plus the data provenance tag
    config_hash   the full 64-hex hash behind run_id
    status        "finished" | "diverged" | "failed"
    experiment, optim, model, dataset, seed     copies of the cell keys, for quick filtering
    config        the fully resolved config
    protocol      {name, reduced, deviations: {key: [reference, actual]}, note}
    data          provenance of the prepared data (tag, source, sha256, lossy, sizes, subsets)
    git           {commit, dirty};  packages {name: version};  hardware {...}
    history       one entry per epoch: lr (per param group), train_loss, train_acc1, test_loss,
                  test_acc1, test_acc5, epoch_time_s, and optim/schedule extras
    final         the last epoch's metrics;  best_test_acc1
    wall_time_s, started_at, finished_at, resumed_at_epochs, error (for failed runs)

``finished`` and ``diverged`` records are final: a relaunch of the same config skips them unless
forced. A ``failed`` record is replaced when the run is retried.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.errors import BenchError

SCHEMA_VERSION = 1
FINAL_STATUSES = ("finished", "diverged")


class ResultsStore:
    """Reads and atomically writes run records below ``root/runs``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    def check_writable(self) -> None:
        """Fail early, with the fix, if records could not be written."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            probe = self.runs / f".write-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise BenchError(
                f"results directory {self.root} is not writable ({exc.strerror}); pass results_dir=<writable dir>"
            ) from exc

    def path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def load(self, run_id: str) -> dict[str, Any] | None:
        path = self.path(run_id)
        return json.loads(path.read_text()) if path.is_file() else None

    def is_final(self, run_id: str) -> bool:
        record = self.load(run_id)
        return record is not None and record.get("status") in FINAL_STATUSES

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` atomically (temporary file + rename in the same directory)."""
        path = self.path(record["run_id"])
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"schema": SCHEMA_VERSION, **record}, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)
        return path

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.runs.glob("*.json")):
            yield json.loads(path.read_text())
