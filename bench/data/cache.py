"""The prepared-dataset format: one folder per provenance tag holding uint8 arrays and metadata.

``<data_root>/<tag>/{split}_{images,labels}.npy`` plus ``meta.json``. Images are uint8 in NHWC
layout; labels are int64 (-1 for unlabelled images; multi-hot rows for multi-label data, ADP).
Large datasets (ImageNet) keep their images on disk: their folder holds a manifest,
``{split}_files.txt`` (paths relative to ``meta["image_root"]``) and ``{split}_labels.npy``, and
``meta["storage"]`` is ``"files"``. ``meta["sha256"]`` holds the checksum of every file written.
Folders are written under a temporary name and renamed into place, so a crash never leaves a
half-prepared dataset that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
SPLITS = ("train", "test")


@dataclass
class Split:
    """One split of a dataset held in memory."""

    images: np.ndarray  # uint8, N x H x W x C
    labels: np.ndarray  # int64, N (or N x classes of 0/1 for multi-label data: ADP)


@dataclass
class FileSplit:
    """One split of a dataset whose images stay on disk (ImageNet)."""

    files: list[str]  # relative to the dataset's image root
    labels: np.ndarray  # int64, N
    root: Path

    def paths(self) -> list[Path]:
        return [self.root / f for f in self.files]


@dataclass
class PreparedDataset:
    """A prepared dataset: its splits and the metadata recorded at preparation time."""

    meta: dict[str, Any]
    splits: dict[str, Split | FileSplit]

    @property
    def tag(self) -> str:
        return str(self.meta["provenance"])


def sha256(path: Path) -> str:
    """SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _save_split(folder: Path, name: str, split: Split | FileSplit) -> list[Path]:
    labels = folder / f"{name}_labels.npy"
    np.save(labels, np.asarray(split.labels, dtype=np.int64))
    if isinstance(split, FileSplit):
        files = folder / f"{name}_files.txt"
        files.write_text("\n".join(split.files) + "\n")
        return [files, labels]
    images = folder / f"{name}_images.npy"
    np.save(images, np.ascontiguousarray(split.images, dtype=np.uint8))
    return [images, labels]


def write(folder: Path, splits: dict[str, Split] | dict[str, FileSplit], meta: dict[str, Any]) -> None:
    """Write ``splits`` and ``meta`` to ``folder`` atomically (replace any previous copy)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    written = [path for name, split in splits.items() for path in _save_split(staging, name, split)]
    storage = "files" if any(isinstance(s, FileSplit) for s in splits.values()) else "arrays"
    meta = {**meta, "format_version": FORMAT_VERSION, "storage": storage,
            "sha256": {path.name: sha256(path) for path in written}}
    (staging / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    try:
        os.replace(staging, folder)
    except OSError:
        if not is_prepared(folder):
            raise
        shutil.rmtree(staging)  # a simultaneous preparation of the same copy finished first


def _split_files(meta: dict[str, Any], split: str) -> tuple[str, str]:
    return (f"{split}_files.txt" if meta.get("storage") == "files" else f"{split}_images.npy"), f"{split}_labels.npy"


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a complete prepared dataset of the current format."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return False
    meta = json.loads(meta_file.read_text())
    return meta.get("format_version") == FORMAT_VERSION and all(
        (folder / name).is_file() for s in meta["splits"] for name in _split_files(meta, s)
    )


def verify_checksums(folder: Path) -> list[str]:
    """Names of the files in ``folder`` whose SHA-256 differs from the one recorded at preparation."""
    meta = json.loads((folder / "meta.json").read_text())
    return sorted(name for name, digest in meta.get("sha256", {}).items()
                  if not (folder / name).is_file() or sha256(folder / name) != digest)


def read(folder: Path) -> PreparedDataset:
    """Load a prepared dataset (memory-mapped; copy what you keep)."""
    meta = json.loads((folder / "meta.json").read_text())
    splits: dict[str, Split | FileSplit] = {}
    for s in meta["splits"]:
        data, labels = _split_files(meta, s)
        if meta.get("storage") == "files":
            files = (folder / data).read_text().splitlines()
            splits[s] = FileSplit(files, np.load(folder / labels), Path(meta["image_root"]))
        else:
            splits[s] = Split(np.load(folder / data, mmap_mode="r"), np.load(folder / labels))
    return PreparedDataset(meta, splits)
