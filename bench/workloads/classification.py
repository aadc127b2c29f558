"""Supervised image classification: the workload of all five papers' main tables.

Cross-entropy on ``dataset`` with ``model``; reports loss and top-1/top-5 accuracy (%) on the
training batches and the test set. Primary metric: ``test_acc1`` (higher is better).

Multi-label data (``dataset.multi_label``, ADP): binary cross-entropy with logits over the labels
(mean over labels, as ``nn.BCEWithLogitsLoss``); ``acc1`` is then the per-label accuracy at
probability 0.5 (logit 0), averaged over labels and images, and ``exact`` the share of images with
every label right. RMSGD Table 4 reports ADP "test accuracy" without defining it (notes/rmsgd.md,
contradiction 20); its ~93-94% fits the per-label reading. [decision]

Options (``workload.*``, absent in most presets): ``label_smoothing`` (cross-entropy's), ``auc`` (true: also
``test_auc``, the area under the test ROC curve in %, torchmetrics AUROC: binary on the class-1 logit
for two classes, as the RMSGD code's sklearn ``roc_curve`` for MHIST; the macro mean over labels for
multi-label data), and
``mixup`` (keyword arguments of ``timm.data.Mixup``: mixup/cutmix on each training batch, soft
targets with timm's label smoothing, loss ``timm.loss.SoftTargetCrossEntropy``; the DeiT recipe).
Mixed batches are drawn by the loader, so a closure (SAM, SLS) re-evaluates the same batch; the
training accuracies then score the dominant class of each soft target.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bench.data.build import build_loaders
from bench.data.cache import PreparedDataset
from bench.data.loader import EpochBatches
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


def multilabel_correct(logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
    """Sums over the batch of 100 * the share of labels predicted right at logit 0 (``acc1``) and of
    100 * [every label right] (``exact``); ``targets`` are multi-hot rows."""
    hits = (logits > 0) == targets.bool()
    return {"acc1": 100.0 * hits.float().mean(dim=1).sum(), "exact": 100.0 * hits.all(dim=1).sum()}


def auroc(num_classes: int, multi_label: bool) -> Any:
    """A torchmetrics AUROC (exact, no thresholds) for two classes or for ``num_classes`` labels (macro)."""
    from torchmetrics.classification import BinaryAUROC, MultilabelAUROC

    if multi_label:
        return MultilabelAUROC(num_labels=num_classes, average="macro")
    if num_classes != 2:
        raise BenchError(f"workload.auc needs two classes or multi-label data; dataset has {num_classes} classes")
    return BinaryAUROC()


class AUCEvaluator(MeanEvaluator):
    """``MeanEvaluator`` of ``sums(logits, targets)`` plus ``auc``: the area under the ROC curve (%) of
    the whole test set (one forward pass per batch feeds both)."""

    def __init__(self, sums: Callable[[Tensor, Tensor], dict[str, Tensor]], metric: Any, multi_label: bool) -> None:
        super().__init__(self._sums)
        self.logit_sums, self.metric, self.multi_label = sums, metric, multi_label

    def _sums(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        logits = model(inputs)
        scores = logits if self.multi_label else logits[:, 1]  # binary: the class-1 (SSA) output
        self.metric.update(scores.detach().float().cpu(), targets.detach().cpu())
        return self.logit_sums(logits, targets)

    def compute(self) -> dict[str, float]:
        return {**super().compute(), "auc": 100.0 * float(self.metric.compute())}


def find_data(ds: dict[str, Any], data_root: str) -> PreparedDataset:
    """The prepared copy of ``dataset``; with ``dataset.stand_in``, random images when there is none."""
    try:
        return resolve(ds["name"], Path(ds.get("root") or data_root), ds.get("source"), ds.get("download", True),
                       ds.get("allow_incomplete", False))
    except BenchError:
        if not ds.get("stand_in") or ds.get("source"):
            raise
    extra = tuple(split for split in ds.get("train_split", "train").split("+") if split not in ("train", "test"))
    return stand_in(ds["name"], ds["num_classes"], ds["channels"], ds["image_size"], extra_splits=extra,
                    multi_label=bool(ds.get("multi_label")))


def data_record(meta: dict[str, Any], used: dict[str, Any], ds: dict[str, Any]) -> dict[str, Any]:
    """The record's ``data`` block: provenance of the copy, what was used, and the pipeline."""
    keep = ("dataset", "provenance", "complete", "source", "lossy", "description", "sizes", "prepared_at")
    record = {k: meta.get(k) for k in keep}
    if "official_md5" in meta:  # read as an official release: do its files carry the official checksums?
        record["official_md5"] = meta["official_md5"]
    if "jpeg_filled" in meta:
        record["jpeg_filled_count"] = len(meta["jpeg_filled"])
    pipeline = {"augment": ds["augment"], "eval_augment": ds.get("eval_augment"),
                "normalization": {"name": ds.get("norm"), "mean": ds["mean"], "std": ds["std"]}}
    return {**record, **used, **pipeline}


