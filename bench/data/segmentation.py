"""Semantic segmentation data: the ADE20K reader, joint image+mask augmentation and the loaders.

ADE20K (SceneParsing, MIT) in its official layout ``ADEChallengeData2016/images/{training,validation}/
*.jpg`` with ``annotations/{training,validation}/*.png`` of the same stem; a mask pixel holds 0
(other, ignored) or the class 1..150, which ``reduce_zero_label`` maps to 0..149 and 0 to the
ignore index (mmsegmentation's ``LoadAnnotations(reduce_zero_label=True)``).

Training pipeline (mmsegmentation ``configs/_base_/datasets/ade20k.py``): ``RandomResize(scale=
(2048, 512), ratio_range=(0.5, 2.0))`` keeping the aspect ratio, ``RandomCrop(512, cat_max_ratio=
0.75)``, ``RandomFlip(0.5)``, ``PhotoMetricDistortion``, normalisation, ``Pad`` to the crop (image 0,
mask ignore). Evaluation: ``Resize((2048, 512), keep_ratio=True)``; the mask stays at its original
size (``bench.workloads.segmentation`` resizes the logits back).

Every random choice of an example is drawn from a numpy generator seeded by (seed, epoch, index),
so an epoch does not depend on workers or on interruptions (as ``bench.data.workers``).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bench.data.loader import epoch_seed
from bench.data.sources import folder_fingerprint
from bench.errors import BenchError

ADE20K_SPLITS = {"train": "training", "test": "validation"}
ADE20K_SIZES = {"train": 20210, "test": 2000}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_MIX = 0x9E3779B97F4A7C15  # distinct per-example seeds from one epoch seed (as bench.data.workers)


# ----------------------------------------------------------------------------------------- sources
@dataclass
class Pairs:
    """(image, mask) pairs of one split: files on disk, or in-memory arrays (stand-ins)."""

    images: list[Any]  # paths or HxWx3 uint8 arrays
    masks: list[Any]   # paths or HxW uint8 arrays

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = self.images[index], self.masks[index]
        if isinstance(image, np.ndarray):
            return image, mask
        with Image.open(image) as img, Image.open(mask) as seg:
            return np.asarray(img.convert("RGB")), np.asarray(seg)

    def subset(self, n: int | None) -> Pairs:
        return self if n is None else Pairs(self.images[:n], self.masks[:n])


def find_ade20k_root(source: Path) -> Path:
    """``source`` itself or its ``ADEChallengeData2016`` child, whichever holds ``images/training``."""
    for root in (source, source / "ADEChallengeData2016"):
        if (root / "images" / "training").is_dir():
            return root
    raise BenchError(f"dataset.source {source} is not ADE20K's official layout (ADEChallengeData2016/images/"
                     f"{{training,validation}} and annotations/{{training,validation}}); pass dataset.source=<that folder>")


def list_ade20k(source: Path) -> dict[str, Pairs]:
    """The train and test (official validation) pairs of an ADE20K copy, sorted by file name."""
    root = find_ade20k_root(source)
    splits = {}
    for split, folder in ADE20K_SPLITS.items():
        images = sorted(p for p in (root / "images" / folder).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        masks = [root / "annotations" / folder / f"{p.stem}.png" for p in images]
        missing = [m for m in masks if not m.is_file()]
        if not images or missing:
            what = f"{len(missing)} masks missing, e.g. {missing[0]}" if missing else "no images"
            raise BenchError(f"ADE20K copy {root}: {folder} split has {what}; pass dataset.source=<a complete copy>")
        splits[split] = Pairs(images, masks)
    return splits


def ade20k_record(source: Path, splits: dict[str, Pairs]) -> dict[str, Any]:
    """Provenance of a copy: its tag (listing fingerprint), sizes and whether they are the official ones."""
    root = find_ade20k_root(source)
    digest = folder_fingerprint(root)
    sizes = {split: len(pairs) for split, pairs in splits.items()}
    complete = sizes == ADE20K_SIZES
    return {"dataset": "ade20k", "provenance": f"ade20k-{'' if complete else 'partial-'}{digest[:12]}",
            "complete": complete, "lossy": True, "sizes": sizes,
            "source": {"kind": "folder", "path": str(root), "listing_sha256": digest}}


def stand_in_pairs(n: int, size: tuple[int, int], num_classes: int, seed: int) -> Pairs:
    """Random images and blocky masks (labels 0..num_classes, 0 = ignored) of ``size`` (debug=smoke)."""
    rng = np.random.default_rng(seed)
    h, w = size
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    masks = [np.kron(rng.integers(0, num_classes + 1, (-(-h // 8), -(-w // 8))), np.ones((8, 8)))[:h, :w]
             .astype(np.uint8) for _ in range(n)]
    return Pairs(images, masks)


# --------------------------------------------------------------------------------- augmentations
def reduce_zero_label(mask: np.ndarray, ignore_index: int) -> np.ndarray:
    """0 -> ignore, k -> k - 1 (ADE20K's 150 classes become 0..149)."""
    out = mask.astype(np.int64) - 1
    out[mask == 0] = ignore_index
    return out


def rescale_size(h: int, w: int, scale: Sequence[float]) -> tuple[int, int]:
    """mmcv ``rescale`` with keep_ratio: the largest size with long side <= max(scale), short <= min(scale)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def resize(image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Bilinear image, nearest mask (mmcv's defaults for Resize)."""
    h, w = size
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    if mask is not None:
        mask = np.asarray(Image.fromarray(mask.astype(np.int32)).resize((w, h), Image.NEAREST)).astype(np.int64)
    return image, mask


def random_crop(image: np.ndarray, mask: np.ndarray, crop: int, cat_max_ratio: float, ignore_index: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """mmseg ``RandomCrop``: up to 10 tries for a window where no class covers ``cat_max_ratio`` or more."""

    def window() -> tuple[int, int]:
        return (int(rng.integers(0, max(image.shape[0] - crop, 0) + 1)),
                int(rng.integers(0, max(image.shape[1] - crop, 0) + 1)))

    top, left = window()
    if cat_max_ratio < 1.0:
        for _ in range(10):
            labels, counts = np.unique(mask[top:top + crop, left:left + crop], return_counts=True)
            counts = counts[labels != ignore_index]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            top, left = window()
    return image[top:top + crop, left:left + crop], mask[top:top + crop, left:left + crop]


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    from matplotlib.colors import rgb_to_hsv

    return rgb_to_hsv(rgb / 255.0)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator, brightness: float = 32,
                           contrast: tuple[float, float] = (0.5, 1.5), saturation: tuple[float, float] = (0.5, 1.5),
                           hue: float = 18) -> np.ndarray:
    """mmseg ``PhotoMetricDistortion``: brightness, contrast (first or last), saturation, hue, each with
    probability 1/2 (hue in degrees of 360; HSV through matplotlib, saturation clipped to [0, 1])."""
    from matplotlib.colors import hsv_to_rgb

    img = image.astype(np.float32)

    def contrast_step(x: np.ndarray) -> np.ndarray:
        return np.clip(x * rng.uniform(*contrast), 0, 255) if rng.integers(2) else x

    if rng.integers(2):
        img = np.clip(img + rng.uniform(-brightness, brightness), 0, 255)
    contrast_first = rng.integers(2) == 1
    if contrast_first:
        img = contrast_step(img)
    if rng.integers(2):
        hsv = _rgb_to_hsv(img)
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0, 1)
        img = hsv_to_rgb(hsv) * 255
    if rng.integers(2):
        hsv = _rgb_to_hsv(img)
        hsv[..., 0] = (hsv[..., 0] + rng.integers(-hue, hue) / 360.0) % 1.0
        img = hsv_to_rgb(hsv) * 255
    if not contrast_first:
        img = contrast_step(img)
    return np.clip(img, 0, 255)


