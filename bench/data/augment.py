"""Batched, device-side augmentations for the fast path (``bench.data.loader.TensorLoader``).

A ``Pipeline`` is ``pixel`` ops on the uint8 NCHW batch (they may return float images on the
0..255 scale), then normalisation, then ``post`` ops on the normalised batch (Cutout, which the
RMSGD/Cutout code applies after ``Normalize``). Each op draws its randomness from a
``torch.Generator`` that the loader seeds per epoch, so an epoch's batches are a pure function of
(seed, epoch). Each op reproduces the DISTRIBUTION of its per-image reference (torchvision or
Keras, see ``bench.data.transforms``), not its random stream; tests/test_augment_distribution.py
checks crop offsets, flip rates, box and affine parameters against the references.

Recipes (``dataset.augment.name``), by paper:

- ``none``: AdaLip MNIST / CIFAR-10 ("scale to [0,1], no augmentation"), all eval splits.
- ``crop_flip``: AdaS, RMSGD, AutoDrop CIFAR: RandomCrop(32, padding=4) + RandomHorizontalFlip.
- ``crop_flip_cutout``: RMSGD Table 1b: the above plus Cutout(n_holes=1, length=16) after
  normalisation (RMSGD ``paper`` branch configs; DeVries & Taylor 2017).
- ``keras_affine``: AdaLip CIFAR-100: Keras ``ImageDataGenerator(rotation_range=15,
  width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True)`` (bilinear, fill nearest).
- ``random_resized_crop``: AdaS Tiny-ImageNet (size 64) and ImageNet (size 224) training:
  RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3)) + RandomHorizontalFlip.
- ``simclr``: SimCLR's two-view augmentation; DataLoader path only (``bench.data.transforms``).
- ``timm``: timm's ``create_transform`` (the DeiT recipe); DataLoader path only.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from bench.errors import BenchError

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class Pipeline:
    """``pixel`` ops before normalisation, ``post`` ops after it."""

    pixel: list[Augment] = field(default_factory=list)
    post: list[Augment] = field(default_factory=list)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _flip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flips = (torch.rand(len(images), generator=generator) < p).to(images.device)
    out = images.clone()
    out[flips] = images[flips].flip(3)
    return out


# ------------------------------------------------------------------------------ crop and flip
def random_crop_flip(padding: int = 4, flip: bool = True) -> Augment:
    """RandomCrop(size, padding, fill 0) then RandomHorizontalFlip(0.5), as torchvision does it.

    Offsets dy, dx ~ U{0..2*padding} and the flip ~ Bernoulli(0.5) per image; crop and flip are
    one ``gather`` from the zero-padded batch (column dx + j, or dx + w-1-j when flipped)."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
        padded = F.pad(images, (padding,) * 4) if padding else images
        device, width = images.device, w + 2 * padding
        dy, dx, flips = dy.to(device), dx.to(device), flips.to(device)
        cols = torch.arange(w, device=device)
        cols = torch.where(flips[:, None], cols.flip(0), cols) + dx[:, None]  # n, w
        rows = torch.arange(h, device=device)[None, :] + dy[:, None]  # n, h
        index = (rows[:, :, None] * width + cols[:, None, :]).view(n, 1, h * w)
        return padded.reshape(n, c, -1).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)

    return apply


