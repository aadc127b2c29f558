"""Readers that turn a local archive or folder, a torchvision download, or scikit-learn's digits
into in-memory splits (see ``bench.data.cache.Split``).

One reader per layout (``DatasetInfo.layout``):

- ``image_folder``: ``<root>/{train,test}/<class>/<index>.<ext>`` (the archives in ../shared/data).
  Classes sort alphabetically into the official label order; images are ordered by their numeric
  ``<index>`` (the official order where the copy preserves it).
- ``tiny_imagenet``: the CS231n release ``train/<wnid>/images/<wnid>_<k>.JPEG`` and
  ``val/images/val_<k>.JPEG`` labelled by ``val/val_annotations.txt``; classes are the sorted wnids
  (torchvision ImageFolder order), the prepared ``test`` split is the official val split.
- ``stl10_binary``: the official ``stl10_binary`` files (``{train,test}_{X,y}.bin``,
  ``unlabeled_X.bin``), decoded as torchvision.datasets.STL10 does.
- ``imagenet``: ``train/<wnid>/*`` and ``val/<wnid>/*`` folders, listed but not decoded.
- official CIFAR-10/100 and MNIST releases (``stage_official_release``), read by torchvision.

Folders, tar archives (any compression) and zip archives are read alike.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from bench.data.cache import SPLITS, FileSplit, Split, sha256

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
Entries = Iterator[tuple[PurePosixPath, bytes]]

__all__ = ["sha256", "read_image_folder", "read_tiny_imagenet", "read_stl10_binary", "list_imagenet",
           "read_torchvision", "read_digits", "folder_fingerprint", "stage_official_release"]


def _iter_tar(path: Path) -> Entries:
    with tarfile.open(path) as archive:
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                yield PurePosixPath(member.name), handle.read()


def _iter_zip(path: Path) -> Entries:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if not member.is_dir():
                yield PurePosixPath(member.filename), archive.read(member)


def _iter_folder(path: Path) -> Entries:
    for file in sorted(path.rglob("*")):
        if file.is_file():
            yield PurePosixPath(file.relative_to(path).as_posix()), file.read_bytes()


def iter_entries(path: Path) -> Entries:
    """(relative path, bytes) of every file in a folder, tar or zip archive."""
    if path.is_dir():
        return _iter_folder(path)
    return _iter_zip(path) if zipfile.is_zipfile(path) else _iter_tar(path)


def folder_fingerprint(path: Path) -> str:
    """SHA-256 over the sorted (relative path, size) listing of a folder: a cheap identity for big trees."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\t{file.stat().st_size}\n".encode())
    return digest.hexdigest()


def _decode(data: bytes, channels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    return array if channels == 3 else array[:, :, None]


def _number(name: str) -> int:
    """The last integer in a file stem (``n01443537_12`` -> 12, ``val_7`` -> 7, ``00042`` -> 42)."""
    digits = re.findall(r"\d+", name)
    if not digits:
        raise ValueError(f"{name}: no image index in the file name")
    return int(digits[-1])


def _stack(items: list[tuple[int, str, np.ndarray]], label_of: dict[str, int]) -> Split:
    return Split(np.stack([image for _, _, image in items]),
                 np.array([label_of[label] for _, label, _ in items], dtype=np.int64))


def read_image_folder(path: Path, channels: int) -> tuple[dict[str, Split], list[str], dict[str, bytes]]:
    """Read an ImageFolder tree (folder or archive) into splits.

    Returns the splits, the class names in label order, and the non-image files found next to
    the splits (for example ``jpeg_filled.txt``), keyed by file name.
    """
    found: dict[str, list[tuple[int, str, np.ndarray]]] = defaultdict(list)
    extras: dict[str, bytes] = {}
    for name, data in iter_entries(path):
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
        splits[split] = _stack(items, label_of)
    return splits, classes, extras


def read_tiny_imagenet(path: Path) -> tuple[dict[str, Split], list[str]]:
    """Read the Tiny-ImageNet-200 release (folder or zip); the official val split becomes ``test``."""
    train: list[tuple[int, str, np.ndarray]] = []
    val_images: dict[str, np.ndarray] = {}
    annotations: dict[str, str] = {}
    for name, data in iter_entries(path):
        parts = name.parts
        if name.name == "val_annotations.txt":
            rows = (line.split("\t") for line in data.decode().splitlines() if line.strip())
            annotations.update((row[0], row[1]) for row in rows)
        elif name.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        elif len(parts) >= 4 and parts[-4] == "train" and parts[-2] == "images":
            train.append((_number(name.stem), parts[-3], _decode(data, 3)))
        elif len(parts) >= 3 and parts[-3] == "val" and parts[-2] == "images":
            val_images[name.name] = _decode(data, 3)
    if not train or not val_images:
        raise ValueError("expected train/<wnid>/images/*.JPEG and val/images/*.JPEG")
    missing = sorted(set(val_images) - set(annotations))
    if missing:
        raise ValueError(f"val/val_annotations.txt has no label for {len(missing)} images, e.g. {missing[0]}")
    classes = sorted({label for _, label, _ in train})
    label_of = {c: i for i, c in enumerate(classes)}
    unknown = sorted({annotations[f] for f in val_images} - set(label_of))
    if unknown:
        raise ValueError(f"val_annotations.txt names classes without training images, e.g. {unknown[0]}")
    train.sort(key=lambda t: (label_of[t[1]], t[0]))
    val = sorted((_number(Path(f).stem), annotations[f], image) for f, image in val_images.items())
    return {"train": _stack(train, label_of), "test": _stack(val, label_of)}, classes


def _stl10_images(data: bytes) -> np.ndarray:
    # Stored as N x 3 x 96 x 96 in column-major order (torchvision transposes the last two axes).
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)