class MixupLoader:
    """``loader``'s batches through ``timm.data.Mixup`` (inputs mixed, targets soft)."""

    def __init__(self, loader: EpochBatches, options: dict[str, Any], num_classes: int) -> None:
        from timm.data import Mixup

        self.loader, self.mixup = loader, Mixup(**{"num_classes": num_classes, **options})
        if loader.batch_size % 2:
            raise BenchError(f"workload.mixup needs an even trainer.batch_size, got {loader.batch_size}")

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def examples_per_epoch(self) -> int:
        return self.loader.examples_per_epoch

    def epoch(self, epoch: int) -> Any:
        for inputs, targets in self.loader.epoch(epoch):
            if len(inputs) % 2:  # timm mixes a batch with its flip: drop the odd last example
                inputs, targets = inputs[:-1], targets[:-1]
            yield self.mixup(inputs, targets)


class ImageWorkload(BatchWorkload):
    """A batch workload on an image dataset of the ``dataset`` group: finding it, and its record."""

    gpu_options = ("channels_last", "compile")   # its batches are 4-D images (bench.gpu_options)
    data: PreparedDataset
    used: dict[str, Any]  # what the loaders used (bench.data.build.build_loaders)

    @classmethod
    def locate_data(cls, cfg: dict[str, Any]) -> tuple[str, PreparedDataset]:
        data = find_data(cfg["dataset"], cfg["data_root"])
        return data.tag, data

    def data_record(self) -> dict[str, Any]:
        return data_record(self.data.meta, self.used, self.cfg["dataset"])


class Classification(ImageWorkload):
    """Cross-entropy classification of ``dataset`` by ``model``."""

    name = "classification"
    primary = Metric("test_acc1", "max")
    label_smoothing: float = 0.0
    multi_label: bool = False   # dataset.multi_label (ADP): BCE with logits
    auc: bool = False           # workload.auc: test_auc too
    soft_loss: nn.Module | None = None  # timm's SoftTargetCrossEntropy, with workload.mixup

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: PreparedDataset | None = None) -> None:
        super().__init__(cfg, device)
        ds = cfg["dataset"]
        self.data = data or find_data(ds, cfg["data_root"])
        self.train_loader, self.test_loader, self.used = build_loaders(cfg, self.data, device)
        workload = cfg.get("workload") or {}
        self.label_smoothing = float(workload.get("label_smoothing") or 0.0)
        self.multi_label, self.auc = bool(ds.get("multi_label")), bool(workload.get("auc"))
        if self.multi_label and (workload.get("mixup") or self.label_smoothing):
            raise BenchError("workload.mixup and workload.label_smoothing are for single-label data; "
                             "pass them null/0 with a multi-label dataset")
        if self.auc:
            auroc(ds["num_classes"], self.multi_label)  # one error line now if the data has no AUC
        if workload.get("mixup"):
            from timm.loss import SoftTargetCrossEntropy

            self.train_loader = MixupLoader(self.train_loader, dict(workload["mixup"]), ds["num_classes"])
            self.soft_loss = SoftTargetCrossEntropy()
        options = {k: v for k, v in cfg["model"].items() if k != "name"}
        self.model = create_model(cfg["model"]["name"], num_classes=ds["num_classes"], in_channels=ds["channels"],
                                  **options).to(device)
        self._check_fit()

    def _check_fit(self) -> None:
        """The data has ``dataset.num_classes`` classes (a partial copy, ``allow_incomplete``, may have
        fewer, never more), and two test images go through the model (eval mode, no state changes) to
        that many outputs; else one error line, before the first step."""
        model, ds = self.cfg["model"]["name"], self.cfg["dataset"]
        classes = len(self.data.meta.get("classes") or []) or ds["num_classes"]
        partial = self.data.meta.get("complete") is False and classes < ds["num_classes"]
        if classes != ds["num_classes"] and not partial:
            raise BenchError(f"dataset.num_classes is {ds['num_classes']} but {self.data.tag} has {classes} classes; "
                             f"pass dataset.num_classes={classes}")
        multi_hot = np.ndim(self.data.splits["test"].labels) == 2
        if multi_hot != self.multi_label:
            raise BenchError(f"{self.data.tag} has {'multi-hot' if multi_hot else 'single'} labels; "
                             f"pass dataset.multi_label={str(multi_hot).lower()}")
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

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        logits = model(inputs)
        if self.multi_label:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
            sums = multilabel_correct(logits.detach(), targets)
            sums["loss"] = loss.detach().float() * len(targets)
            return loss, sums
        if targets.ndim == 2:  # soft targets of mixup/cutmix
            loss = self.soft_loss(logits, targets)
            targets = targets.argmax(dim=1)
        else:
            loss = nn.functional.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        sums = topk_correct(logits.detach(), targets, (1, 5))
        sums["loss"] = loss.detach().float() * len(targets)
        return loss, sums

    def evaluator(self) -> Evaluator:
        if self.auc:
            return AUCEvaluator(self._logit_sums, auroc(self.cfg["dataset"]["num_classes"], self.multi_label),
                                self.multi_label)
        return MeanEvaluator(lambda model, inputs, targets: self._logit_sums(model(inputs), targets))

    def _logit_sums(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Per-example sums of the test metrics of one batch (``loss``: per-example mean over labels)."""
        if self.multi_label:
            sums = multilabel_correct(logits, targets)
            losses = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
            sums["loss"] = losses.mean(dim=1).sum()
            return sums
        sums = topk_correct(logits, targets, (1, 5))
        sums["loss"] = nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        return sums
