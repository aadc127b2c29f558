"""Find or build the prepared copy of a dataset, and record where it came from.

``resolve`` is what a run calls: it uses an explicit ``source`` (archive or folder), else an
already-prepared copy, else a torchvision download; each path ends in a verified prepared folder
``<data_root>/<provenance tag>`` and its metadata.
"""
from __future__ import annotations

import datetime as _dt
import json
import lzma
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import cache, pathology, sources
from bench.data.catalog import KNOWN_COPIES, DatasetInfo, dataset_info
from bench.data.stand_in import STAND_IN_DESCRIPTION, stand_in_marker
from bench.errors import BenchError

STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


def prepare_command(name: str) -> str:
    """The command that prepares ``name`` (with ``--from`` when it cannot be downloaded)."""
    downloadable = name == "digits" or dataset_info(name).torchvision_class is not None
    return f"python -m bench.data prepare {name}" + ("" if downloadable else " --from PATH")


def _verify(info: DatasetInfo, splits: dict[str, Any], classes: list[str], origin: str,
            allow_incomplete: bool) -> bool:
    """Check split sizes and class count against the official facts; whether the copy is complete."""
    problems = []
    for split, expected in info.split_sizes.items():
        got = len(splits[split].labels) if split in splits else 0
        if got != expected:
            problems.append(f"{got} {split} images, expected {expected:,}")
    if len(classes) != info.num_classes:
        problems.append(f"{len(classes)} classes, expected {info.num_classes}")
    if problems and not allow_incomplete:
        raise BenchError(
            f"{origin} holds {'; '.join(problems)} of {info.name}: it is incomplete or not {info.name} "
            f"(pass a complete copy to python -m bench.data prepare {info.name} --from PATH, or add "
            f"--allow-incomplete for a stand-in)"
        )
    return not problems


def _class_counts(splits: dict[str, Any], num_classes: int) -> dict[str, list[int]]:
    """Images per class of each split (multi-hot labels: positives per class)."""
    return {s: (np.asarray(sp.labels).sum(axis=0) if np.ndim(sp.labels) == 2 else
                np.bincount(sp.labels[sp.labels >= 0], minlength=num_classes)).tolist() for s, sp in splits.items()}


def _store(root: Path, info: DatasetInfo, tag: str, splits: dict[str, Any], classes: list[str],
           meta: dict[str, Any], allow_incomplete: bool = False, partial_tag: str | None = None) -> Path:
    complete = _verify(info, splits, classes, meta.get("source", {}).get("path", tag), allow_incomplete)
    if not complete:  # a stand-in never takes the name of a real copy
        tag = partial_tag or f"{info.name}-partial"
    folder = root / tag
    first = next(iter(splits.values()))
    cache.write(folder, splits, {
        "dataset": info.name,
        "provenance": tag,
        "complete": complete,
        "classes": classes,
        "splits": sorted(splits),
        "test_split_is": info.test_is,
        "multi_label": info.multi_label,
        "sizes": {s: len(sp.labels) for s, sp in splits.items()},
        "class_counts": _class_counts(splits, len(classes)),
        "image_shape": list(first.images.shape[1:]) if isinstance(first, cache.Split) else None,
        "prepared_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **meta,
    })
    return folder


