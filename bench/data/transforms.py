"""Per-image reference pipelines (torchvision transforms on PIL images) for the DataLoader path.

These are the pipelines the papers' code runs, one image at a time in worker processes; the fast
path (``bench.data.augment``) reproduces their distributions in batch. Same recipe names and
options as ``bench.data.augment.AUGMENTATIONS``; every pipeline ends in ToTensor + Normalize
(and Cutout after it, as the RMSGD code appends it).

- ``simclr``: SimCLR's augmentation (Chen et al. 2020, Appendix A) as ``lightly``'s
  ``SimCLRTransform`` (options in its own names, ``size`` -> ``input_size``): random resized crop,
  flip, colour jitter, grayscale, Gaussian blur; two independent views per image.
- ``timm``: ``timm.data.create_transform(size, is_training=True, **options)`` (the DeiT recipe:
  RandAugment, colour jitter, bicubic, random erasing).
- eval recipes: ``none`` and ``resize_center_crop`` (ImageNet: Resize(256) + CenterCrop(224); option
  ``interpolation``, default bilinear; DeiT: bicubic).
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


def _finish(mean: Sequence[float], std: Sequence[float]) -> list[Transform]:
    return [T.ToTensor(), T.Normalize(mean, std)]


def _crop_flip(size: int, padding: int = 4, flip: bool = True) -> list[Transform]:
    return [T.RandomCrop(size, padding=padding)] + ([T.RandomHorizontalFlip()] if flip else [])


def _posterize(image: Any, bits_to_keep: int, **_: Any) -> Any:
    """timm's posterize as under Pillow < 13, where keeping 0 bits gave a black image; Pillow 13 refuses
    0 bits, which RandAugment's ``PosterizeIncreasing`` asks for at magnitude 10 (``mstd`` noise)."""
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return image
    return ImageOps.posterize(image, bits_to_keep) if bits_to_keep >= 1 else Image.new(image.mode, image.size)


def _timm_transform(size: int, options: dict[str, Any], mean: Sequence[float], std: Sequence[float]) -> Transform:
    from timm.data import auto_augment, create_transform

    for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        auto_augment.NAME_TO_OP[name] = _posterize
    return create_transform(size, is_training=True, mean=tuple(mean), std=tuple(std), **options)


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
        from lightly.transforms import SimCLRTransform

        options["input_size"] = options.pop("size", size)
        return SimCLRTransform(**options, normalize={"mean": list(mean), "std": list(std)})
    if name == "timm":
        return _timm_transform(options.pop("size", size), options, mean, std)
    raise BenchError(f"unknown augmentation {name!r}; pick dataset.augment.name from {sorted(augment.AUGMENTATIONS)}")


def eval_transform(name: str, options: dict[str, Any], mean: Sequence[float], std: Sequence[float]) -> Transform:
    """The per-image evaluation pipeline: ``none`` or ``resize_center_crop`` (resize, crop)."""
    if name == "none":
        return T.Compose(_finish(mean, std))
    if name == "resize_center_crop":
        mode = T.InterpolationMode(options.get("interpolation", "bilinear"))
        return T.Compose([T.Resize(options["resize"], interpolation=mode), T.CenterCrop(options["crop"])]
                         + _finish(mean, std))
    raise BenchError(f"unknown eval transform {name!r}; pick dataset.eval_augment.name from none, resize_center_crop")
