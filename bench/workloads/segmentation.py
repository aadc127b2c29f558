"""Semantic segmentation: fine-tuning a pretrained backbone and its decode head on ADE20K (PS Table 3).

Pixel-wise cross-entropy on ``dataset`` (ADE20K's official layout through ``dataset.source``; random
stand-ins with ``dataset.stand_in`` for debug=smoke) with ``model`` (``models.segmentation``), an
auxiliary head's loss weighted by the model's ``aux_weight``. Two optimizer roles: ``backbone`` and
``head`` (the decode and auxiliary heads); ``roles.head.lr_mult`` scales the head's LR (mmseg's
``paramwise_cfg`` ``head: lr_mult``). Evaluation is mmseg's: each validation image resized (keep
ratio) into ``workload.scale``, inferred whole (padded to ``size_divisor``) or by sliding windows, the
logits resized to the original mask; the mIoU (%) is accumulated over the whole set in one confusion
matrix (torchmetrics ``MulticlassJaccardIndex``, macro average over the classes present in the
predictions or the labels, as mmseg's ``nanmean``). Primary metric ``test_miou`` (higher is better).
Settings and their sources: ``conf/workload/segmentation.yaml``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.data.cache import sha256
from bench.data.segmentation import (Pairs, SegLoader, SegPipeline, ade20k_record, list_ade20k, stand_in_pairs)
from bench.errors import BenchError
from bench.workloads.base import Metric
from bench.workloads.batch import BatchWorkload, Evaluator
from models import create_model
from models.segmentation import check_pretrained

EVAL_MODES = ("whole", "slide")


def segmentation_loss(logits: Tensor, targets: Tensor, ignore_index: int, avg_non_ignore: bool) -> Tensor:
    """Pixel cross-entropy; mmseg's default (``avg_non_ignore=False``) averages over every pixel,
    ignored ones counting 0; ``True`` averages over the labelled pixels only (PyTorch's default)."""
    losses = F.cross_entropy(logits.float(), targets, ignore_index=ignore_index, reduction="none")
    if avg_non_ignore:
        return losses.sum() / (targets != ignore_index).sum().clamp(min=1)
    return losses.mean()


def slide_logits(model: nn.Module, image: Tensor, crop: int, stride: int, num_classes: int) -> Tensor:
    """mmseg ``slide_inference``: windows of ``crop`` every ``stride`` pixels, logits averaged where they overlap."""
    _, _, h, w = image.shape
    rows, cols = max(h - crop + stride - 1, 0) // stride + 1, max(w - crop + stride - 1, 0) // stride + 1
    logits = image.new_zeros((image.shape[0], num_classes, h, w))
    count = image.new_zeros((1, 1, h, w))
    for r in range(rows):
        for c in range(cols):
            y1, x1 = min(r * stride, max(h - crop, 0)), min(c * stride, max(w - crop, 0))
            y2, x2 = min(y1 + crop, h), min(x1 + crop, w)
            logits[:, :, y1:y2, x1:x2] += model(image[:, :, y1:y2, x1:x2]).float()
            count[:, :, y1:y2, x1:x2] += 1
    return logits / count


def whole_logits(model: nn.Module, image: Tensor, size_divisor: int) -> Tensor:
    """The whole image at once, zero-padded (after normalisation) to a multiple of ``size_divisor``."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % size_divisor, -w % size_divisor
    return model(F.pad(image, (0, pad_w, 0, pad_h)))[..., :h, :w].float()


class MIoUEvaluator:
    """mIoU and pixel accuracy (%) over the whole evaluation set, from one confusion matrix; ``settings``
    is ``workload.test_pipeline`` (``mode``, ``size_divisor``, ``crop``, ``stride``)."""

    def __init__(self, settings: dict[str, Any], num_classes: int, ignore_index: int) -> None:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        self.settings, self.num_classes, self.ignore_index = settings, num_classes, ignore_index
        self.jaccard = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=ignore_index, average="macro")
        self.accuracy = MulticlassAccuracy(num_classes=num_classes, ignore_index=ignore_index, average="micro")
        self.loss_sum, self.images = 0.0, 0

    def logits(self, model: nn.Module, image: Tensor) -> Tensor:
        test = self.settings
        if test["mode"] == "slide":
            return slide_logits(model, image, test["crop"], test["stride"], self.num_classes)
        return whole_logits(model, image, test["size_divisor"])

    def update(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> None:
        logits = F.interpolate(self.logits(model, inputs), size=targets.shape[-2:], mode="bilinear", align_corners=False)
        self.jaccard.to(logits.device).update(logits.argmax(1), targets)
        self.accuracy.to(logits.device).update(logits.argmax(1), targets)
        self.loss_sum += float(segmentation_loss(logits, targets, self.ignore_index, True)) * len(targets)
        self.images += len(targets)

    def compute(self) -> dict[str, float]:
        return {"miou": 100.0 * float(self.jaccard.compute()), "acc": 100.0 * float(self.accuracy.compute()),
                "loss": self.loss_sum / max(self.images, 1)}


def find_segmentation_data(cfg: dict[str, Any]) -> tuple[dict[str, Pairs], dict[str, Any]]:
    """ADE20K from ``dataset.source``, or stand-ins (``dataset.stand_in``) when no source is given."""
    ds = cfg["dataset"]
    if ds.get("source"):
        source = Path(ds["source"]).expanduser()
        splits = list_ade20k(source)
        return splits, ade20k_record(source, splits)
    if not ds.get("stand_in"):
        raise BenchError(f"dataset {ds['name']} needs its official copy: pass dataset.source=<folder holding "
                         f"ADEChallengeData2016> (it cannot be downloaded here), or dataset.stand_in=true for random images")
    sizes = {"train": 32, "test": 4}
    splits = {split: stand_in_pairs(n, tuple(ds["stand_in_size"]), cfg["workload"]["num_classes"], seed=i)
              for i, (split, n) in enumerate(sizes.items())}
    return splits, {"dataset": ds["name"], "provenance": f"{ds['name']}-stand-in", "complete": False, "lossy": False,
                    "source": {"kind": "generated"}, "sizes": sizes,
                    "description": "random stand-in images and masks (debug=smoke): checks that the run works, "
                                   "measures nothing"}


class Segmentation(BatchWorkload):
    """Fine-tune ``model`` (backbone + heads) for semantic segmentation of ``dataset``."""

    name = "segmentation"
    primary = Metric("test_miou", "max")
    roles = ("backbone", "head")
    gpu_options = ("channels_last", "compile")   # its batches are 4-D images (bench.gpu_options)

    @classmethod
    def locate_data(cls, cfg: dict[str, Any]) -> tuple[str, Any]:
        """The data's tag, plus the pretrained checkpoint's sha256 (both enter the run's hash)."""
        splits, record = find_segmentation_data(cfg)
        file = check_pretrained((cfg.get("model") or {}).get("pretrained_path"))
        pretrained = {"path": str(file), "sha256": sha256(file)} if file else None
        tag = record["provenance"] + (f"+pretrained-{pretrained['sha256'][:12]}" if pretrained else "")
        return tag, (splits, record, pretrained)

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: Any = None) -> None:
        super().__init__(cfg, device)
        w, trainer, ds = cfg["workload"], cfg["trainer"], cfg["dataset"]
        train, test = w["train_pipeline"], w["test_pipeline"]
        if test["mode"] not in EVAL_MODES:
            raise BenchError(f"workload.test_pipeline.mode must be one of {EVAL_MODES}, got {test['mode']!r}; "
                             f"pass workload.test_pipeline.mode=whole")
        splits, self.record, self.pretrained = data or self.locate_data(cfg)[1]
        splits = {"train": splits["train"].subset(trainer.get("train_subset")),
                  "test": splits["test"].subset(trainer.get("test_subset"))}
        labels = dict(mean=ds["mean"], std=ds["std"], ignore_index=w["ignore_index"],
                      reduce_zero_label=w["reduce_zero_label"])
        train_pipe = SegPipeline(train=True, scale=train["scale"], ratio_range=train["ratio_range"],
                                 crop=train["crop_size"], cat_max_ratio=train["cat_max_ratio"], flip=train["flip"],
                                 photometric=train["photometric"], **labels)
        test_pipe = SegPipeline(train=False, scale=test["scale"], ratio_range=(1.0, 1.0), crop=test["crop"],
                                cat_max_ratio=1.0, flip=0.0, photometric=False, **labels)
        workers = ds.get("workers", 0)
        self.train_loader = SegLoader(splits["train"], train_pipe, batch_size=trainer["batch_size"], device=device,
                                      seed=cfg["seed"], workers=workers, steps=w["steps_per_epoch"])
        self.test_loader = SegLoader(splits["test"], test_pipe, batch_size=1, device=device, seed=cfg["seed"],
                                     workers=workers)
        self.sizes = {split: len(pairs) for split, pairs in splits.items()}
        options = {k: v for k, v in cfg["model"].items() if k != "name"}
        self.model = create_model(cfg["model"]["name"], num_classes=w["num_classes"], **options).to(device)

    def role_modules(self) -> dict[str, nn.Module]:
        return {"backbone": self.model.backbone, "head": self.model.heads}

    def data_record(self) -> dict[str, Any]:
        w = self.cfg["workload"]
        pipeline = {k: w[k] for k in ("train_pipeline", "test_pipeline", "reduce_zero_label", "ignore_index")}
        return {**self.record, "used": self.sizes, "pipeline": pipeline, "pretrained": self.pretrained,
                "normalization": {"mean": self.cfg["dataset"]["mean"], "std": self.cfg["dataset"]["std"]}}

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.cfg["workload"]
        out = model(inputs)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = segmentation_loss(logits, targets, w["ignore_index"], w["avg_non_ignore"])
        if aux is not None:
            loss = loss + model.aux_weight * segmentation_loss(aux, targets, w["ignore_index"], w["avg_non_ignore"])
        return loss, {"loss": loss.detach().float() * len(targets)}

    def evaluator(self) -> Evaluator:
        w = self.cfg["workload"]
        return MIoUEvaluator(w["test_pipeline"], w["num_classes"], w["ignore_index"])