def _read_official(info: DatasetInfo, source: Path, scratch: Path) -> tuple[dict[str, Any], list[str], dict[str, Any]] | None:
    """An official CIFAR/MNIST release read by torchvision (which checks CIFAR's MD5s), or None."""
    assert info.torchvision_class is not None
    staged = sources.stage_official_release(info.torchvision_class, source, scratch)
    if staged is None:
        return None
    folder, md5 = staged
    try:
        splits, classes = sources.read_torchvision(info.name, info.torchvision_class, folder, download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise ValueError(f"torchvision rejects it as the official release: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # what was unpacked for torchvision
    if info.torchvision_class == "MNIST":
        from torchvision.datasets import MNIST

        official = {Path(url).name: digest for url, digest in MNIST.resources}
        verified = all(official.get(name) == digest for name, digest in md5.items())
    else:
        verified = True  # torchvision checked every batch file's MD5 while reading
    return splits, classes, {"md5": md5, "official_md5": verified,
                             "description": f"official release read by torchvision.datasets.{info.torchvision_class}"}


def _read_local(info: DatasetInfo, source: Path, scratch: Path) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """Splits, classes and extra metadata of a local copy, by the dataset's layout."""
    if info.torchvision_class in ("CIFAR10", "CIFAR100", "MNIST"):
        official = _read_official(info, source, scratch)
        if official is not None:
            return official
    if info.layout == "tiny_imagenet":
        splits, classes = sources.read_tiny_imagenet(source)
        return splits, classes, {}
    if info.layout == "mhist":
        splits, classes = pathology.read_mhist(source)
        return splits, classes, {}
    if info.layout == "adp_release1":
        splits, classes = pathology.read_adp(source)
        return splits, classes, {"adp_level": "L3Only"}
    if info.layout == "imagenet":
        files, classes = sources.list_imagenet(source)
        return files, classes, {"image_root": str(source.resolve())}
    if info.layout == "stl10_binary":
        from torchvision.datasets import STL10

        splits, classes, md5 = sources.read_stl10_binary(source)
        official = {name: digest for name, digest in STL10.train_list + STL10.test_list}
        return splits, classes or list(STL10_CLASSES), {
            "md5": md5, "official_md5": all(official[f] == d for f, d in md5.items())}
    splits, classes, extras = sources.read_image_folder(source, info.channels)
    notes = {"jpeg_filled": extras["jpeg_filled.txt"].decode().split()} if "jpeg_filled.txt" in extras else {}
    return splits, classes, notes


def _prepared_from(root: Path, name: str, digest: str) -> Path | None:
    """The prepared copy of ``name`` already made from the source with this digest, if any."""
    for folder in sorted(root.glob(f"{name}-*")):
        if cache.is_prepared(folder):
            source = json.loads((folder / "meta.json").read_text()).get("source", {})
            if digest in (source.get("sha256"), source.get("listing_sha256")):
                return folder
    return None


def prepare_from(name: str, source: Path, root: Path, allow_incomplete: bool = False) -> Path:
    """Prepare ``name`` from a local archive or folder; returns the prepared folder."""
    info = dataset_info(name)
    if not source.exists():
        raise BenchError(f"dataset source {source} does not exist; pass the path of a {name} archive or folder")
    digest = sources.sha256(source) if source.is_file() else sources.folder_fingerprint(source)
    known = KNOWN_COPIES.get(digest)
    if known is not None and known.dataset != name:
        raise BenchError(f"{source} is a copy of {known.dataset}, not {name}; pick dataset={known.dataset}")
    tag = known.tag if known else f"{name}-local-{digest[:8]}"
    done = _prepared_from(root, name, digest)
    if done is not None:
        return done
    scratch = root / "torchvision" / f"official-{digest[:8]}"
    try:
        splits, classes, extras = _read_local(info, source, scratch)
    except (OSError, ValueError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        shutil.rmtree(scratch, ignore_errors=True)  # what a partial read unpacked
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise BenchError(f"cannot read {source} as a {name} archive or folder ({reason}); it may be truncated "
                         f"or corrupt: copy it again") from exc
    if extras.get("official_md5"):
        tag = f"{name}-official"
    generated = stand_in_marker(source)
    meta = {
        "source": {"kind": "generated" if generated else "local", "path": str(source.resolve()),
                   ("sha256" if source.is_file() else "listing_sha256"): digest, **generated},
        "lossy": known.lossy if known else None,
        "description": known.description if known else f"unrecognised local {info.layout} copy",
        **extras,  # may override the description
    }
    if generated:  # a synthetic copy in the official layout: never named like a real one
        tag = f"{name}-stand-in-{digest[:8]}"
        meta.update(lossy=False, description=STAND_IN_DESCRIPTION)
    partial_tag = tag if generated else f"{name}-partial-{digest[:8]}"
    return _store(root, info, tag, splits, classes, meta, allow_incomplete, partial_tag)


def prepare_download(name: str, root: Path, download: bool = True) -> Path:
    """Prepare ``name`` from torchvision (downloading if needed) or scikit-learn (digits)."""
    info = dataset_info(name)
    if name == "digits":
        splits, classes = sources.read_digits()
        return _store(root, info, "digits-sklearn", splits, classes,
                      {"source": {"kind": "sklearn"}, "lossy": False, "description": "sklearn load_digits"})
    if info.torchvision_class is None:
        raise BenchError(f"{name} is not prepared in {root} and cannot be downloaded automatically; "
                         f"run {prepare_command(name)} (or pass dataset.source=PATH)")
    try:
        splits, classes = sources.read_torchvision(name, info.torchvision_class, root / "torchvision", download)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError for a failed download
        raise BenchError(
            f"{name} is not prepared in {root} and torchvision could not {'download' if download else 'find'} it "
            f"({type(exc).__name__}: {exc}); run {prepare_command(name)} or, offline, "
            f"python -m bench.data prepare {name} --from PATH (or pass dataset.source=PATH)"
        ) from exc
    return _store(root, info, f"{name}-torchvision", splits, classes, {
        "source": {"kind": "torchvision", "class": info.torchvision_class}, "lossy": False,
        "description": f"torchvision.datasets.{info.torchvision_class}",
    })


def resolve(name: str, root: Path, source: str | None, download: bool,
            allow_incomplete: bool = False) -> cache.PreparedDataset:
    """The prepared copy a run should use (see module docstring)."""
    try:
        info = dataset_info(name)
    except KeyError:
        raise BenchError(f"no preparation recipe for dataset '{name}'") from None
    if source:
        folder = prepare_from(name, Path(source).expanduser(), root, allow_incomplete)
    else:
        ours = [root / tag for tag in info.preferred_tags] + sorted(root.glob(f"{name}-local-*"))
        broken = [p for p in ours if p.exists() and not cache.is_prepared(p)]
        if broken:
            raise BenchError(f"prepared data {broken[0]} is incomplete (an interrupted or older preparation); "
                             f"delete it and run {prepare_command(name)}")
        ready = [p for p in ours if cache.is_prepared(p)]
        folder = ready[0] if ready else prepare_download(name, root, download)
    return cache.read(folder)
