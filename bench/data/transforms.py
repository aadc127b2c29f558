"""Per-image reference pipelines (torchvision transforms on PIL images) for the DataLoader path.

These are the pipelines the papers' code runs, one image at a time in worker processes; the fast
path (``bench.data.augment``) reproduces their distributions in batch. Same recipe names and
options as ``bench.data.augment.AUGMENTATIONS``; every pipeline ends in ToTensor + Normalize
(and Cutout after it, as the RMSGD code appends it).

- ``simclr``: SimCLR's augmentation (Chen et al. 2020, Appendix A; the defaults of ``lightly``'s
  SimCLRTransform, which the PS-SPS paper used): RandomResizedCrop(size, scale=(0.08, 1)),
  horizontal flip, colour jitter (0.8, 0.8, 0.8, 0.2) with p=0.8, grayscale with p=0.2, Gaussian
  blur (kernel ~10% of the size, sigma in [0.1, 2]) with p=0.5; two independent views per image.
- eval recipes: ``none`` and ``resize_center_crop`` (ImageNet: Resize(256) + CenterCrop(224)).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import transforms as T

from bench.data import augment
from bench.errors import BenchError

Transform = Callable[[Any], Any]


class Cutout:
    """Cutout on a CHW tensor (DeVries & Taylor's ``util/cutout.py``, drawing from torch's RNG)."""

    def __init__(self, n_holes: int = 1, length: int = 16) -> None:
        self.op = augment.cutout(n_holes, length)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        return self.op(image[None], generator)[0]


class KerasAffine:
    """Keras ImageDataGenerator's rotation/shift/flip on one CHW float tensor (0..1 scale)."""

    def __init__(self, **options: Any) -> None:
        self.op = augment.keras_affine(**options)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        return self.op(image[None], generator)[0]


class TwoViews:
    """Two independent draws of ``transform`` (SimCLR's positive pair)."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, image: Any) -> tuple[Any, Any]:
        return self.transform(image), self.transform(image)


def _finish(mean: Sequence[float], std: Sequence[float]) -> list[Transform]:
    return [T.ToTensor(), T.Normalize(mean, std)]


def _crop_flip(size: int, padding: int = 4, flip: bool = True) -> list[Transform]:
    return [T.RandomCrop(size, padding=padding)] + ([T.RandomHorizontalFlip()] if flip else [])


def _simclr_view(size: int, scale: Sequence[float] = (0.08, 1.0), jitter: Sequence[float] = (0.8, 0.8, 0.8, 0.2),
                 jitter_p: float = 0.8, gray_p: float = 0.2, blur_p: float = 0.5,
                 blur_sigma: Sequence[float] = (0.1, 2.0)) -> list[Transform]:
    kernel = int(0.1 * size) // 2 * 2 + 1
    return [T.RandomResizedCrop(size, scale=tuple(scale)), T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(*jitter)], p=jitter_p), T.RandomGrayscale(p=gray_p),
            T.RandomApply([T.GaussianBlur(kernel, sigma=tuple(blur_sigma))], p=blur_p)]


def train_transform(name: str, options: dict[str, Any], size: int, mean: Sequence[float],
                    std: Sequence[float]) -> Transform:
    """The per-image training pipeline of recipe ``name`` (PIL image in, tensor or pair out)."""
    options = dict(options)
    finish = _finish(mean, std)
    if name == "none":
        return T.Compose(finish)
    if name == "crop_flip":
        return T.Compose(_crop_flip(size, **options) + finish)
    if name == "crop_flip_cutout":
        holes = Cutout(options.pop("n_holes", 1), options.pop("length", 16))
        if options.pop("after_normalize", True):
            return T.Compose(_crop_flip(size, **options) + finish + [holes])
        return T.Compose(_crop_flip(size, **options) + [T.PILToTensor(), holes, T.ToPILImage()] + finish)
    if name == "keras_affine":
        return T.Compose([T.ToTensor(), KerasAffine(**options), T.Normalize(mean, std)])
    if name == "random_resized_crop":
        crop = T.RandomResizedCrop(options.pop("size"), scale=tuple(options.pop("scale", (0.08, 1.0))),
                                   ratio=tuple(options.pop("ratio", (3 / 4, 4 / 3))))
        return T.Compose([crop] + ([T.RandomHorizontalFlip()] if options.pop("flip", True) else []) + finish)
    if name == "simclr":
        return TwoViews(T.Compose(_simclr_view(options.pop("size", size), **options) + finish))
    raise BenchError(f"unknown augmentation {name!r}; pick dataset.augment.name from {sorted(augment.AUGMENTATIONS)}")


def eval_transform(name: str, options: dict[str, Any], mean: Sequence[float], std: Sequence[float]) -> Transform:
    """The per-image evaluation pipeline: ``none`` or ``resize_center_crop`` (resize, crop)."""
    if name == "none":
        return T.Compose(_finish(mean, std))
    if name == "resize_center_crop":
        return T.Compose([T.Resize(options["resize"]), T.CenterCrop(options["crop"])] + _finish(mean, std))
    raise BenchError(f"unknown eval transform {name!r}; pick dataset.eval_augment.name from none, resize_center_crop")
