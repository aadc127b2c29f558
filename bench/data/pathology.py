"""Readers for the two computational-pathology datasets of RMSGD Tables 4 and 6 (official layouts).

- ``mhist`` (Wei et al. 2021, the MHIST release): ``annotations.csv`` with the columns ``Image Name``,
  ``Majority Vote Label`` (HP or SSA), ``Number of Annotators who Selected SSA (Out of 7)`` and
  ``Partition`` (train or test), next to ``images/`` of 224x224 PNGs. Binary labels in sorted order:
  HP = 0, SSA = 1 (SSA is the positive class of the AUC, as in the RMSGD code's ``roc_curve`` on the
  class-1 output). Folder, zip or tar (the download's ``images.zip`` unpacked or not).
- ``adp`` (Hosseini et al. 2019, ADP-Release1, ``ADP V1.0 Release``): ``ADP_EncodedLabels_Release1_Flat.csv``
  (``Patch Names`` plus one 0/1 column per hierarchical tissue type), ``img_res_1um_bicubic/`` of
  272x272 PNGs and ``splits/{train,valid,test}.npy`` (CSV row indices; 14,134 / 1,767 / 1,767). A folder
  only (the release holds other resolutions we must not decode). Labels are multi-hot over
  ``ADP_L3ONLY``, the hierarchy level RMSGD used (see there).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from bench.data.cache import Split
from bench.data.sources import _decode, iter_entries

MHIST_CLASSES = ["HP", "SSA"]
MHIST_COLUMNS = ("Image Name", "Majority Vote Label", "Partition")

ADP_CSV = "ADP_EncodedLabels_Release1_Flat.csv"
ADP_IMAGES = "img_res_1um_bicubic"
ADP_RELEASE = "ADP V1.0 Release"
# The level RMSGD trained on: the paper gives "22 multi-labeled classes" and 14,134 training examples
# (App. E.3); of the ADP group's hierarchy levels (their ADP_utils/classesADP.py: L1 9, L2 26, L3 33,
# L3Only 22 classes; the HistoKT configs' default `level: L3Only`) only L3Only has 22, and 14,134 is
# the size of the release's splits/train.npy. [decision: inferred; the paper names no level]
ADP_L3ONLY = ["E.M.S", "E.M.C", "E.T.S", "E.T.C", "C.D.I", "C.D.R", "C.L", "H.E", "H.K", "H.Y", "S.M", "S.C",
              "S.R", "A.W", "A.M", "M", "N.P", "N.R", "N.G.M", "G.O", "G.N", "T"]
ADP_SPLITS = {"train": "train", "valid": "valid", "test": "test"}  # prepared split <- splits/<name>.npy


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def read_mhist(path: Path) -> tuple[dict[str, Split], list[str]]:
    """The MHIST release (folder or archive) as ``train``/``test`` splits in ``annotations.csv`` order."""
    annotations: bytes | None = None
    images: dict[str, np.ndarray] = {}
    for name, data in iter_entries(path):
        if name.name == "annotations.csv":
            annotations = data
        elif name.suffix.lower() == ".png" and "images" in name.parts[:-1]:
            images[name.name] = _decode(data, 3)
    if annotations is None:
        raise ValueError("no annotations.csv: dataset.source must be the MHIST folder (or archive) holding "
                         "annotations.csv and images/*.png")
    rows = _rows(annotations)
    absent = [c for c in MHIST_COLUMNS if rows and c not in rows[0]]
    if not rows or absent:
        raise ValueError(f"annotations.csv lacks the column {absent[0] if absent else MHIST_COLUMNS[0]!r}")
    found: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for row in rows:
        label, split, file = row["Majority Vote Label"].strip(), row["Partition"].strip(), row["Image Name"].strip()
        if label not in MHIST_CLASSES or split not in found:
            raise ValueError(f"{file}: label {label!r} / partition {split!r}, expected HP|SSA and train|test")
        if file not in images:
            raise ValueError(f"annotations.csv names {file}, which is not in images/")
        found[split][0].append(images[file])
        found[split][1].append(MHIST_CLASSES.index(label))
    return {s: Split(np.stack(x), np.array(y, dtype=np.int64)) for s, (x, y) in found.items() if y}, list(MHIST_CLASSES)


def _adp_root(path: Path) -> Path:
    """The folder holding the CSV: ``path`` itself or its ``ADP V1.0 Release`` subfolder."""
    for root in (path, path / ADP_RELEASE):
        if (root / ADP_CSV).is_file():
            return root
    raise ValueError(f"no {ADP_CSV} in {path} or {path / ADP_RELEASE}: dataset.source must be the "
                     f"ADP-Release1 folder")


def read_adp(path: Path, classes: list[str] = ADP_L3ONLY) -> tuple[dict[str, Split], list[str]]:
    """ADP-Release1 (a folder): multi-hot int64 labels over ``classes``; splits from ``splits/*.npy``."""
    if not path.is_dir():
        raise ValueError("ADP must be a folder (ADP V1.0 Release with the CSV, img_res_1um_bicubic/ and splits/)")
    root = _adp_root(path)
    rows = _rows((root / ADP_CSV).read_bytes())
    absent = [c for c in ["Patch Names", *classes] if rows and c not in rows[0]]
    if not rows or absent:
        raise ValueError(f"{ADP_CSV} lacks the column {absent[0] if absent else 'Patch Names'!r}")
    splits = {}
    for split, file in ADP_SPLITS.items():
        index_file = root / "splits" / f"{file}.npy"
        if not index_file.is_file():
            raise ValueError(f"no splits/{file}.npy (the release's row indices of the {file} split)")
        index = np.load(index_file, allow_pickle=False).astype(np.int64)
        if len(index) and (index.min() < 0 or index.max() >= len(rows)):
            raise ValueError(f"splits/{file}.npy indexes past the {len(rows)} rows of {ADP_CSV}")
        picked = [rows[i] for i in index]
        if not picked:
            raise ValueError(f"splits/{file}.npy is empty")
        images = []
        for row in picked:
            image = root / ADP_IMAGES / row["Patch Names"]
            if not image.is_file():
                raise ValueError(f"{ADP_CSV} names {row['Patch Names']}, which is not in {ADP_IMAGES}/")
            images.append(_decode(image.read_bytes(), 3))
        labels = np.array([[int(float(row[c])) for c in classes] for row in picked], dtype=np.int64)
        splits[split] = Split(np.stack(images), labels.reshape(len(picked), len(classes)))
    return splits, list(classes)


__all__ = ["ADP_L3ONLY", "MHIST_CLASSES", "read_adp", "read_mhist"]
