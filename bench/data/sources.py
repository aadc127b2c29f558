"""Readers that turn a local archive or folder, a torchvision download, or scikit-learn's digits
into in-memory splits (see ``bench.data.cache.Split``).

Local copies use the ImageFolder layout ``<root>/{train,test}/<class>/<index>.<ext>`` (as a folder
or a tar archive). Classes sort alphabetically into the official label order; images are ordered by
their numeric ``<index>`` (the official order where the copy preserves it).
"""
from __future__ import annotations

import hashlib
import io
import tarfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from bench.data.cache import SPLITS, Split

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _iter_archive(path: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    with tarfile.open(path) as archive:
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                yield PurePosixPath(member.name), handle.read()


def _iter_folder(path: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    for file in sorted(path.rglob("*")):
        if file.is_file():
            yield PurePosixPath(file.relative_to(path).as_posix()), file.read_bytes()


def _decode(data: bytes, channels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    return array if channels == 3 else array[:, :, None]


def read_image_folder(path: Path, channels: int) -> tuple[dict[str, Split], list[str], dict[str, bytes]]:
    """Read an ImageFolder tree (folder or tar archive) into splits.

    Returns the splits, the class names in label order, and the non-image files found next to
    the splits (for example ``jpeg_filled.txt``), keyed by file name.
    """
    entries = _iter_archive(path) if path.is_file() else _iter_folder(path)
    found: dict[str, list[tuple[int, str, np.ndarray]]] = defaultdict(list)
    extras: dict[str, bytes] = {}
    for name, data in entries:
        parts = name.parts
        split_index = next((i for i, p in enumerate(parts) if p in SPLITS), None)
        if split_index is None or name.suffix.lower() not in IMAGE_SUFFIXES:
            extras[name.name] = data
            continue
        if len(parts) != split_index + 3:
            raise ValueError(f"{name}: expected <split>/<class>/<index>.<ext>")
        split, label_name = parts[split_index], parts[split_index + 1]
        found[split].append((int(name.stem), label_name, _decode(data, channels)))
    classes = sorted({label for items in found.values() for _, label, _ in items})
    label_of = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split, items in found.items():
        unique_indices = len({index for index, _, _ in items}) == len(items)
        # Global indices give the official order; per-class indices give class-major order.
        items.sort(key=(lambda t: t[0]) if unique_indices else (lambda t: (label_of[t[1]], t[0])))
        splits[split] = Split(
            np.stack([image for _, _, image in items]),
            np.array([label_of[label] for _, label, _ in items], dtype=np.int64),
        )
    return splits, classes, extras


def read_torchvision(class_name: str, download_root: Path) -> tuple[dict[str, Split], list[str]]:
    """Load a torchvision dataset (downloading it if it is not in ``download_root``) into splits."""
    import torchvision

    dataset_class = getattr(torchvision.datasets, class_name)
    splits = {}
    classes: list[str] = []
    for split in SPLITS:
        dataset = dataset_class(str(download_root), train=(split == "train"), download=True)
        images = np.asarray(dataset.data)
        if images.ndim == 3:
            images = images[:, :, :, None]
        splits[split] = Split(images.astype(np.uint8), np.asarray(dataset.targets, dtype=np.int64))
        classes = list(dataset.classes)
    return splits, classes


def read_digits() -> tuple[dict[str, Split], list[str]]:
    """scikit-learn's bundled 8x8 digits, split 1,500 / 297 by a fixed permutation (seed 0)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, :, :, None]
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1500], order[1500:]
    labels = bunch.target.astype(np.int64)
    return {"train": Split(images[train], labels[train]), "test": Split(images[test], labels[test])}, [
        str(d) for d in range(10)
    ]
