"""The fast path's batched augmentations against their per-image references.

Oracles: torchvision's RandomCrop/RandomHorizontalFlip/RandomResizedCrop (run through our
DataLoader path), keras-preprocessing 1.1.2 (the ImageDataGenerator code of TF 2.1's Keras, which
AdaLip used), and DeVries & Taylor's Cutout code (transcribed below). Distribution tests use
fixed seeds, so they are deterministic; each has a negative control showing it rejects a slightly
wrong augmentation.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms import functional as TF

from bench.data import augment, transforms
from bench.data.cache import Split
from bench.data.loader import TensorLoader
from bench.data.workers import WorkerLoader

N = 6000
P_MIN = 1e-3  # accept "same distribution" above this p-value; controls come out far below it


# ------------------------------------------------------------------------------ helpers
def _coordinate_images(n: int, side: int = 32) -> np.ndarray:
    """Images whose red channel is 100 + row and green 100 + column (padding shows as 0)."""
    image = np.zeros((side, side, 3), dtype=np.uint8)
    image[..., 0] = 100 + np.arange(side)[:, None]
    image[..., 1] = 100 + np.arange(side)[None, :]
    image[..., 2] = 255
    return np.broadcast_to(image, (n, side, side, 3)).copy()


def _unit(channels: int = 3) -> dict:
    return {"mean": [0.0] * channels, "std": [1.0] * channels}


def _batches(loader) -> torch.Tensor:
    return torch.cat([x for x, _ in loader.epoch(1)]) * 255


def _decode_crop_flip(images: torch.Tensor, padding: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dy, dx, flipped) of each 32x32 output of RandomCrop(32, padding) + flip on coordinate images."""
    images = images.round()
    flipped = images[:, 1, 16, 15] > images[:, 1, 16, 16]
    images = torch.where(flipped[:, None, None, None], images.flip(3), images)
    centre = 100 + 16 - padding  # the original row/column that lands at output (16, 16) when d = 0
    return ((images[:, 0, 16, 16] - centre).long().numpy(), (images[:, 1, 16, 16] - centre).long().numpy(),
            flipped.numpy())


def _fast(op, n: int = N, seed: int = 1) -> torch.Tensor:
    loader = TensorLoader(_coordinate_images(n), np.zeros(n, dtype=np.int64), batch_size=500, **_unit(),
                          device=torch.device("cpu"), augment=augment.Pipeline([op]), seed=seed)
    return _batches(loader)


def _reference(name: str, options: dict, n: int = N) -> torch.Tensor:
    transform = transforms.train_transform(name, options, 32, **_unit())
    loader = WorkerLoader(Split(_coordinate_images(n), np.zeros(n, dtype=np.int64)), transform, batch_size=500,
                          device=torch.device("cpu"), workers=0, seed=2)
    return _batches(loader)


