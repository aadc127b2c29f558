"""The standard DataLoader path: per-image torchvision transforms in worker processes.

For large datasets whose images stay on disk (ImageNet) and, with ``dataset.loader=dataloader``,
for the small ones too. Same protocol as ``bench.data.loader.TensorLoader``. Determinism: the
example order comes from the same (seed, epoch) generator as the fast path, and each image's
augmentation is drawn from torch's RNG seeded by (seed, epoch, index), so an epoch does not depend
on the number of workers or on how a run was interrupted. Python's and NumPy's global RNGs are
seeded from the same per-image seed, since some library transforms draw from them (timm's
RandAugment and random erasing, lightly's Gaussian blur).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import random

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, get_worker_info

from bench.data.cache import FileSplit, Split
from bench.data.loader import EpochBatches, epoch_seed
from bench.data.transforms import Transform

_MIX = 0x9E3779B97F4A7C15  # golden-ratio increment: distinct per-image seeds from one epoch seed


class ImageDataset(Dataset):
    """Items are ``(index, epoch_seed)`` pairs; returns (transformed image, label)."""

    def __init__(self, split: Split | FileSplit, transform: Transform) -> None:
        self.split, self.transform = split, transform
        self.paths = split.paths() if isinstance(split, FileSplit) else None

    def __len__(self) -> int:
        return len(self.split.labels)

    def _image(self, index: int) -> Image.Image:
        if self.paths is not None:
            with Image.open(self.paths[index]) as image:
                return image.convert("RGB")
        array = np.asarray(self.split.images[index])
        return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Any, int]:
        index, seed = item
        image = self._image(index)
        # torchvision's transforms draw from torch's default CPU generator (torch.manual_seed would
        # also seed every CUDA device, ~25x slower per image).
        generator = torch.default_generator
        main = get_worker_info() is None  # main process: restore the RNG states after
        saved = (generator.get_state(), random.getstate(), np.random.get_state()) if main else None
        image_seed = (seed + index * _MIX) % 2**63
        generator.manual_seed(image_seed)
        random.seed(image_seed)
        np.random.seed(image_seed % 2**32)
        try:
            label = self.split.labels[index]  # a class index, or a multi-hot row (multi-label data)
            return self.transform(image), (int(label) if np.ndim(label) == 0 else torch.as_tensor(np.asarray(label)))
        finally:
            if saved is not None:
                generator.set_state(saved[0])
                random.setstate(saved[1])
                np.random.set_state(saved[2])


def _to(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, (list, tuple)):  # two views (SimCLR)
        return type(inputs)(_to(x, device) for x in inputs)
    return inputs.to(device, non_blocking=True)


class WorkerLoader(EpochBatches):
    """Batches from a torch DataLoader with ``workers`` processes, reproducible per epoch."""

    def __init__(self, split: Split | FileSplit, transform: Transform, *, batch_size: int, device: torch.device,
                 workers: int = 4, shuffle: bool = True, drop_last: bool = False, seed: int = 0) -> None:
        super().__init__(len(split.labels), batch_size, shuffle, drop_last, seed)
        self.dataset, self.device, self.workers = ImageDataset(split, transform), device, workers

    def epoch(self, epoch: int) -> Iterator[tuple[Any, torch.Tensor]]:
        """The batches of ``epoch`` (a pure function of the seed and the epoch number)."""
        order, _ = self.order(epoch)
        seed = epoch_seed(self.seed, epoch, stream=2)
        items = [(int(i), seed) for i in order]
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=items, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", drop_last=self.drop_last,
                            persistent_workers=False)
        for inputs, targets in loader:
            yield _to(inputs, self.device), targets.to(self.device, non_blocking=True)
