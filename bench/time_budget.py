"""A wall-clock budget on training time, as an option of the epoch loop (``trainer.time_budget_s``).

RMSGD Tables 1a and 1b (notes/rmsgd.md §2.1) give every optimizer the wall-clock time that SGD needs
for 250 epochs on the same hardware (SAM, two passes per step, then reaches about 130 epochs). Here:
a run stops at the end of the first epoch whose cumulative training time reaches the budget. Training
time is the ``train`` phase of ``bench.timing`` (steps, data loading, the optimizer's epoch-end work
such as RMSGD's EVBMF), never evaluation or checkpoints; it survives a resume (the checkpoint keeps
it), and every history row carries it as ``train_time_s``. The paper does not say whether its
"wall-clock time" counted evaluation; we count training only. Set the budget to the ``time.train_s``
of the SGD run of the same cell on the same hardware:

    trainer.time_budget_s=<seconds>      # null (the default): off

An epoch that ends the run carries ``time_budget`` in its history row (the budget, the training time
reached and the epochs reached), and the record says so at its top (``stopped_by_time_budget``,
``time_budget``; ``bench.records``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError

KEY = "time_budget"          # the history row of the epoch that used up the budget
TIME_KEY = "train_time_s"    # cumulative training time (seconds) in every history row


@dataclass(frozen=True)
class TimeBudget:
    """Stop once the cumulative training time reaches ``seconds``."""

    seconds: float

    def stop_event(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The event if the epoch of ``row`` (which carries ``train_time_s``) used up the budget, else None."""
        if row[TIME_KEY] < self.seconds:
            return None
        return {"budget_s": self.seconds, TIME_KEY: row[TIME_KEY], "epochs_reached": row["epoch"]}


def time_budget(cfg: dict[str, Any]) -> TimeBudget | None:
    """The budget ``trainer.time_budget_s`` asks for (None: off), or one ``BenchError`` naming the fix."""
    given = (cfg.get("trainer") or {}).get("time_budget_s")
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, (int, float)) or not 0 < given < float("inf"):
        raise BenchError(f"trainer.time_budget_s must be a positive number of seconds or null, got {given!r}; "
                         "pass trainer.time_budget_s=<time.train_s of the SGD run of the same cell> (or null)")
    return TimeBudget(float(given))


def budget_event(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``time_budget`` event that ended the run, if any (a resume then trains no further)."""
    return next((row[KEY] for row in history if KEY in row), None)
