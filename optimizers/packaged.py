"""Baselines taken unchanged from their authors' PyPI packages (pinned in requirements/constraints.txt).

- ``AdaBound`` (Luo et al., ICLR 2019): ``adabound==0.0.5``, the authors' package. It still works with
  torch 2.14 but uses the deprecated ``add_(Number, Tensor)`` overload (a UserWarning per step).
- ``AdaBelief`` (Zhuang et al., NeurIPS 2020): ``adabelief-pytorch==0.2.1``, the authors' package.
  Its defaults changed in 0.1.0 (eps 1e-16, decoupled weight decay, rectification); each config sets
  them explicitly. ``print_change_log=False`` silences its banner.
- ``SGDP`` and ``AdamP`` (Heo et al., ICLR 2021): ``adamp==0.3.0``, the authors' package.
"""
from __future__ import annotations

from adabelief_pytorch import AdaBelief
from adabound import AdaBound
from adamp import AdamP, SGDP

__all__ = ["AdaBelief", "AdaBound", "AdamP", "SGDP"]