# ------------------------------------------------------------------------------ Cutout
def cutout(n_holes: int = 1, length: int = 16) -> Augment:
    """Cutout (DeVries & Taylor 2017, their ``util/cutout.py``): ``n_holes`` squares of side
    ``length`` centred uniformly in the image (clipped at the borders) are set to zero."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        cy = torch.randint(0, h, (n, n_holes), generator=generator).to(images.device)
        cx = torch.randint(0, w, (n, n_holes), generator=generator).to(images.device)
        rows = torch.arange(h, device=images.device)[None, None, :]
        cols = torch.arange(w, device=images.device)[None, None, :]
        in_rows = (rows >= cy[..., None] - length // 2) & (rows < cy[..., None] + length // 2)  # n, holes, h
        in_cols = (cols >= cx[..., None] - length // 2) & (cols < cx[..., None] + length // 2)  # n, holes, w
        holes = (in_rows[..., :, None] & in_cols[..., None, :]).any(1)  # n, h, w
        return images.masked_fill(holes[:, None], 0)

    return apply


# ------------------------------------------------------------------------------ RandomResizedCrop
def resized_crop_boxes(n: int, height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                       generator: torch.Generator, attempts: int = 10) -> torch.Tensor:
    """``n`` boxes (top, left, h, w) drawn as ``torchvision.transforms.RandomResizedCrop.get_params``:
    up to 10 tries of (area fraction ~ U(scale), log aspect ~ U(log ratio)), first fit wins, else the
    central crop clamped to the ratio range."""
    area = height * width
    target = area * _uniform(n * attempts, scale[0], scale[1], generator).view(n, attempts)
    aspect = torch.exp(_uniform(n * attempts, math.log(ratio[0]), math.log(ratio[1]), generator)).view(n, attempts)
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((n,), -1))
    in_ratio = width / height
    if in_ratio < min(ratio):
        fallback = (round(width / min(ratio)), width)
    elif in_ratio > max(ratio):
        fallback = (height, round(height * max(ratio)))
    else:
        fallback = (height, width)
    found = first >= 0
    pick = first.clamp(min=0)[:, None]
    hh = torch.where(found, h.gather(1, pick)[:, 0], fallback[0])
    ww = torch.where(found, w.gather(1, pick)[:, 0], fallback[1])
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    top = torch.where(found, (u[:, 0] * (height - hh + 1)).long(), (height - hh) // 2)
    left = torch.where(found, (u[:, 1] * (width - ww + 1)).long(), (width - ww) // 2)
    return torch.stack([top, left, hh, ww], 1)


def resample_weights(start: torch.Tensor, length: torch.Tensor, size: int, full: int) -> torch.Tensor:
    """(n, size, full) matrices that resize the window [start, start+length) of an axis of ``full``
    pixels to ``size`` pixels with PIL's antialiased bilinear (triangle) filter, as PIL's
    ``ImagingResample`` computes its coefficients."""
    scale = (length.double() / size)[:, None, None]
    support = scale.clamp(min=1.0)  # the filter widens when downsampling (antialias)
    centre = (torch.arange(size, dtype=torch.float64)[None, :, None] + 0.5) * scale
    x = torch.arange(full, dtype=torch.float64)[None, None, :] - start.double()[:, None, None]
    weights = (1 - ((x - centre + 0.5) / support).abs()).clamp(min=0)
    weights = weights * ((x >= 0) & (x < length.double()[:, None, None]))
    return weights / weights.sum(2, keepdim=True)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``boxes`` (top, left, h, w) out of ``images`` and resize them to ``size`` x ``size``."""
    _, _, height, width = images.shape
    rows = resample_weights(boxes[:, 0], boxes[:, 2], size, height).to(images.device, torch.float32)
    cols = resample_weights(boxes[:, 1], boxes[:, 3], size, width).to(images.device, torch.float32)
    out = rows[:, None] @ images.float() @ cols[:, None].transpose(2, 3)
    return out.round_().clamp_(0, 255)  # PIL returns uint8 pixels


