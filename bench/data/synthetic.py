"""Synthetic workloads that need no preparation: the noisy quadratic model (AutoDrop Section 3).

A synthetic dataset is generated on the fly from (seed, epoch), like the image loaders, so a
resumed run sees the same samples. ``SYNTHETIC`` maps a dataset name to the builder of its
loaders; ``bench.run`` dispatches on it instead of resolving a prepared copy.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from bench.data.loader import epoch_seed
from bench.errors import BenchError
from models.nqm import nqm_curvature

NOISE = ("identity", "inverse_curvature")


class NoiseLoader:
    """Batches of NQM targets c ~ N(0, Sigma), Sigma = scale * (I or A^-1); targets are unused zeros."""

    def __init__(self, std: torch.Tensor, *, batch_size: int, steps: int, device: torch.device, seed: int,
                 zero: bool = False) -> None:
        self.std, self.batch_size, self.steps, self.seed, self.zero = std.to(device), batch_size, steps, seed, zero
        self.device = device

    def __len__(self) -> int:
        return self.steps

    @property
    def examples_per_epoch(self) -> int:
        return self.steps * self.batch_size

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        targets = torch.zeros(self.batch_size, dtype=torch.int64, device=self.device)
        for _ in range(self.steps):
            if self.zero:
                yield torch.zeros(self.batch_size, len(self.std), device=self.device), targets
            else:
                noise = torch.randn(self.batch_size, len(self.std), generator=generator).to(self.device)
                yield noise * self.std, targets


def nqm_loaders(cfg: dict[str, Any], device: torch.device) -> tuple[NoiseLoader, NoiseLoader, dict[str, Any]]:
    """Training batches of noisy targets; the "test set" is c = 0, i.e. the noiseless loss 0.5 x^T A x."""
    ds, trainer = cfg["dataset"], cfg["trainer"]
    if ds["noise"] not in NOISE:
        raise BenchError(f"dataset.noise must be one of {NOISE}, got {ds['noise']!r}")
    if cfg["model"].get("dim") != ds["dim"]:
        raise BenchError(f"model.dim ({cfg['model'].get('dim')}) must equal dataset.dim ({ds['dim']}); use model=nqm")
    variance = torch.full((ds["dim"],), float(ds["noise_scale"]))
    if ds["noise"] == "inverse_curvature":
        variance = variance / nqm_curvature(ds["dim"])
    train = NoiseLoader(variance.sqrt(), batch_size=trainer["batch_size"], steps=ds["steps_per_epoch"],
                        device=device, seed=cfg["seed"])
    test = NoiseLoader(variance.sqrt(), batch_size=1, steps=1, device=device, seed=0, zero=True)
    return train, test, {"train_examples": train.examples_per_epoch, "test_examples": 1}


SYNTHETIC: dict[str, Callable[..., tuple[Any, Any, dict[str, Any]]]] = {"nqm": nqm_loaders}


def synthetic_record(cfg: dict[str, Any], used: dict[str, Any]) -> dict[str, Any]:
    """The run record's ``data`` block for a generated dataset."""
    keys = ("dim", "noise", "noise_scale", "steps_per_epoch")
    return {"dataset": cfg["dataset"]["name"], "provenance": "synthetic", "source": {"kind": "generated"},
            "lossy": False, **{k: cfg["dataset"].get(k) for k in keys}, **used}
