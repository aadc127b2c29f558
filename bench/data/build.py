"""Build a run's train and test loaders from the ``dataset`` and ``trainer`` config groups.

``dataset.loader`` picks the path: ``fast`` (``TensorLoader``: the split on the device, batched
augmentation) or ``dataloader`` (``WorkerLoader``: torchvision transforms in ``dataset.workers``
processes). Datasets whose images stay on disk (ImageNet) need ``dataloader``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench.data import augment as augmentations
from bench.data import transforms
from bench.data.cache import FileSplit, PreparedDataset, Split
from bench.data.loader import EpochBatches, TensorLoader
from bench.data.workers import WorkerLoader
from bench.errors import BenchError

LOADERS = ("fast", "dataloader")


def subset_indices(n_total: int, n: int | None) -> np.ndarray:
    """The first ``n`` indices of a fixed permutation (seed 0): the same subset for every run."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(0).permutation(n_total)[:n])


def _take(split: Split | FileSplit, index: np.ndarray) -> Split | FileSplit:
    if isinstance(split, FileSplit):
        return FileSplit([split.files[i] for i in index], split.labels[index], split.root)
    return Split(np.asarray(split.images[index]), split.labels[index])


def _train_split(data: PreparedDataset, names: str) -> Split | FileSplit:
    """``train``, or several splits joined by ``+`` (STL-10 ``train+unlabeled``, for SimCLR)."""
    parts = names.split("+")
    missing = [p for p in parts if p not in data.splits]
    if missing:
        raise BenchError(f"{data.tag} has no split {missing[0]!r}; pick dataset.train_split from {sorted(data.splits)}")
    if len(parts) == 1:
        return data.splits[parts[0]]
    splits = [data.splits[p] for p in parts]
    if any(isinstance(s, FileSplit) for s in splits):
        raise BenchError("joined training splits need arrays; pass one split as dataset.train_split")
    return Split(np.concatenate([s.images for s in splits]), np.concatenate([s.labels for s in splits]))


def _options(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    options = dict(node)
    return options.pop("name"), options


def _fast_eval_is_identity(ds: dict[str, Any]) -> bool:
    name, options = _options(ds.get("eval_augment") or {"name": "none"})
    return name == "none" or (name == "resize_center_crop" and options["resize"] == options["crop"] == ds["image_size"])


def build_loaders(cfg: dict[str, Any], data: PreparedDataset, device: torch.device,
                  drop_last: bool = False) -> tuple[EpochBatches, EpochBatches, dict[str, Any]]:
    """Train and test loaders, and what was used (example counts, loader kind) for the run record;
    ``drop_last`` drops each epoch's incomplete last training batch."""
    ds, trainer = cfg["dataset"], cfg["trainer"]
    kind = ds.get("loader", "fast")
    if kind not in LOADERS:
        raise BenchError(f"dataset.loader must be one of {LOADERS}, got {kind!r}")
    train_split, test_split = _train_split(data, ds.get("train_split", "train")), data.splits["test"]
    train_idx = subset_indices(len(train_split.labels), trainer.get("train_subset"))
    test_idx = subset_indices(len(test_split.labels), trainer.get("test_subset"))
    train_split, test_split = _take(train_split, train_idx), _take(test_split, test_idx)
    name, options = _options(ds["augment"])
    common = dict(device=device, seed=cfg["seed"])
    if kind == "fast":
        if isinstance(train_split, FileSplit):
            raise BenchError(f"{ds['name']} keeps its images on disk; pass dataset.loader=dataloader")
        if not _fast_eval_is_identity(ds):
            raise BenchError(f"dataset.eval_augment {ds['eval_augment']} needs dataset.loader=dataloader")
        norm = dict(mean=ds["mean"], std=ds["std"])
        train = TensorLoader(train_split.images, train_split.labels, batch_size=trainer["batch_size"], **norm,
                             augment=augmentations.build(name, **options), shuffle=True, drop_last=drop_last, **common)
        test = TensorLoader(test_split.images, test_split.labels, batch_size=trainer["eval_batch_size"], **norm,
                            shuffle=False, **common)
    else:
        workers = int(ds.get("workers", 4))
        train_tf = transforms.train_transform(name, options, ds["image_size"], ds["mean"], ds["std"])
        eval_name, eval_options = _options(ds.get("eval_augment") or {"name": "none"})
        test_tf = transforms.eval_transform(eval_name, eval_options, ds["mean"], ds["std"])
        train = WorkerLoader(train_split, train_tf, batch_size=trainer["batch_size"], workers=workers, shuffle=True,
                             drop_last=drop_last, **common)
        test = WorkerLoader(test_split, test_tf, batch_size=trainer["eval_batch_size"], workers=workers,
                            shuffle=False, **common)
    used = {"train_examples": len(train_idx), "test_examples": len(test_idx), "loader": kind}
    return train, test, used