def _same(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """p-value of a chi-square test that two integer samples in [0, bins) share one distribution."""
    table = np.stack([np.bincount(a, minlength=bins), np.bincount(b, minlength=bins)])
    return stats.chi2_contingency(table[:, table.sum(0) > 0]).pvalue


# ------------------------------------------------------------------------------ crop + flip
@pytest.fixture(scope="module")
def torchvision_crop_flip() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _decode_crop_flip(_reference("crop_flip", {"padding": 4}))


def test_crop_offsets_and_flip_rate_match_torchvision(torchvision_crop_flip):
    dy, dx, flip = _decode_crop_flip(_fast(augment.random_crop_flip(4)))
    ref_dy, ref_dx, ref_flip = torchvision_crop_flip
    for ours, ref in ((dy, ref_dy), (dx, ref_dx)):
        assert ours.min() == ref.min() == 0 and ours.max() == ref.max() == 8
        assert _same(ours, ref, 9) > P_MIN
        assert stats.chisquare(np.bincount(ours, minlength=9)).pvalue > P_MIN  # uniform on 0..8
    assert _same(flip.astype(int), ref_flip.astype(int), 2) > P_MIN
    assert stats.binomtest(int(flip.sum()), N, 0.5).pvalue > P_MIN
    assert stats.binomtest(int(ref_flip.sum()), N, 0.5).pvalue > P_MIN
    assert _same(dy * 9 + dx, ref_dy * 9 + ref_dx, 81) > P_MIN  # joint offsets, independence included


def test_crop_flip_test_rejects_a_slightly_biased_pipeline(torchvision_crop_flip):
    def biased(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(images)
        padded = torch.nn.functional.pad(images, (4,) * 4)
        dy = torch.randint(0, 8, (n,), generator=generator)  # offset 8 never drawn
        out = torch.stack([padded[i, :, dy[i]:dy[i] + 32, 4:36] for i in range(n)])
        return augment._flip(out, generator, p=0.46)

    dy, _, flip = _decode_crop_flip(_fast(biased))
    ref_dy, _, ref_flip = torchvision_crop_flip
    assert _same(dy, ref_dy, 9) < 1e-10
    assert _same(flip.astype(int), ref_flip.astype(int), 2) < 1e-3


# ------------------------------------------------------------------------------ RandomResizedCrop
@pytest.mark.parametrize("height, width", [(64, 64), (24, 64)])
def test_resized_crop_boxes_match_torchvision(height, width):
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    ours = augment.resized_crop_boxes(N, height, width, scale, ratio, torch.Generator().manual_seed(0)).numpy()
    torch.manual_seed(1)
    image = torch.zeros(3, height, width)
    ref = np.array([RandomResizedCrop.get_params(image, list(scale), list(ratio)) for _ in range(N)])
    for column in range(4):  # top, left, height, width
        assert _same(ours[:, column], ref[:, column], 65) > P_MIN
    assert stats.ks_2samp(ours[:, 2] * ours[:, 3], ref[:, 2] * ref[:, 3]).pvalue > P_MIN
    wider = augment.resized_crop_boxes(N, height, width, (0.2, 1.0), ratio, torch.Generator().manual_seed(0)).numpy()
    assert stats.ks_2samp(wider[:, 2] * wider[:, 3], ref[:, 2] * ref[:, 3]).pvalue < 1e-10  # control


def test_resized_crop_pixels_match_pil_bilinear():
    rng = np.random.default_rng(0)
    image = (np.cumsum(rng.integers(0, 256, (64, 64, 3)), 0) % 256).astype(np.uint8)
    boxes = augment.resized_crop_boxes(64, 64, 64, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(3))
    boxes = torch.cat([boxes, torch.tensor([[0, 0, 64, 64], [5, 3, 50, 40]])])  # identity and downscaling
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].expand(len(boxes), -1, -1, -1)
    for size in (64, 24):
        ours = augment.resized_crop(batch, boxes, size).permute(0, 2, 3, 1).numpy()
        for box, out in zip(boxes.tolist(), ours):
            ref = np.asarray(TF.resized_crop(Image.fromarray(image), *box, [size, size], InterpolationMode.BILINEAR))
            assert np.abs(out - ref).max() <= 1  # PIL rounds in fixed point between its two passes


def test_random_resized_crop_is_identity_for_the_full_box():
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    assert torch.equal(augment.resized_crop(image, torch.tensor([[0, 0, 64, 64]] * 2), 64), image.float())


# ------------------------------------------------------------------------------ Keras affine (AdaLip)
def test_keras_affine_pixels_match_keras_preprocessing():
    keras = pytest.importorskip("keras_preprocessing.image")
    rng = np.random.default_rng(0)
    images = rng.random((6, 32, 32, 3)) * 255
    params = augment.keras_affine_params(6, 32, 32, 15, 0.1, 0.1, torch.Generator().manual_seed(0))
    ours = augment.keras_affine_apply(torch.from_numpy(images).permute(0, 3, 1, 2), params).permute(0, 2, 3, 1)
    for image, (theta, tx, ty), out in zip(images, params.tolist(), ours.numpy()):
        ref = keras.apply_affine_transform(image, theta=theta, tx=tx, ty=ty, row_axis=0, col_axis=1,
                                           channel_axis=2, fill_mode="nearest", order=1)
        assert np.abs(out - ref).max() < 1e-2  # float32 grid vs float64 scipy, on the 0..255 scale


def test_keras_affine_parameters_match_image_data_generator():
    keras = pytest.importorskip("keras_preprocessing.image")
    generator = keras.ImageDataGenerator(rotation_range=15, width_shift_range=0.1, height_shift_range=0.1,
                                         horizontal_flip=True)
    np.random.seed(1)  # (seed 0 draws a Keras tx sample at p=0.006 from its own uniform law)
    ref = [generator.get_random_transform((32, 40, 3)) for _ in range(N)]
    ours = augment.keras_affine_params(N, 32, 40, 15, 0.1, 0.1, torch.Generator().manual_seed(1)).numpy()
    for column, (key, half_width) in enumerate((("theta", 15), ("tx", 3.2), ("ty", 4.0))):
        assert stats.ks_2samp(ours[:, column], [r[key] for r in ref]).pvalue > P_MIN
        assert stats.kstest(ours[:, column], stats.uniform(-half_width, 2 * half_width).cdf).pvalue > P_MIN
    # tx moves rows (height 32), ty columns (width 40): the ranges tell them apart
    assert abs(ours[:, 1]).max() <= 3.2 < abs(ours[:, 2]).max() <= 4.0
    flips = _fast(augment.keras_affine(rotation=0, width_shift=0, height_shift=0), n=2000)
    flipped = (flips[:, 1, 16, 15] > flips[:, 1, 16, 16]).numpy()
    assert _same(flipped.astype(int), np.array([r["flip_horizontal"] for r in ref[:2000]]), 2) > P_MIN


# ------------------------------------------------------------------------------ Cutout (RMSGD Table 1b)
def _devries_cutout(h: int, w: int, n_holes: int, length: int, rng: np.random.RandomState) -> np.ndarray:
    """uoguelph-mlrg/Cutout util/cutout.py, Cutout.__call__, as published."""
    mask = np.ones((h, w), np.float32)
    for _ in range(n_holes):
        y, x = rng.randint(h), rng.randint(w)
        y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
        x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
        mask[y1:y2, x1:x2] = 0.0
    return mask


@pytest.mark.parametrize("n_holes, length", [(1, 16), (2, 8)])
def test_cutout_holes_match_devries(n_holes, length):
    rng = np.random.RandomState(0)
    ref = np.stack([_devries_cutout(32, 32, n_holes, length, rng) for _ in range(N)]) == 0
    ours = augment.cutout(n_holes, length)(torch.ones(N, 1, 32, 32), torch.Generator().manual_seed(0))[:, 0] == 0
    ours = ours.numpy()
    assert _same(ours.sum((1, 2)), ref.sum((1, 2)), 32 * 32 + 1) > P_MIN  # hole area (clipped, overlapping)
    assert _same(ours.any(2).argmax(1), ref.any(2).argmax(1), 32) > P_MIN  # first cut row
    assert np.abs(ours.mean(0) - ref.mean(0)).max() < 0.03  # per-pixel cut probability


def test_cutout_follows_normalisation_in_both_paths():
    images = np.full((64, 32, 32, 3), 200, dtype=np.uint8)
    norm = {"mean": [0.5] * 3, "std": [0.25] * 3}
    options = {"padding": 0, "flip": False, "n_holes": 1, "length": 16}
    pipeline = augment.build("crop_flip_cutout", **options)
    fast = TensorLoader(images, np.zeros(64, dtype=np.int64), batch_size=64, **norm, device=torch.device("cpu"),
                        augment=pipeline)
    ref = WorkerLoader(Split(images, np.zeros(64, dtype=np.int64)),
                       transforms.train_transform("crop_flip_cutout", options, 32, **norm), batch_size=64,
                       device=torch.device("cpu"), workers=0)
    kept = (200 / 255 - 0.5) / 0.25
    for loader in (fast, ref):
        x, _ = next(iter(loader.epoch(1)))
        holes = x.abs() < 1e-6  # Cutout after Normalize leaves zeros, not normalised black
        assert holes.any() and torch.allclose(x[~holes], torch.tensor(kept), atol=1e-5)


# ------------------------------------------------------------------------------ determinism and parity
def test_dataloader_path_is_reproducible_and_worker_independent():
    images = _coordinate_images(40)
    transform = transforms.train_transform("crop_flip", {"padding": 4}, 32, **_unit())

    def batches(workers: int, epoch: int) -> torch.Tensor:
        loader = WorkerLoader(Split(images, np.arange(40)), transform, batch_size=16, device=torch.device("cpu"),
                              workers=workers, seed=5)
        return torch.cat([torch.cat([x.flatten(1), y[:, None].float()], 1) for x, y in loader.epoch(epoch)])

    first = batches(0, 1)
    assert torch.equal(first, batches(0, 1)) and torch.equal(first, batches(2, 1))
    assert not torch.equal(first, batches(0, 2))


def test_fast_and_dataloader_paths_agree_without_augmentation():
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (50, 8, 8, 1), dtype=np.uint8), rng.integers(0, 10, 50)
    norm = {"mean": [0.3], "std": [0.4]}
    fast = TensorLoader(images, labels, batch_size=16, **norm, device=torch.device("cpu"), seed=4)
    slow = WorkerLoader(Split(images, labels), transforms.train_transform("none", {}, 8, **norm), batch_size=16,
                        device=torch.device("cpu"), workers=0, seed=4)
    assert len(fast) == len(slow) == 4
    for (x1, y1), (x2, y2) in zip(fast.epoch(3), slow.epoch(3), strict=True):
        assert torch.equal(y1, y2) and torch.allclose(x1, x2, atol=1e-5)


def test_simclr_two_views():
    transform = transforms.train_transform("simclr", {"size": 32}, 32, **_unit())
    loader = WorkerLoader(Split(_coordinate_images(8), np.zeros(8, dtype=np.int64)), transform, batch_size=4,
                          device=torch.device("cpu"), workers=0)
    (views, labels), *_ = list(loader.epoch(1))
    assert len(views) == 2 and views[0].shape == views[1].shape == (4, 3, 32, 32)
    assert not torch.equal(views[0], views[1])
    again = next(iter(loader.epoch(1)))[0]
    assert torch.equal(views[0], again[0]) and torch.equal(views[1], again[1])
    with pytest.raises(Exception, match="dataset.loader=dataloader"):
        augment.build("simclr", size=32)


def test_fast_and_reference_recipes_have_the_same_names():
    for name in augment.AUGMENTATIONS:
        options = {"size": 32} if name in ("random_resized_crop", "simclr") else {}
        assert callable(transforms.train_transform(name, options, 32, [0.0] * 3, [1.0] * 3))
