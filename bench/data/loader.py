"""The batch iterators the trainer consumes: ``loader.epoch(epoch)`` yields (inputs, targets) on
the training device, ``len(loader)`` batches, ``loader.examples_per_epoch`` examples, and an epoch
is a pure function of (seed, epoch).

``TensorLoader`` is the fast path for small-image datasets (the airbench approach): the whole split
lives on the training device as uint8; each epoch draws a permutation and the augmentation
randomness from a generator seeded by (seed, epoch), augments in batch on the device and
normalises to float (``bench.data.augment.Pipeline``: pixel ops, normalisation, post ops). No
worker processes. The DataLoader path with workers is ``bench.data.workers.WorkerLoader``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from bench.data.augment import Augment, Pipeline


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A distinct, reproducible 63-bit seed for (run seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


class EpochBatches:
    """Batch arithmetic and the per-epoch example order shared by both loaders."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
        self.n, self.batch_size, self.shuffle, self.drop_last, self.seed = n, batch_size, shuffle, drop_last, seed

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    @property
    def examples_per_epoch(self) -> int:
        return (self.n // self.batch_size) * self.batch_size if self.drop_last else self.n

    def order(self, epoch: int) -> tuple[torch.Tensor, torch.Generator]:
        """The example order of ``epoch`` and the generator that drew it (for the augmentations)."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(self.n, generator=generator) if self.shuffle else torch.arange(self.n)
        return order[:self.examples_per_epoch], generator


class TensorLoader(EpochBatches):
    """Batches of normalised float images and int64 labels, reproducible per epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], device: torch.device, augment: Pipeline | Augment | None = None,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0) -> None:
        super().__init__(len(labels), batch_size, shuffle, drop_last, seed)
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(np.asarray(labels)).to(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255
        self.scale = 1 / (torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255)
        self.pipeline = augment if isinstance(augment, Pipeline) else Pipeline([augment] if augment else [])

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` (a pure function of the seed and the epoch number)."""
        order, generator = self.order(epoch)
        order = order.to(self.labels.device)
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            images = self.images[index]
            for op in self.pipeline.pixel:
                images = op(images, generator)
            images = (images.float() - self.mean).mul_(self.scale)
            for op in self.pipeline.post:
                images = op(images, generator)
            yield images, self.labels[index]
