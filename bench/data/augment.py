"""Batched, device-side augmentations for small images (uint8 NCHW in, uint8 NCHW out).

Each augmentation draws its randomness from a ``torch.Generator`` that the loader seeds per epoch,
so an epoch's augmented batches are a pure function of (seed, epoch) and a resumed run sees the
same images as an uninterrupted one.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def random_crop_flip(padding: int = 4, flip: bool = True) -> Augment:
    """RandomCrop(size, padding, fill 0) then RandomHorizontalFlip(0.5), as torchvision does it."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        if padding:
            padded = torch.nn.functional.pad(images, (padding,) * 4)
            dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(images.device)
            dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(images.device)
            rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
            batch = torch.arange(n, device=images.device)[:, None, None, None]
            channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
            images = padded[batch, channel, rows, cols]
        if flip:
            flips = (torch.rand(n, generator=generator) < 0.5).to(images.device)
            images = torch.where(flips[:, None, None, None], images.flip(3), images)
        return images

    return apply


def identity() -> Augment:
    """No augmentation."""
    return lambda images, generator: images


AUGMENTATIONS: dict[str, Callable[..., Augment]] = {
    "none": identity,
    "crop_flip": random_crop_flip,
}


def build(name: str, **options: object) -> Augment:
    """The augmentation called ``name`` with its options (see ``AUGMENTATIONS``)."""
    return AUGMENTATIONS[name](**options)
