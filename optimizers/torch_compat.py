"""What every optimizer here needs to behave like a ``torch.optim`` optimizer (issue 11, section A).

* ``KeepsAttributes``: ``torch.optim.Optimizer.__getstate__`` keeps only ``defaults``, ``state`` and
  ``param_groups``, so ``copy.deepcopy``/``pickle`` silently drop every attribute a subclass sets in
  ``__init__`` (per-layer LRs, a base optimizer, an averager, counters) and the copy crashes on
  ``step()``. Mixed in first, it keeps the whole instance dictionary.
* ``check_hparams``: the range checks PyTorch's own optimizers make at construction, for the
  packaged optimizers that skip some of them (a ``ValueError`` the factory reports as one line).
* ``check_one_lr``: methods with one shared distance estimate d (D-Adaptation, Prodigy, PS-DA-SGD)
  only support groups that share the learning rate or have lr 0; say so at construction instead of
  at the first ``step()``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NON_NEGATIVE = ("lr", "weight_decay", "eps", "momentum", "init_step_size", "scale_eps", "final_lr", "delta",
                "wd_ratio", "reps_rel", "averager_gamma", "d_coef")
POSITIVE = ("d0",)
UNIT_INTERVAL = ("beta2", "beta3")   # in [0, 1)


class KeepsAttributes:
    """Mixin (before ``torch.optim.Optimizer`` in the bases): deepcopy and pickle keep every attribute."""

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_hparams(**values: Any) -> None:
    """Raise ``ValueError`` for a negative lr/weight decay/eps/..., a non-positive d0 or betas
    outside [0, 1); ``None`` values (package defaults) are skipped."""
    for key, value in values.items():
        if value is None:
            continue
        if key in NON_NEGATIVE and not value >= 0:
            raise ValueError(f"{key} must be >= 0, got {value}")
        if key in POSITIVE and not value > 0:
            raise ValueError(f"{key} must be > 0, got {value}")
        if key in UNIT_INTERVAL and not 0 <= value < 1:
            raise ValueError(f"{key} must lie in [0, 1), got {value}")
        if key == "betas" and not all(0 <= beta < 1 for beta in value):
            raise ValueError(f"betas must lie in [0, 1), got {tuple(value)}")


def check_one_lr(param_groups: Iterable[dict[str, Any]], method: str) -> None:
    """``ValueError`` unless every group has the same lr (or lr 0, a frozen group)."""
    lrs = {group["lr"] for group in param_groups} - {0.0}
    if len(lrs) > 1:
        raise ValueError(f"{method} shares one step-size estimate across parameter groups: give every group the "
                         f"same lr (or 0 to freeze it), got {sorted(lrs)}")
