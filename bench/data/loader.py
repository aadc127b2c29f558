"""A device-resident loader for small-image datasets (the airbench approach).

The whole split lives on the training device as uint8; each epoch draws a permutation and the
augmentation randomness from a generator seeded by (seed, epoch), augments in batch on the device
and normalises to float. No worker processes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from bench.data.augment import Augment, identity


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A distinct, reproducible 63-bit seed for (run seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


class TensorLoader:
    """Batches of normalised float images and int64 labels, reproducible per epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], device: torch.device, augment: Augment | None = None,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(np.asarray(labels)).to(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255
        self.batch_size, self.shuffle, self.drop_last, self.seed = batch_size, shuffle, drop_last, seed
        self.augment = augment or identity()

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def examples_per_epoch(self) -> int:
        n = len(self.labels)
        return (n // self.batch_size) * self.batch_size if self.drop_last else n

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` (a pure function of the seed and the epoch number)."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        order = order.to(self.labels.device)
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            images = self.augment(self.images[index], generator)
            yield (images.float() - self.mean) / self.std, self.labels[index]
