"""Preparation of the layouts we cannot test on real data here (Tiny-ImageNet, ImageNet, STL-10),
on small SYNTHETIC stand-ins with the official folder layouts, and the errors a user sees."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import cache
from bench.data.__main__ import main
from bench.data.build import build_loaders
from bench.data.prepare import prepare_from, resolve
from bench.errors import BenchError

WNIDS = ["n02", "n01", "n03"]  # deliberately unsorted: labels follow the sorted order


def _colour(label: int, k: int) -> tuple[int, int, int]:
    """A solid colour that encodes (class, image index), so a test can read labels back."""
    return (40 * label + 10, 7 * k, 200)


def _tiny_imagenet(root: Path, per_class: int = 4, val: int = 6) -> Path:
    top = root / "tiny-imagenet-200"
    (top / "val" / "images").mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    for wnid in WNIDS:
        folder = top / "train" / wnid / "images"
        folder.mkdir(parents=True)
        (top / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for k in range(per_class):
            Image.new("RGB", (64, 64), _colour(sorted(WNIDS).index(wnid), k)).save(folder / f"{wnid}_{k}.JPEG")
    rows = []
    for k in range(val):
        wnid = WNIDS[k % 3]
        Image.new("RGB", (64, 64), _colour(sorted(WNIDS).index(wnid), k)).save(top / "val" / "images" / f"val_{k}.JPEG")
        rows.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
    (top / "val" / "val_annotations.txt").write_text("\n".join(rows) + "\n")
    (top / "test" / "images").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(top / "test" / "images" / "test_0.JPEG")  # unlabelled: ignored
    return top


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.rglob("*")):
            archive.write(file, file.relative_to(folder.parent).as_posix())
    return target


def _decoded_label(image: np.ndarray) -> int:
    return int(round((float(image[..., 0].mean()) - 10) / 40))


def test_tiny_imagenet_folder_and_zip_prepare_alike(tmp_path):
    top = _tiny_imagenet(tmp_path / "src")
    with pytest.raises(BenchError, match=r"prepare tiny_imagenet --from PATH.*--allow-incomplete"):
        prepare_from("tiny_imagenet", top, tmp_path / "data")
    from_folder = cache.read(prepare_from("tiny_imagenet", top, tmp_path / "data", allow_incomplete=True))
    from_zip = cache.read(prepare_from("tiny_imagenet", _zip(top, tmp_path / "tiny.zip"), tmp_path / "data", True))
    assert from_folder.tag.startswith("tiny_imagenet-partial-") and from_folder.meta["complete"] is False
    for data in (from_folder, from_zip):
        assert data.meta["classes"] == sorted(WNIDS) and data.meta["test_split_is"] == "val"
        train, test = data.splits["train"], data.splits["test"]
        assert train.images.shape == (12, 64, 64, 3) and test.images.shape == (6, 64, 64, 3)
        assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
        # val labels come from val_annotations.txt, in val_<k> order
        assert test.labels.tolist() == [sorted(WNIDS).index(WNIDS[k % 3]) for k in range(6)]
        assert [_decoded_label(im) for im in test.images] == test.labels.tolist()
        assert [_decoded_label(im) for im in train.images] == train.labels.tolist()
    assert from_zip.meta["source"]["sha256"] and from_folder.meta["source"]["listing_sha256"]
    again = prepare_from("tiny_imagenet", top, tmp_path / "data", allow_incomplete=True)  # found, not re-read
    assert again.name == from_folder.tag and json.loads((again / "meta.json").read_text()) == from_folder.meta


def test_tiny_imagenet_missing_annotation_is_a_bench_error(tmp_path):
    top = _tiny_imagenet(tmp_path / "src")
    (top / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t1\t1\n")
    with pytest.raises(BenchError, match="no label for 5 images"):
        prepare_from("tiny_imagenet", top, tmp_path / "data", allow_incomplete=True)


def _cfg(name: str, loader: str, augment: dict, eval_augment: dict, size: int, **extra) -> dict:
    return {"seed": 0, "trainer": {"batch_size": 4, "eval_batch_size": 5, "train_subset": None, "test_subset": None},
            "dataset": {"name": name, "image_size": size, "loader": loader, "workers": 0, "mean": [0.5] * 3,
                        "std": [0.25] * 3, "augment": augment, "eval_augment": eval_augment, **extra}}


def test_tiny_imagenet_trains_through_both_loaders(tmp_path):
    data = cache.read(prepare_from("tiny_imagenet", _tiny_imagenet(tmp_path / "src"), tmp_path / "data", True))
    augment = {"name": "random_resized_crop", "size": 64, "scale": [0.08, 1.0], "ratio": [0.75, 4 / 3], "flip": True}
    evaluation = {"name": "resize_center_crop", "resize": 64, "crop": 64}
    for loader in ("fast", "dataloader"):
        train, test, _ = build_loaders(_cfg("tiny_imagenet", loader, augment, evaluation, 64), data,
                                       torch.device("cpu"))
        x, y = next(iter(train.epoch(1)))
        assert x.shape == (4, 3, 64, 64) and y.dtype == torch.int64
        x_test = torch.cat([b for b, _ in test.epoch(0)])
        raw = torch.from_numpy(np.array(data.splits["test"].images)).permute(0, 3, 1, 2).float() / 255
        assert torch.allclose(x_test * 0.25 + 0.5, raw, atol=1e-5)  # eval: Resize(64)+CenterCrop(64) = identity


def _imagenet(root: Path, train: int = 3, val: int = 2) -> Path:
    for split, count in (("train", train), ("val", val)):
        for c, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for k in range(count):
                Image.new("RGB", (80 + 10 * k, 60), _colour(sorted(WNIDS).index(wnid), k)).save(
                    folder / f"{wnid}_{k}.JPEG")
    return root


def test_imagenet_manifest_and_dataloader_path(tmp_path):
    source = _imagenet(tmp_path / "imagenet")
    data = cache.read(prepare_from("imagenet", source, tmp_path / "data", allow_incomplete=True))
    assert data.meta["storage"] == "files" and data.meta["image_root"] == str(source.resolve())
    assert data.splits["train"].files[:3] == [f"train/n01/n01_{k}.JPEG" for k in range(3)]
    assert data.splits["test"].labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert not list((tmp_path / "data").rglob("*.JPEG"))  # images stay where they are
    augment = {"name": "random_resized_crop", "size": 32, "scale": [0.08, 1.0], "ratio": [0.75, 4 / 3]}
    evaluation = {"name": "resize_center_crop", "resize": 36, "crop": 32}
    with pytest.raises(BenchError, match="dataset.loader=dataloader"):
        build_loaders(_cfg("imagenet", "fast", augment, evaluation, 32), data, torch.device("cpu"))
    train, test, _ = build_loaders(_cfg("imagenet", "dataloader", augment, evaluation, 32), data, torch.device("cpu"))
    x, y = next(iter(train.epoch(1)))
    assert x.shape == (4, 3, 32, 32)
    labels = torch.cat([label for _, label in test.epoch(0)])
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_imagenet_flat_val_folder_names_the_fix(tmp_path):
    source = _imagenet(tmp_path / "imagenet")
    for file in list((source / "val").rglob("*.JPEG")):
        file.rename(source / "val" / file.name)
    with pytest.raises(BenchError, match="valprep"):
        prepare_from("imagenet", source, tmp_path / "data", allow_incomplete=True)


def _stl10(root: Path, sizes: dict[str, int]) -> tuple[Path, dict[str, np.ndarray]]:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    for split, n in sizes.items():
        images[split] = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
        # the official files store N x 3 x 96 x 96 in column-major (Fortran) order
        (folder / f"{split}_X.bin").write_bytes(images[split].transpose(0, 3, 2, 1).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes((np.arange(n) % 10 + 1).astype(np.uint8).tobytes())
    (folder / "class_names.txt").write_text("\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse",
                                                       "monkey", "ship", "truck"]) + "\n")
    return root, images


def test_stl10_binary_matches_torchvision_decoding(tmp_path, monkeypatch):
    from torchvision.datasets import STL10

    source, images = _stl10(tmp_path / "stl", {"train": 10, "test": 6, "unlabeled": 4})
    data = cache.read(prepare_from("stl10", source, tmp_path / "data", allow_incomplete=True))
    assert data.meta["official_md5"] is False and data.tag.startswith("stl10-partial-")
    assert sorted(data.splits) == ["test", "train", "unlabeled"]
    for split in ("train", "test", "unlabeled"):
        assert np.array_equal(data.splits[split].images, images[split])
    # torchvision's own reader (integrity check bypassed: the stand-in has no official MD5)
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)
    reference = STL10(str(source), split="train", download=False)
    assert np.array_equal(data.splits["train"].images, reference.data.transpose(0, 2, 3, 1))
    assert data.splits["train"].labels.tolist() == reference.labels.tolist()
    assert data.splits["unlabeled"].labels.tolist() == [-1] * 4
    # the download path (torchvision.datasets.STL10) yields the same splits
    from bench.data.sources import read_torchvision

    downloaded, classes = read_torchvision("stl10", "STL10", source, download=False)
    assert classes == data.meta["classes"]
    for split in ("train", "test", "unlabeled"):
        assert np.array_equal(downloaded[split].images, data.splits[split].images)
        assert np.array_equal(downloaded[split].labels, data.splits[split].labels)
    cfg = _cfg("stl10", "fast", {"name": "none"}, {"name": "none"}, 96, train_split="train+unlabeled")
    train, _, used = build_loaders(cfg, data, torch.device("cpu"))
    assert used["train_examples"] == 14 and len(train) == 4


def test_cli_prepare_allow_incomplete_and_verify(tmp_path, capsys):
    source, _ = _stl10(tmp_path / "stl", {"train": 2, "test": 2, "unlabeled": 1})
    root = tmp_path / "data"
    assert main(["prepare", "stl10", "--from", str(source), "--root", str(root)]) == 2
    assert "python -m bench.data prepare stl10 --from PATH" in capsys.readouterr().err
    assert main(["prepare", "stl10", "--from", str(source), "--root", str(root), "--allow-incomplete"]) == 0
    (tag,) = [p.name for p in root.iterdir()]
    assert main(["verify", tag, "--root", str(root)]) == 0
    np.save(root / tag / "test_labels.npy", np.zeros(2, dtype=np.int64))  # corrupt a file
    assert main(["verify", tag, "--root", str(root)]) == 2
    assert "checksum mismatch in test_labels.npy" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tiny_imagenet", "imagenet"])
def test_missing_dataset_names_the_prepare_command(tmp_path, name):
    with pytest.raises(BenchError, match=rf"python -m bench.data prepare {name} --from PATH"):
        resolve(name, tmp_path, None, download=True)


def test_offline_download_failure_names_the_prepare_command(tmp_path):
    with pytest.raises(BenchError, match=r"python -m bench.data prepare cifar10 --from PATH"):
        resolve("cifar10", tmp_path, None, download=False)


def test_interrupted_preparation_names_the_prepare_command(tmp_path):
    folder = tmp_path / "digits-sklearn"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"format_version": 1, "splits": ["train", "test"]}))
    with pytest.raises(BenchError, match="incomplete.*python -m bench.data prepare digits"):
        resolve("digits", tmp_path, None, download=True)


def test_wrong_counts_are_rejected_with_the_command(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for k in range(n):
            folder = tmp_path / "src" / split / "cat"
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32)).save(folder / f"{k}.png")
    with pytest.raises(BenchError, match=r"3 train images, expected 50,000.*prepare cifar10 --from PATH"):
        prepare_from("cifar10", tmp_path / "src", tmp_path / "data")


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["fast", "dataloader"])
def test_run_on_a_tiny_imagenet_stand_in_records_data_and_augmentation(bench, tmp_path, loader):
    source = _tiny_imagenet(tmp_path / "src")
    result = bench("dataset=tiny_imagenet", "model=small_cnn", "trainer.epochs=1", "trainer.batch_size=4",
                   "trainer.progress=false", f"dataset.source={source}", "dataset.allow_incomplete=true",
                   f"dataset.loader={loader}", "dataset.workers=0")
    (record_file,) = (bench.results / "runs").glob("*.json")
    data = json.loads(record_file.read_text())["data"]
    assert data["provenance"].startswith("tiny_imagenet-partial-") and data["complete"] is False
    assert data["loader"] == loader and data["train_examples"] == 12 and data["test_examples"] == 6
    assert data["augment"] == {"name": "random_resized_crop", "size": 64, "scale": [0.08, 1.0],
                               "ratio": [0.75, 1.3333333333333333], "flip": True}
    assert data["eval_augment"]["name"] == "resize_center_crop"
    assert data["normalization"] == {"name": "imagenet", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert "tiny_imagenet-partial-" in result.stdout


def _cifar10_release(root: Path, per_batch: int = 3) -> tuple[Path, np.ndarray]:
    """A stand-in of cifar-10-python.tar.gz's folder: pickled batches of 3072-byte rows."""
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (6 * per_batch, 3072), dtype=np.uint8)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {"data": rows[i * per_batch:(i + 1) * per_batch], "labels": [i % 10] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{k}" for k in range(10)]}))
    return folder, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def test_official_cifar_release_is_read_by_torchvision(tmp_path, monkeypatch):
    import tarfile

    import torchvision.datasets.cifar

    folder, images = _cifar10_release(tmp_path / "release")
    with pytest.raises(BenchError, match="torchvision rejects it"):  # the stand-in fails the official MD5s
        prepare_from("cifar10", folder, tmp_path / "data", allow_incomplete=True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)  # MD5s only
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    for source in (folder, archive):
        data = cache.read(prepare_from("cifar10", source, tmp_path / "data", allow_incomplete=True))
        assert data.meta["description"] == "official release read by torchvision.datasets.CIFAR10"
        assert data.tag.startswith("cifar10-partial-") and data.meta["official_md5"] is True
        assert np.array_equal(data.splits["train"].images, images[:15])
        assert np.array_equal(data.splits["test"].images, images[15:])
        assert data.splits["train"].labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3


def test_cli_prepare_and_verify_default_to_bench_data_root(tmp_path, capsys, monkeypatch):
    """Without --root, ``python -m bench.data`` uses $BENCH_DATA_ROOT, the folder training reads."""
    source, _ = _stl10(tmp_path / "stl", {"train": 2, "test": 2, "unlabeled": 1})
    root = tmp_path / "elsewhere"
    monkeypatch.setenv("BENCH_DATA_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "stl10", "--from", str(source), "--allow-incomplete"]) == 0
    (tag,) = [p.name for p in root.iterdir()]
    assert main(["verify", tag]) == 0
    assert not (tmp_path / "data").exists()
