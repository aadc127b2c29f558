"""The prepared-dataset format: one folder per provenance tag holding uint8 arrays and metadata.

``<data_root>/<tag>/{train,test}_{images,labels}.npy`` plus ``meta.json``. Images are uint8 in
NHWC layout; labels are int64. Folders are written under a temporary name and renamed into place,
so a crash never leaves a half-prepared dataset that looks complete.
"""
from __future__ import annotations

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
    labels: np.ndarray  # int64, N


@dataclass
class PreparedDataset:
    """A prepared dataset: its splits and the metadata recorded at preparation time."""

    meta: dict[str, Any]
    splits: dict[str, Split]

    @property
    def tag(self) -> str:
        return str(self.meta["provenance"])


def write(folder: Path, splits: dict[str, Split], meta: dict[str, Any]) -> None:
    """Write ``splits`` and ``meta`` to ``folder`` atomically (replace any previous copy)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name, split in splits.items():
        np.save(staging / f"{name}_images.npy", np.ascontiguousarray(split.images, dtype=np.uint8))
        np.save(staging / f"{name}_labels.npy", np.asarray(split.labels, dtype=np.int64))
    meta = {**meta, "format_version": FORMAT_VERSION}
    (staging / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a complete prepared dataset of the current format."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return False
    meta = json.loads(meta_file.read_text())
    return meta.get("format_version") == FORMAT_VERSION and all(
        (folder / f"{s}_{part}.npy").is_file() for s in meta["splits"] for part in ("images", "labels")
    )


def read(folder: Path) -> PreparedDataset:
    """Load a prepared dataset (memory-mapped; copy what you keep)."""
    meta = json.loads((folder / "meta.json").read_text())
    splits = {
        s: Split(np.load(folder / f"{s}_images.npy", mmap_mode="r"), np.load(folder / f"{s}_labels.npy"))
        for s in meta["splits"]
    }
    return PreparedDataset(meta, splits)
