"""Supervised image classification: the workload of all five papers' main tables.

Cross-entropy on ``dataset`` with ``model``; reports loss and top-1/top-5 accuracy (%) on the
training batches and the test set. Primary metric: ``test_acc1`` (higher is better).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.data.build import build_loaders
from bench.data.cache import PreparedDataset
from bench.data.prepare import resolve
from bench.data.stand_in import stand_in
from bench.errors import BenchError
from bench.workloads.base import Metric
from bench.workloads.batch import BatchWorkload, Evaluator, MeanEvaluator
from models import create_model


def topk_correct(logits: Tensor, targets: Tensor, ks: tuple[int, ...]) -> dict[str, Tensor]:
    """Sums over the batch of 100 * [target among the top k], for each k (``acc<k>``)."""
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top == targets[:, None]
    return {f"acc{k}": 100.0 * hits[:, :min(k, k_max)].any(dim=1).sum() for k in ks}


def find_data(ds: dict[str, Any], data_root: str) -> PreparedDataset:
    """The prepared copy of ``dataset``; with ``dataset.stand_in``, random images when there is none."""
    try:
        return resolve(ds["name"], Path(ds.get("root") or data_root), ds.get("source"), ds.get("download", True),
                       ds.get("allow_incomplete", False))
    except BenchError:
        if not ds.get("stand_in") or ds.get("source"):
            raise
    return stand_in(ds["name"], ds["num_classes"], ds["channels"], ds["image_size"])


def data_record(meta: dict[str, Any], used: dict[str, Any], ds: dict[str, Any]) -> dict[str, Any]:
    """The record's ``data`` block: provenance of the copy, what was used, and the pipeline."""
    keep = ("dataset", "provenance", "complete", "source", "lossy", "description", "sizes", "prepared_at")
    record = {k: meta.get(k) for k in keep}
    if "jpeg_filled" in meta:
        record["jpeg_filled_count"] = len(meta["jpeg_filled"])
    pipeline = {"augment": ds["augment"], "eval_augment": ds.get("eval_augment"),
                "normalization": {"name": ds.get("norm"), "mean": ds["mean"], "std": ds["std"]}}
    return {**record, **used, **pipeline}


class Classification(BatchWorkload):
    """Cross-entropy classification of ``dataset`` by ``model``."""

    name = "classification"
    primary = Metric("test_acc1", "max")

    @classmethod
    def locate_data(cls, cfg: dict[str, Any]) -> tuple[str, PreparedDataset]:
        data = find_data(cfg["dataset"], cfg["data_root"])
        return data.tag, data

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: PreparedDataset | None = None) -> None:
        super().__init__(cfg, device)
        ds = cfg["dataset"]
        self.data = data or find_data(ds, cfg["data_root"])
        self.train_loader, self.test_loader, self.used = build_loaders(cfg, self.data, device)
        options = {k: v for k, v in cfg["model"].items() if k != "name"}
        self.model = create_model(cfg["model"]["name"], num_classes=ds["num_classes"], in_channels=ds["channels"],
                                  **options).to(device)
        self._check_fit()

    def _check_fit(self) -> None:
        """The data has ``dataset.num_classes`` classes, and two test images go through the model (eval
        mode, no state changes) to that many outputs; else one error line, before the first step."""
        model, ds = self.cfg["model"]["name"], self.cfg["dataset"]
        classes = len(self.data.meta.get("classes") or []) or ds["num_classes"]
        if classes != ds["num_classes"]:
            raise BenchError(f"dataset.num_classes is {ds['num_classes']} but {self.data.tag} has {classes} classes; "
                             f"pass dataset.num_classes={classes}")
        inputs, _ = next(iter(self.test_loader.epoch(0)))
        shape = "x".join(map(str, inputs.shape[1:]))
        self.model.eval()
        try:
            with torch.no_grad():
                classes = self.model(inputs[:2]).shape[-1]
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise BenchError(f"model {model} does not fit dataset {ds['name']} ({shape} images): {first}; "
                             f"pick a model=<name> made for {ds['name']}") from exc
        if classes != ds["num_classes"]:
            raise BenchError(f"model {model} gives {classes} outputs for the {ds['num_classes']} classes of "
                             f"{ds['name']}; pick a model=<name> made for {ds['name']}")

    def data_record(self) -> dict[str, Any]:
        return data_record(self.data.meta, self.used, self.cfg["dataset"])

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits, targets)
        sums = topk_correct(logits.detach(), targets, (1, 5))
        sums["loss"] = loss.detach().float() * len(targets)
        return loss, sums

    def evaluator(self) -> Evaluator:
        return MeanEvaluator(self._eval_sums)

    @staticmethod
    def _eval_sums(model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        logits = model(inputs)
        sums = topk_correct(logits, targets, (1, 5))
        sums["loss"] = nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        return sums