def read_stl10_binary(path: Path) -> tuple[dict[str, Split], list[str], dict[str, str]]:
    """Read the official ``stl10_binary`` release (folder or archive).

    Returns the splits (``train``, ``test``, ``unlabeled`` with label -1), the class names and the
    MD5 of each binary file (to compare with the official checksums).
    """
    files = {name.name: data for name, data in iter_entries(path)
             if name.suffix == ".bin" or name.name == "class_names.txt"}
    needed = ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin"]
    absent = [f for f in needed if f not in files]
    if absent:
        raise ValueError(f"missing {', '.join(absent)} (expected the stl10_binary release)")
    splits = {}
    for split in ("train", "test"):
        labels = np.frombuffer(files[f"{split}_y.bin"], dtype=np.uint8).astype(np.int64) - 1
        splits[split] = Split(_stl10_images(files[f"{split}_X.bin"]), labels)
    unlabeled = _stl10_images(files["unlabeled_X.bin"])
    splits["unlabeled"] = Split(unlabeled, np.full(len(unlabeled), -1, dtype=np.int64))
    names = files.get("class_names.txt", b"").decode().split()
    md5 = {f: hashlib.md5(files[f]).hexdigest() for f in needed}
    return splits, names, md5


def _list_class_tree(split_dir: Path) -> list[tuple[str, str]]:
    """(relative path, class) of every image below ``split_dir/<class>/``."""
    items = []
    for class_dir in sorted((p for p in os.scandir(split_dir) if p.is_dir()), key=lambda e: e.name):
        for entry in sorted(os.scandir(class_dir.path), key=lambda e: e.name):
            if entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                items.append((f"{split_dir.name}/{class_dir.name}/{entry.name}", class_dir.name))
    return items


def list_imagenet(path: Path) -> tuple[dict[str, FileSplit], list[str]]:
    """List an ImageNet ``train/<wnid>/*`` + ``val/<wnid>/*`` folder; val becomes the ``test`` split."""
    if not path.is_dir():
        raise ValueError("ImageNet must be a folder with train/<wnid>/ and val/<wnid>/ (archives are not unpacked)")
    listed = {}
    for split, folder in (("train", "train"), ("test", "val")):
        if not (path / folder).is_dir():
            raise ValueError(f"no {folder}/ folder")
        listed[split] = _list_class_tree(path / folder)
        if not listed[split]:
            raise ValueError(f"{folder}/ holds no <wnid>/<image> files (is val/ still flat? sort it into class "
                             f"folders, e.g. with the PyTorch examples' valprep.sh)")
    classes = sorted({label for _, label in listed["train"]})
    label_of = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for _, label in listed["test"]} - set(label_of))
    if unknown:
        raise ValueError(f"val/ has classes without training images, e.g. {unknown[0]}")
    return {split: FileSplit([f for f, _ in items], np.array([label_of[c] for _, c in items], dtype=np.int64),
                             path.resolve()) for split, items in listed.items()}, classes


def read_torchvision(name: str, class_name: str, download_root: Path, download: bool) -> tuple[dict[str, Split], list[str]]:
    """Load a torchvision dataset (downloading it when ``download``) into splits."""
    import torchvision

    dataset_class = getattr(torchvision.datasets, class_name)
    split_args = ({s: {"split": s} for s in ("train", "test", "unlabeled")} if class_name == "STL10"
                  else {s: {"train": s == "train"} for s in SPLITS})
    splits = {}
    classes: list[str] = []
    for split, kwargs in split_args.items():
        dataset = dataset_class(str(download_root), download=download, **kwargs)
        images = np.asarray(dataset.data)
        if class_name == "STL10":  # N x C x H x W
            images, targets = images.transpose(0, 2, 3, 1), dataset.labels
        else:
            targets = dataset.targets
        if images.ndim == 3:
            images = images[:, :, :, None]
        splits[split] = Split(images.astype(np.uint8), np.asarray(targets, dtype=np.int64))
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


def stage_official_release(class_name: str, source: Path, scratch: Path) -> tuple[Path, dict[str, str]] | None:
    """If ``source`` is an official CIFAR/MNIST release, lay it out as torchvision expects under
    ``scratch`` and return (torchvision root, MD5 of the release files); else None.

    CIFAR: ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` or their extracted folder
    (torchvision verifies each batch file's MD5 when it reads them). MNIST: a folder holding the four
    ``*-idx?-ubyte.gz`` files of the original release.
    """
    import gzip
    import shutil

    if class_name in ("CIFAR10", "CIFAR100"):
        base = "cifar-10-batches-py" if class_name == "CIFAR10" else "cifar-100-python"
        if source.is_dir():
            found = [source] if source.name == base else sorted(source.rglob(base))
            return (found[0].parent, {}) if found else None
        if not tarfile.is_tarfile(source):
            return None
        with tarfile.open(source) as archive:
            first = archive.next()
            if first is None or PurePosixPath(first.name).parts[0] != base:
                return None
            archive.extractall(scratch, filter="data")
        return scratch, {source.name: hashlib.md5(source.read_bytes()).hexdigest()}
    if class_name == "MNIST" and source.is_dir():
        archives = sorted(source.rglob("*-idx?-ubyte.gz"))
        if len(archives) != 4:
            return None
        raw = scratch / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for archive in archives:
            with gzip.open(archive) as packed, open(raw / archive.stem, "wb") as unpacked:
                shutil.copyfileobj(packed, unpacked)
        return scratch, {a.name: hashlib.md5(a.read_bytes()).hexdigest() for a in archives}
    return None
