"""The AdaS reference code's early stop on the training loss, as an option of the epoch loop.

``mahdihosseini/AdaS`` (``early_stop.py``, ``train.py``; notes/adas.md §1.7, reference-implementations.md)
stops a run when ``patience`` consecutive epochs fail to improve the best training loss by more than
``threshold``: after each epoch (its test evaluation included), ``loss - best < -threshold`` makes
``loss`` the new best and resets the count, anything else counts one epoch; the run ends at the epoch
where the count reaches ``patience``. Its default config has ``patience: 10, threshold: 1e-3`` and the
rule on (``early_stop_threshold: -1`` switches it off). The AdaS paper says every model trained
for 250 epochs, so here it is off unless asked for (``trainer.early_stop: null``):

    trainer.early_stop={metric:train_loss,patience:10,threshold:1.0e-3}

Two differences from the reference, both named: the reference's train loss is the mean of the batch
losses, ours the per-example mean (equal when every batch is full); one later copy of the file (in
``mahdihosseini/RMSGD``) compares ``loss - threshold < best`` instead, which keeps resetting on any
loss not worse by ``threshold``; that reading is not offered.

The rule is a function of the history (``stop_event``), so a resumed run decides as an
uninterrupted one. An epoch that ends the run carries ``early_stop`` in its history row, and the
record says so at its top (``stopped_early``, ``bench.records``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.errors import BenchError

KEY = "early_stop"   # the history row of the epoch that ended a run early


@dataclass(frozen=True)
class EarlyStop:
    """Stop after ``patience`` epochs without an improvement of ``metric`` (lower is better) by more
    than ``threshold``."""

    metric: str = "train_loss"
    patience: int = 10
    threshold: float = 1e-3

    def stop_event(self, history: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The rule replayed over ``history``: the event if it fires at the last row, else None."""
        best, best_epoch, wait = float("inf"), None, 0
        for row in history:
            value = row[self.metric]
            if value - best < -self.threshold:
                best, best_epoch, wait = value, row["epoch"], 0
            else:
                wait += 1
        if wait < self.patience or not history:
            return None
        return {"epoch": history[-1]["epoch"], "best": best, "best_epoch": best_epoch,
                "epochs_without_improvement": wait, **asdict(self)}


def stopped_early(history: list[dict[str, Any]]) -> bool:
    """Whether the last epoch of ``history`` ended the run early (a resume then trains no further)."""
    return bool(history) and KEY in history[-1]


def early_stop(cfg: dict[str, Any], workload: Any) -> EarlyStop | None:
    """The rule ``trainer.early_stop`` asks for (None: off), or one ``BenchError`` naming the fix."""
    given = (cfg.get("trainer") or {}).get("early_stop")
    if given is None:
        return None
    allowed = getattr(workload, "early_stop_metrics", ())
    if not allowed:
        raise BenchError(f"the {workload.name} workload's loop cannot stop early; pass trainer.early_stop=null")
    if not isinstance(given, dict) or set(given) - {"metric", "patience", "threshold"}:
        raise BenchError(f"trainer.early_stop must be null or {{metric, patience, threshold}}, got {given!r}; "
                         "pass trainer.early_stop={metric:train_loss,patience:10,threshold:1.0e-3}")
    rule = EarlyStop(**given)
    if rule.metric not in allowed:
        raise BenchError(f"trainer.early_stop.metric must be one of {', '.join(allowed)} for the {workload.name} "
                         f"workload, got {rule.metric!r}; pass trainer.early_stop.metric={allowed[0]}")
    return rule
