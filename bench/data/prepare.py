"""Find or build the prepared copy of a dataset, and record where it came from.

``resolve`` is what a run calls: it uses an explicit ``source`` (archive or folder), else an
already-prepared copy, else a torchvision download; each path ends in a verified prepared folder
``<data_root>/<provenance tag>`` and its metadata.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import cache, sources
from bench.data.catalog import KNOWN_COPIES, DatasetInfo, dataset_info
from bench.errors import BenchError


def _prepare_command(name: str) -> str:
    return f"python -m bench.data prepare {name} --from PATH"


def _verify(info: DatasetInfo, splits: dict[str, cache.Split], classes: list[str], origin: str) -> None:
    """Check split sizes, class count and label range against the official facts."""
    for split, expected in info.split_sizes.items():
        got = len(splits[split].labels) if split in splits else 0
        if got != expected:
            raise BenchError(
                f"{origin} holds {got} {split} images of {info.name}, expected {expected}; "
                f"it is incomplete or not {info.name} (pass a complete copy to {_prepare_command(info.name)})"
            )
    if len(classes) != info.num_classes:
        raise BenchError(f"{origin} has {len(classes)} classes, {info.name} has {info.num_classes}")


def _class_counts(splits: dict[str, cache.Split], num_classes: int) -> dict[str, list[int]]:
    return {s: np.bincount(sp.labels, minlength=num_classes).tolist() for s, sp in splits.items()}


def _store(root: Path, info: DatasetInfo, tag: str, splits: dict[str, cache.Split], classes: list[str],
           meta: dict[str, Any]) -> Path:
    _verify(info, splits, classes, meta.get("source", {}).get("path", tag))
    folder = root / tag
    cache.write(folder, splits, {
        "dataset": info.name,
        "provenance": tag,
        "classes": classes,
        "splits": sorted(splits),
        "sizes": {s: len(sp.labels) for s, sp in splits.items()},
        "class_counts": _class_counts(splits, info.num_classes),
        "image_shape": list(next(iter(splits.values())).images.shape[1:]),
        "prepared_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **meta,
    })
    return folder


def prepare_from(name: str, source: Path, root: Path) -> Path:
    """Prepare ``name`` from a local archive or ImageFolder tree; returns the prepared folder."""
    info = dataset_info(name)
    if not source.exists():
        raise BenchError(f"dataset source {source} does not exist; pass the path of a {name} archive or folder")
    digest = sources.sha256(source) if source.is_file() else None
    known = KNOWN_COPIES.get(digest or "")
    if known is not None and known.dataset != name:
        raise BenchError(f"{source} is a copy of {known.dataset}, not {name}; pick dataset={known.dataset}")
    tag = known.tag if known else f"{name}-local-{(digest or 'folder')[:8]}"
    folder = root / tag
    if cache.is_prepared(folder):
        return folder
    try:
        splits, classes, extras = sources.read_image_folder(source, info.channels)
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read {source} as a {name} archive or folder ({exc})") from exc
    notes = {}
    if "jpeg_filled.txt" in extras:
        notes["jpeg_filled"] = extras["jpeg_filled.txt"].decode().split()
    meta = {
        "source": {"kind": "local", "path": str(source.resolve()), "sha256": digest},
        "lossy": known.lossy if known else None,
        "description": known.description if known else "unrecognised local copy",
        **notes,
    }
    return _store(root, info, tag, splits, classes, meta)


def prepare_download(name: str, root: Path) -> Path:
    """Prepare ``name`` from torchvision (downloading if needed) or scikit-learn (digits)."""
    info = dataset_info(name)
    if name == "digits":
        splits, classes = sources.read_digits()
        return _store(root, info, "digits-sklearn", splits, classes,
                      {"source": {"kind": "sklearn"}, "lossy": False, "description": "sklearn load_digits"})
    if info.torchvision_class is None:
        raise BenchError(f"{name} cannot be downloaded automatically; run {_prepare_command(name)}")
    try:
        splits, classes = sources.read_torchvision(info.torchvision_class, root / "torchvision")
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError for a failed download
        raise BenchError(
            f"could not download {name} with torchvision ({type(exc).__name__}: {exc}); offline, pass a local "
            f"copy with dataset.source=PATH or run {_prepare_command(name)}"
        ) from exc
    return _store(root, info, f"{name}-torchvision", splits, classes, {
        "source": {"kind": "torchvision", "class": info.torchvision_class}, "lossy": False,
        "description": f"torchvision.datasets.{info.torchvision_class}",
    })


def resolve(name: str, root: Path, source: str | None, download: bool) -> cache.PreparedDataset:
    """The prepared copy a run should use (see module docstring)."""
    try:
        info = dataset_info(name)
    except KeyError:
        raise BenchError(f"no preparation recipe for dataset '{name}'") from None
    if source:
        folder = prepare_from(name, Path(source).expanduser(), root)
    else:
        ready = [root / tag for tag in info.preferred_tags if cache.is_prepared(root / tag)]
        local = sorted(p for p in root.glob(f"{name}-local-*") if cache.is_prepared(p))
        if not (ready or local or download):
            raise BenchError(
                f"{name} is not prepared under {root} and dataset.download=false; run {_prepare_command(name)} "
                f"(with --root {root}), pass dataset.source=PATH, or allow dataset.download=true"
            )
        folder = (ready or local or [None])[0] or prepare_download(name, root)
    return cache.read(folder)