def random_resized_crop(size: int, scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3), flip: bool = True) -> Augment:
    """RandomResizedCrop(size, scale, ratio) (bilinear, antialiased) then RandomHorizontalFlip(0.5)."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        boxes = resized_crop_boxes(len(images), images.shape[2], images.shape[3], scale, ratio, generator)
        images = resized_crop(images, boxes, size)
        return _flip(images, generator) if flip else images

    return apply


# ------------------------------------------------------------------------------ Keras affine
def keras_affine_params(n: int, height: int, width: int, rotation: float, width_shift: float,
                        height_shift: float, generator: torch.Generator) -> torch.Tensor:
    """(theta in degrees, tx rows, ty columns) as Keras ``ImageDataGenerator.get_random_transform``
    draws them for float ranges (fractions of the image size when below 1)."""
    theta = _uniform(n, -rotation, rotation, generator)
    tx = _uniform(n, -height_shift, height_shift, generator) * (height if height_shift < 1 else 1)
    ty = _uniform(n, -width_shift, width_shift, generator) * (width if width_shift < 1 else 1)
    return torch.stack([theta, tx, ty], 1)


def keras_affine_apply(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Keras ``apply_affine_transform`` (rotation then shift about the centre h/2+0.5, w/2+0.5,
    bilinear ``order=1``, ``fill_mode='nearest'``) on a float batch."""
    n, _, h, w = images.shape
    theta = torch.deg2rad(params[:, 0])
    cos, sin = torch.cos(theta), torch.sin(theta)
    tx, ty = params[:, 1], params[:, 2]
    o_x, o_y = h / 2 + 0.5, w / 2 + 0.5
    # input (row, col) = A @ output (row, col) + b, with A the rotation and b from shift and centre.
    a = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # n, 2, 2
    shift = torch.stack([cos * tx - sin * ty, sin * tx + cos * ty], 1)
    centre = torch.tensor([o_x, o_y], dtype=torch.float64)
    b = shift + centre - (a @ centre)
    out_rc = torch.stack(torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                        indexing="ij"), -1)  # h, w, 2
    in_rc = torch.einsum("nij,hwj->nhwi", a, out_rc) + b[:, None, None, :]
    grid = torch.stack([2 * in_rc[..., 1] / (w - 1) - 1, 2 * in_rc[..., 0] / (h - 1) - 1], -1)
    return F.grid_sample(images.float(), grid.to(images.device, torch.float32), mode="bilinear",
                         padding_mode="border", align_corners=True)


def keras_affine(rotation: float = 15, width_shift: float = 0.1, height_shift: float = 0.1,
                 flip: bool = True) -> Augment:
    """Keras ImageDataGenerator(rotation_range, width/height_shift_range, horizontal_flip), AdaLip CIFAR-100."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        params = keras_affine_params(len(images), images.shape[2], images.shape[3], rotation, width_shift,
                                     height_shift, generator)
        images = keras_affine_apply(images, params)
        return _flip(images, generator) if flip else images

    return apply


# ------------------------------------------------------------------------------ recipes
def _fast_only_on_dataloader(name: str) -> Callable[..., Pipeline]:
    def refuse(**options: object) -> Pipeline:
        raise BenchError(f"augmentation {name!r} has no fast path; pass dataset.loader=dataloader")

    return refuse


def _crop_flip_cutout(padding: int = 4, flip: bool = True, n_holes: int = 1, length: int = 16,
                      after_normalize: bool = True) -> Pipeline:
    ops = [random_crop_flip(padding, flip)]
    if after_normalize:
        return Pipeline(ops, [cutout(n_holes, length)])
    return Pipeline([*ops, cutout(n_holes, length)])


AUGMENTATIONS: dict[str, Callable[..., Pipeline]] = {
    "none": lambda: Pipeline(),
    "crop_flip": lambda padding=4, flip=True: Pipeline([random_crop_flip(padding, flip)]),
    "crop_flip_cutout": _crop_flip_cutout,
    "keras_affine": lambda **options: Pipeline([keras_affine(**options)]),
    "random_resized_crop": lambda **options: Pipeline([random_resized_crop(**options)]),
    "simclr": _fast_only_on_dataloader("simclr"),
    "timm": _fast_only_on_dataloader("timm"),
}


def build(name: str, **options: object) -> Pipeline:
    """The fast-path pipeline of recipe ``name`` with its options (see ``AUGMENTATIONS``)."""
    if name not in AUGMENTATIONS:
        raise BenchError(f"unknown augmentation {name!r}; pick dataset.augment.name from {sorted(AUGMENTATIONS)}")
    try:
        return AUGMENTATIONS[name](**options)
    except TypeError as exc:
        raise BenchError(f"bad options for augmentation {name!r} ({exc}); see conf/dataset/augment/{name}.yaml") from exc