@dataclass
class SegPipeline:
    """The train or eval pipeline of ``workload`` settings (see ``conf/workload/segmentation.yaml``)."""

    train: bool
    scale: Sequence[int]
    ratio_range: Sequence[float]
    crop: int
    cat_max_ratio: float
    flip: float
    photometric: bool
    mean: Sequence[float]
    std: Sequence[float]
    ignore_index: int
    reduce_zero_label: bool

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        mask = (reduce_zero_label(mask, self.ignore_index) if self.reduce_zero_label else mask.astype(np.int64))
        h, w = image.shape[:2]
        if not self.train:
            image, _ = resize(image, None, rescale_size(h, w, self.scale))
            return self._normalise(image), torch.from_numpy(mask)
        ratio = rng.uniform(*self.ratio_range)
        image, mask = resize(image, mask, rescale_size(h, w, [s * ratio for s in self.scale]))
        image, mask = random_crop(image, mask, self.crop, self.cat_max_ratio, self.ignore_index, rng)
        if rng.random() < self.flip:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if self.photometric:
            image = photometric_distortion(image, rng)
        pad_h, pad_w = self.crop - image.shape[0], self.crop - image.shape[1]
        tensor = torch.nn.functional.pad(self._normalise(image), (0, pad_w, 0, pad_h), value=0.0)
        target = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(mask)), (0, pad_w, 0, pad_h),
                                         value=self.ignore_index)
        return tensor, target

    def _normalise(self, image: np.ndarray) -> torch.Tensor:
        array = (np.asarray(image, dtype=np.float32) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


# --------------------------------------------------------------------------------------- loaders
class SegDataset(Dataset):
    """Items are ``(index, epoch_seed)``; returns the augmented (image, mask) of that example."""

    def __init__(self, pairs: Pairs, pipeline: SegPipeline) -> None:
        self.pairs, self.pipeline = pairs, pipeline

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = item
        image, mask = self.pairs.load(index)
        return self.pipeline(image, mask, np.random.default_rng((seed + index * _MIX) % 2**63))


class SegLoader:
    """``steps`` batches per epoch, drawn from shuffled passes over the training pairs (mmseg's
    infinite sampler, cut into evaluation intervals); the eval loader gives each image once, batch 1
    (images keep their own sizes). Same protocol as ``bench.data.loader.TensorLoader``."""

    def __init__(self, pairs: Pairs, pipeline: SegPipeline, *, batch_size: int, device: torch.device, seed: int,
                 workers: int, steps: int | None = None) -> None:
        self.dataset, self.batch_size, self.device, self.seed, self.workers = SegDataset(pairs, pipeline), batch_size, \
            device, seed, workers
        self.steps = steps if steps is not None else len(pairs)

    def __len__(self) -> int:
        return self.steps

    def _items(self, epoch: int) -> Iterator[tuple[int, int]]:
        n, seed = len(self.dataset), epoch_seed(self.seed, epoch, stream=2)
        if not self.dataset.pipeline.train:
            yield from ((i, seed) for i in range(n))
            return
        for round_ in range(-(-self.steps * self.batch_size // n)):
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, stream=3 + round_))
            yield from ((int(i), seed) for i in torch.randperm(n, generator=generator))

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        items = list(self._items(epoch))[:self.steps * self.batch_size]
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=items, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", drop_last=self.dataset.pipeline.train)
        for inputs, targets in loader:
            yield inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
