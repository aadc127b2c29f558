"""Random stand-in images of a dataset's shape, for ``debug=smoke`` when no copy is at hand.

They check that a configuration runs; their numbers mean nothing, and the record says so: the
provenance tag is ``<name>-stand-in`` and ``source.kind`` is ``generated``.

For datasets we cannot obtain here (MHIST, ADP), ``write_mhist`` and ``write_adp`` write small
random copies in the official on-disk layout, so that the readers and a whole run can be tested.
Such a folder carries ``STAND_IN_MARKER``; a copy prepared from it is tagged
``<name>-stand-in-<hash8>`` with ``source.kind`` ``generated`` (``bench.data.prepare.prepare_from``).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.data.cache import PreparedDataset, Split

STAND_IN_SIZES = {"train": 256, "test": 64}
STAND_IN_DESCRIPTION = "random stand-in images (debug=smoke): checks that the run works, measures nothing"
STAND_IN_MARKER = "BENCH_STAND_IN.json"


def _labels(rng: np.random.Generator, n: int, num_classes: int, multi_label: bool) -> np.ndarray:
    if multi_label:
        return rng.integers(0, 2, (n, num_classes)).astype(np.int64)
    return rng.integers(0, num_classes, n).astype(np.int64)


def stand_in(name: str, num_classes: int, channels: int, image_size: int, seed: int = 0,
             extra_splits: tuple[str, ...] = (), multi_label: bool = False) -> PreparedDataset:
    """Uniform random uint8 images and labels (seeded) with ``name``'s shape and classes; ``extra_splits``
    (STL-10's ``unlabeled``) get the training split's size; ``multi_label``: multi-hot label rows."""
    rng = np.random.default_rng(seed)
    sizes = {**STAND_IN_SIZES, **{split: STAND_IN_SIZES["train"] for split in extra_splits}}
    splits = {split: Split(rng.integers(0, 256, (n, image_size, image_size, channels), dtype=np.uint8),
                           _labels(rng, n, num_classes, multi_label))
              for split, n in sizes.items()}
    meta = {"dataset": name, "provenance": f"{name}-stand-in", "complete": False, "lossy": False,
            "source": {"kind": "generated"}, "sizes": sizes, "multi_label": multi_label,
            "description": STAND_IN_DESCRIPTION}
    return PreparedDataset(meta, splits)


def stand_in_marker(source: Path) -> dict[str, Any]:
    """What the marker of a generated copy says (``generator``, ``seed``), or {} for any other source."""
    marker = source / STAND_IN_MARKER
    return json.loads(marker.read_text()) if source.is_dir() and marker.is_file() else {}


def _png(path: Path, rng: np.random.Generator, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def _mark(folder: Path, generator: str, seed: int) -> None:
    (folder / STAND_IN_MARKER).write_text(json.dumps({"generator": f"bench.data.stand_in.{generator}", "seed": seed}))


def write_mhist(folder: Path, labels: dict[str, list[str]], size: int = 224, seed: int = 0) -> Path:
    """A random MHIST copy: ``annotations.csv`` and ``images/MHIST_<k>.png``; ``labels`` maps each
    partition (train, test) to its majority-vote labels (HP or SSA), written in that order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, k = [], 0
    for split, names in labels.items():
        for label in names:
            file = f"MHIST_{k:03d}.png"
            _png(folder / "images" / file, rng, size)
            votes = int(rng.integers(4, 8)) if label == "SSA" else int(rng.integers(0, 4))
            rows.append([file, label, votes, split])
            k += 1
    with open(folder / "annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Name", "Majority Vote Label", "Number of Annotators who Selected SSA (Out of 7)",
                         "Partition"])
        writer.writerows(rows)
    _mark(folder, "write_mhist", seed)
    return folder


def write_adp(folder: Path, labels: np.ndarray, classes: list[str], splits: dict[str, list[int]],
              size: int = 272, seed: int = 0, extra_columns: tuple[str, ...] = ("E", "E.M", "C")) -> Path:
    """A random ADP-Release1 copy under ``folder/ADP V1.0 Release``: the Flat CSV (``labels``, one
    0/1 row per image over ``classes``, plus ``extra_columns`` of other hierarchy levels, all 1),
    ``img_res_1um_bicubic/<k>.png_crop_<j>.png`` and ``splits/<name>.npy`` (row indices)."""
    rng = np.random.default_rng(seed)
    root = folder / "ADP V1.0 Release"
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{k:03d}.png_crop_{k % 16}.png" for k in range(len(labels))]
    for name in names:
        _png(root / "img_res_1um_bicubic" / name, rng, size)
    with open(root / "ADP_EncodedLabels_Release1_Flat.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Patch Names", *extra_columns, *classes])
        writer.writerows([name, *[1] * len(extra_columns), *map(int, row)] for name, row in zip(names, labels))
    (root / "splits").mkdir(exist_ok=True)
    for split, index in splits.items():
        np.save(root / "splits" / f"{split}.npy", np.asarray(index, dtype=np.int32))
    for marked in (folder, root):  # either folder may be passed as dataset.source
        _mark(marked, "write_adp", seed)
    return folder
