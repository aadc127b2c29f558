"""Real data from ../shared/data: preparation gives the official sizes and class counts, and a
CIFAR-10 subset loads through both paths (fast and DataLoader) with the right shapes, labels and
normalisation. Each archive is prepared once per session (the ``prepared`` fixture, ~25 s each)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.data import cache
from bench.data.build import build_loaders

# Official per-class counts (MNIST: LeCun et al.'s release; e.g. 5,923 zeros in train).
MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("name, tag, train, test", [
    ("cifar10", "cifar10-shared", [5000] * 10, [1000] * 10),
    ("cifar100", "cifar100-shared", [500] * 100, [100] * 100),
    ("mnist", "mnist-shared", MNIST_TRAIN, MNIST_TEST),
])
def test_prepare_official_sizes_and_class_counts(prepared, name, tag, train, test):
    folder = prepared(name)
    assert folder.name == tag
    data = cache.read(folder)
    assert {s: len(sp.labels) for s, sp in data.splits.items()} == {"train": sum(train), "test": sum(test)}
    for split, expected in (("train", train), ("test", test)):
        assert np.bincount(data.splits[split].labels).tolist() == expected
        assert data.meta["class_counts"][split] == expected
    channels = 1 if name == "mnist" else 3
    side = 28 if name == "mnist" else 32
    assert data.splits["train"].images.shape[1:] == (side, side, channels)
    assert data.meta["complete"] is True and data.meta["source"]["sha256"]
    assert cache.verify_checksums(folder) == []


def test_cifar10_provenance_lists_jpeg_filled_images(prepared):
    meta = json.loads((prepared("cifar10") / "meta.json").read_text())
    assert meta["provenance"] == "cifar10-shared" and meta["lossy"] is False
    assert len(meta["jpeg_filled"]) == 201  # 167 train + 34 test, per the archive's README


def _cfg(loader: str) -> dict:
    return {
        "seed": 3,
        "dataset": {"name": "cifar10", "image_size": 32, "loader": loader, "workers": 2,
                    "mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010],
                    "augment": {"name": "crop_flip", "padding": 4, "flip": True}, "eval_augment": {"name": "none"}},
        "trainer": {"batch_size": 128, "eval_batch_size": 200, "train_subset": 1024, "test_subset": 400},
    }


def test_real_cifar10_subset_through_both_paths(prepared):
    data = cache.read(prepared("cifar10"))
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)
    stats = {}
    for kind in ("fast", "dataloader"):
        train, test, used = build_loaders(_cfg(kind), data, torch.device("cpu"))
        assert used == {"train_examples": 1024, "test_examples": 400, "loader": kind}
        assert len(train) == 8 and train.examples_per_epoch == 1024
        batches = list(train.epoch(1))
        assert [tuple(x.shape) for x, _ in batches] == [(128, 3, 32, 32)] * 8
        labels = torch.cat([y for _, y in batches])
        assert labels.dtype == torch.int64 and 0 <= labels.min() and labels.max() <= 9
        images = torch.cat([x for x, _ in batches])
        stats[kind] = (images.mean((0, 2, 3)), images.std((0, 2, 3)))
        # The test split is not augmented: un-normalising gives back the stored pixels exactly.
        x_test = torch.cat([x for x, _ in test.epoch(0)])
        y_test = torch.cat([y for _, y in test.epoch(0)])
        index = np.sort(np.random.default_rng(0).permutation(10_000)[:400])
        raw = torch.from_numpy(np.asarray(data.splits["test"].images[index])).permute(0, 3, 1, 2).float()
        assert torch.allclose((x_test * std + mean) * 255, raw, atol=2e-3)
        assert torch.equal(y_test, torch.from_numpy(data.splits["test"].labels[index]))
        # kuangliu's statistics centre real CIFAR-10; its "std" is the per-image one, so the
        # normalised dataset std is 0.247/0.2023 = 1.22 (red) and alike.
        assert x_test.mean((0, 2, 3)).abs().max() < 0.1
        assert ((x_test.std((0, 2, 3)) - 1.22).abs() < 0.1).all()
    # Same distribution of normalised training pixels through both paths (padding zeros included).
    assert torch.allclose(stats["fast"][0], stats["dataloader"][0], atol=0.03)
    assert torch.allclose(stats["fast"][1], stats["dataloader"][1], atol=0.03)
