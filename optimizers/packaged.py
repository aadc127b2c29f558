"""Baselines taken unchanged from their authors' PyPI packages (pinned in requirements/constraints.txt).

- ``AdaBound`` (Luo et al., ICLR 2019): ``adabound==0.0.5``, the authors' package. It still works with
  torch 2.14 but uses the deprecated ``add_(Number, Tensor)`` overload (a UserWarning per step).
- ``AdaBelief`` (Zhuang et al., NeurIPS 2020): ``adabelief-pytorch==0.2.1``, the authors' package.
  Its defaults changed in 0.1.0 (eps 1e-16, decoupled weight decay, rectification); each config sets
  them explicitly. ``print_change_log=False`` silences its banner.
- ``SGDP`` and ``AdamP`` (Heo et al., ICLR 2021): ``adamp==0.3.0``, the authors' package.

Each is the package's class, its arithmetic unchanged, plus what ``torch.optim`` optimizers do and
the packages skip (``optimizers.torch_compat``): range checks of the hyper-parameters at
construction (``ValueError``; AdamP/SGDP check none, AdaBound/AdaBelief miss negative weight decay),
deepcopy/pickle keeping every attribute, and for AdaBound a group added by ``add_param_group``
gets its base LR (the package keeps ``base_lrs`` from construction only, so it never updated an
added group). AdamP/SGDP flatten a weight for their cosine similarity with ``Tensor.view``
(``adamp.py``/``sgdp.py`` ``_channel_view``, ``_layer_view``), which a ``channels_last`` conv weight
cannot take; ``reshape`` gives the same values (it copies only then; nothing is written through it).
"""
from __future__ import annotations

from typing import Any

import adabelief_pytorch
import adabound
import adamp

from optimizers.torch_compat import KeepsAttributes, check_hparams


class _Checked(KeepsAttributes):
    """Validates the hyper-parameters before the package's constructor runs."""

    def __init__(self, params: Any, *args: Any, **hparams: Any) -> None:
        check_hparams(**hparams)
        super().__init__(params, *args, **hparams)


class AdaBelief(_Checked, adabelief_pytorch.AdaBelief):
    """``adabelief_pytorch.AdaBelief`` 0.2.1."""


class AdaBound(_Checked, adabound.AdaBound):
    """``adabound.AdaBound`` 0.0.5; ``add_param_group`` also records the new group's base LR."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        if hasattr(self, "base_lrs"):   # not yet during the package's own constructor
            self.base_lrs.append(self.param_groups[-1]["lr"])


class _ReshapeViews:
    """The adamp package's flattening views as ``reshape`` (same values; channels_last weights too)."""

    def _channel_view(self, x: Any) -> Any:
        return x.reshape(x.size(0), -1)

    def _layer_view(self, x: Any) -> Any:
        return x.reshape(1, -1)


class AdamP(_Checked, _ReshapeViews, adamp.AdamP):
    """``adamp.AdamP`` 0.3.0."""


class SGDP(_Checked, _ReshapeViews, adamp.SGDP):
    """``adamp.SGDP`` 0.3.0."""


__all__ = ["AdaBelief", "AdaBound", "AdamP", "SGDP"]
