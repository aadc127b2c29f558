"""The epoch loop's GPU-path settings (issue 17): ``trainer.amp`` (bf16 autocast), and the two optional
ones, ``trainer.channels_last`` and ``trainer.compile``, which run on CPU too and are off by default.

- ``trainer.amp`` (on by default; presets whose paper trained in fp32 turn it off): forward passes
  under ``torch.autocast(dtype=torch.bfloat16)`` on CUDA only (``autocast_args``). On CPU it is
  always off: CPU bf16 autocast is slow and no paper ran it. The record's ``precision`` says which
  arithmetic a run really used (``precision``), whatever ``trainer.amp`` said.

- ``trainer.channels_last``: the model's 4-D parameters and buffers, and every 4-D input batch, in
  ``torch.channels_last`` (NHWC) memory format, the layout cuDNN's tensor-core convolutions want
  (PyTorch tutorial "Channels Last Memory Format"). The tensors hold the same values; only the
  convolution kernels, and so their rounding, change. The model is converted once, before its
  optimizers are built (``prepare``), so that no optimizer holds a tensor the conversion replaced;
  the loop converts each batch (``to_channels_last``). Only for workloads whose batches are image
  tensors (``Workload.gpu_options``); refused elsewhere (``check``).
- ``trainer.compile``: forward passes of training and evaluation go through
  ``torch.compile(model)`` (``true``: its default mode, or one of ``COMPILE_MODES``); the optimizer
  step is not compiled. The compiled wrapper shares the model's parameters, and the workload keeps
  the original module: checkpoints, optimizers, the AdaS/RMSGD metric pass and every walk of
  ``model.modules()``/``named_parameters()`` see the original names (no ``_orig_mod.`` prefix).

Both are in the run's config, hence in its record and identity, and both are ``LATER_OPTIONS``
(``bench.identity``): off, they leave a run id as it was; on, they are protocol deviations, as bf16
autocast is where a preset says fp32 (they change rounding, not the algorithm).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.errors import BenchError

# torch.compile's modes besides its default (``trainer.compile=true``).
COMPILE_MODES = ("reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Each setting, and what it applies to (the error when a workload has none).
KEYS = {"channels_last": "4-D image batches in the shared epoch loop (bench.trainer)",
        "compile": "a model trained by the shared epoch loop (bench.trainer)"}


def autocast_args(amp: bool, device: torch.device) -> dict[str, Any]:
    """``torch.autocast``'s arguments for the epoch loop: bf16 when ``amp`` and the device is CUDA, else off."""
    return {"device_type": device.type, "dtype": torch.bfloat16, "enabled": bool(amp) and device.type == "cuda"}


def precision(trainer: dict[str, Any], device: torch.device, workload: Any) -> str:
    """The record's ``precision``: "bf16-autocast" or "fp32". Only the shared epoch loop, the loop of
    the workloads that take ``trainer.compile``, autocasts (SAC trains in Stable-Baselines3's, in fp32)."""
    shared_loop = "compile" in workload.gpu_options
    return "bf16-autocast" if shared_loop and autocast_args(trainer.get("amp", False), device)["enabled"] else "fp32"


def check(cfg: dict[str, Any], workload: Any) -> None:
    """One ``BenchError`` when a setting is on that the workload's loop does not honour
    (``Workload.gpu_options``)."""
    trainer = cfg.get("trainer") or {}
    for key, applies_to in KEYS.items():
        if trainer.get(key) and key not in workload.gpu_options:
            raise BenchError(f"trainer.{key} applies to {applies_to}, which the {workload.name} workload "
                             f"does not have; pass trainer.{key}=false")


def prepare(workload: Any, trainer: dict[str, Any]) -> None:
    """Convert the workload's modules in place for ``trainer.channels_last``. Call it before the
    optimizers are built: parameters keep their identity, but their tensors are replaced."""
    if trainer.get("channels_last"):
        for module in workload.role_modules().values():
            module.to(memory_format=torch.channels_last)


def to_channels_last(batch: Any) -> Any:
    """``batch`` with every 4-D tensor in it (a tensor, or a tuple or list of them) in channels_last."""
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_channels_last(item) for item in batch)
    return batch


def compiled(model: nn.Module, setting: bool | str) -> nn.Module:
    """The module forward passes go through: ``torch.compile(model)`` in the mode ``setting`` names
    (``true``: the default mode), or ``model`` itself when ``setting`` is false."""
    if not setting:
        return model
    return torch.compile(model, mode=None if setting is True else setting)
