"""Issue 13: the SimCLR workload (lightly) with its linear probe, the DeiT recipe for ViT-Tiny (timm),
and the paper's optimizers on both with ``debug=smoke``."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.data import transforms
from bench.data.cache import Split
from bench.data.workers import WorkerLoader
from bench.errors import BenchError
from bench.optim_factory import parameter_groups
from bench.workloads.classification import MixupLoader
from bench.workloads.simclr import knn_accuracy, linear_probe, strip_classifier
from tests.helpers import planned
from tests.test_data_layouts import _stl10

# PS Table 3's rows (Table 2's methods) and Table 4's
TABLE3 = ["sgd", "sps", "dog", "dadapt_sgd", "adam", "cocob", "ldog", "dadapt_adam", "prodigy", "ps_sps", "ps_dasgd"]
TABLE4 = ["adamw", "dadapt_adam", "prodigy", "ps_dasgd"]
LR_FREE = {"sps", "dog", "dadapt_sgd", "ldog", "dadapt_adam", "prodigy", "ps_sps", "ps_dasgd"}
# test_workloads.py already smoke-runs every preset with sgd, adas, sam, ps_sps and dog
NOT_YET = [o for o in TABLE3 if o not in ("sgd", "ps_sps", "dog")]
PROBE = {"epochs": 30, "batch_size": 16, "lr": 0.05, "weight_decay": 0.0}


def _clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well separated Gaussian clusters in 8 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.eye(8)[:3] * 10
    return centres[labels] + torch.randn(n, 8, generator=generator), labels


# ------------------------------------------------------------------------------- SimCLR parts
def test_linear_probe_learns_separable_features_reproducibly_without_touching_the_rngs() -> None:
    train, test = _clusters(60, 0), _clusters(30, 1)
    before = torch.random.get_rng_state()
    first = linear_probe(train, test, 3, PROBE, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert first["probe_acc1"] == 100.0 and first["probe_loss"] < 0.5
    assert linear_probe(train, test, 3, PROBE, seed=3) == first
    shuffled = (train[0], train[1][torch.randperm(60)])  # labels unrelated to features: no better than chance
    assert linear_probe(shuffled, test, 3, PROBE, seed=3)["probe_acc1"] < 80.0


def test_knn_monitor_on_clusters_and_a_bank_smaller_than_k() -> None:
    train, test = _clusters(12, 0), _clusters(9, 1)
    assert knn_accuracy(train, test, 3, k=200, t=0.1) == 100.0  # k capped at the 12 bank entries
    wrong = (train[0], (train[1] + 1) % 3)
    assert knn_accuracy(wrong, test, 3, k=3, t=0.1) == 0.0


def test_backbone_loses_its_classifier_or_the_error_names_the_fix() -> None:
    from models import create_model

    backbone, width = strip_classifier(create_model("resnet18", num_classes=10, width=16))
    assert width == 128 and backbone(torch.zeros(2, 3, 32, 32)).shape == (2, 128)
    with pytest.raises(BenchError, match="model=resnet18"):
        strip_classifier(nn.Sequential(nn.Conv2d(3, 4, 3)))


@pytest.mark.slow
def test_simclr_needs_two_views_and_a_fixed_probe(bench) -> None:
    for override, fix in (("dataset/augment=crop_flip", "dataset/augment=simclr"),
                          ("workload.probe.optimizer=sgd", "fixed to adam")):
        result = bench("+experiment=simclr_cifar10", "debug=smoke", override, check=False)
        assert result.returncode != 0 and fix in result.stderr


# ------------------------------------------------------------------------------- DeiT parts
def test_embed_kind_matches_timms_no_weight_decay_groups() -> None:
    import timm
    from timm.optim import param_groups_weight_decay

    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=4, num_classes=10)
    ours = parameter_groups(model, ["bn", "bias", "embed"])
    theirs = param_groups_weight_decay(model, 0.05, no_weight_decay_list=model.no_weight_decay())
    exempt = {id(p) for p in ours[1]["params"]}
    assert exempt == {id(p) for g in theirs if g["weight_decay"] == 0.0 for p in g["params"]}
    assert {n for n, p in model.named_parameters() if id(p) in exempt} >= {"pos_embed", "cls_token"}
    assert len(parameter_groups(model, ["bn", "bias"])[1]["params"]) == len(exempt) - 2


def test_mixup_loader_gives_soft_targets_and_refuses_an_odd_batch() -> None:
    class Loader:
        batch_size, examples_per_epoch = 4, 8

        def __len__(self) -> int:
            return 2

        def epoch(self, epoch: int):
            for _ in range(2):
                yield torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])

    options = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "label_smoothing": 0.1}
    (inputs, targets), _ = list(MixupLoader(Loader(), options, 5).epoch(1))
    assert inputs.shape == (4, 3, 8, 8) and targets.shape == (4, 5)
    assert torch.allclose(targets.sum(1), torch.ones(4)) and (targets > 0).all()  # smoothed
    Loader.batch_size = 3
    with pytest.raises(BenchError, match="even trainer.batch_size"):
        MixupLoader(Loader(), options, 5)


def test_deit_randaugment_survives_zero_bit_posterize_as_old_pillow() -> None:
    from PIL import Image

    image = Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8))
    assert np.asarray(transforms._posterize(image, 0)).max() == 0  # Pillow < 13: keep 0 bits = black
    assert np.asarray(transforms._posterize(image, 4)).max() == 192
    transform = transforms.train_transform("timm", {"auto_augment": "rand-m10-n4-inc1"}, 32, [0.5] * 3, [0.5] * 3)
    for seed in range(20):  # magnitude 10: PosterizeIncreasing asks for 0 bits
        random.seed(seed)
        assert transform(Image.fromarray(np.full((32, 32, 3), 100, dtype=np.uint8))).shape == (3, 32, 32)


def test_library_transforms_drawing_from_python_and_numpy_are_reproducible_per_image() -> None:
    def noisy(image):
        return torch.tensor([random.random(), float(np.random.random_sample())])

    images = np.zeros((6, 4, 4, 3), dtype=np.uint8)
    loader = WorkerLoader(Split(images, np.zeros(6, dtype=np.int64)), noisy, batch_size=3,
                          device=torch.device("cpu"), workers=0)
    random.seed(1)
    np.random.seed(1)
    state = random.getstate(), np.random.get_state()[1].copy()
    first = [x for x, _ in loader.epoch(2)]
    assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])  # restored
    assert all(torch.equal(a, b) for a, b in zip(first, (x for x, _ in loader.epoch(2)), strict=True))
    assert torch.unique(torch.cat(first)[:, 0]).numel() == 6  # a distinct draw for each image


def test_optim_protocol_reaches_the_optimizers_that_have_its_settings() -> None:
    """Table 4's weight decay and the estimated-LR log go to whichever optimizer runs; the command line wins."""
    for optim, log_every in (("prodigy", 100), ("adamw", None), ("ps_dasgd", 100)):
        cfg = planned("+experiment=ps_vit_tiny_imagenet_wd", f"optim={optim}")
        settings = cfg["roles"]["model"]["optim"]
        assert settings["hparams"].get("log_lr_every") == log_every and settings["hparams"]["weight_decay"] == 0.05
        assert settings["no_weight_decay"] == ["bn", "bias", "embed"] and "optim_protocol" not in cfg
    cfg = planned("+experiment=ps_vit_tiny_imagenet_wd", "optim=prodigy", "optim.hparams.weight_decay=0.1")
    assert cfg["roles"]["model"]["optim"]["hparams"]["weight_decay"] == 0.1
    cfg = planned("+experiment=ps_simclr_stl10", "optim=dog", "optim.hparams.log_lr_every=7")
    assert cfg["roles"]["model"]["optim"]["hparams"]["log_lr_every"] == 7
    assert planned("+experiment=ps_vit_tiny_imagenet", "optim=dog")["roles"]["model"]["optim"]["no_weight_decay"] == []


def test_vit_presets_follow_deit() -> None:
    cfg = planned("+experiment=ps_vit_tiny_imagenet_wd")
    optim = cfg["roles"]["model"]["optim"]
    assert optim["name"] == "adamw" and optim["hparams"]["lr"] == 1e-3 and optim["hparams"]["weight_decay"] == 0.05
    assert optim["no_weight_decay"] == ["bn", "bias", "embed"]
    assert cfg["roles"]["model"]["schedule"] == {"name": "warmup_cosine", "warmup_epochs": 5, "min_factor": 0.01}
    assert cfg["workload"]["mixup"]["label_smoothing"] == 0.1 and cfg["model"]["drop_path_rate"] == 0.1
    table3 = planned("+experiment=ps_vit_tiny_imagenet")["roles"]["model"]["optim"]
    assert table3["name"] == "adam" and table3["hparams"]["weight_decay"] == 0.0
    cifar = planned("+experiment=vit_tiny_cifar10")
    assert (cifar["model"]["patch_size"], cifar["dataset"]["image_size"]) == (4, 32)


# ------------------------------------------------------------------------------- end to end
def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("preset,optims", [("ps_simclr_stl10", NOT_YET), ("ps_vit_tiny_imagenet", NOT_YET),
                                            ("ps_vit_tiny_imagenet_wd", TABLE4)])
def test_the_papers_optimizers_run_with_debug_smoke(bench, preset: str, optims: list[str]) -> None:
    """Each optimizer of PS Table 3 (4) on the preset: finished, throughput and estimated LRs logged.
    32 px stand-in images keep this cheap (test_workloads.py runs the presets at their own size)."""
    small = ["dataset.image_size=32"] + (["dataset.eval_augment.resize=32", "dataset.eval_augment.crop=32"]
                                         if "vit" in preset else [])
    bench("--multirun", f"+experiment={preset}", f"optim={','.join(optims)}", "debug=smoke", *small,
          "optim_protocol.hparams.log_lr_every=1", env={"OMP_NUM_THREADS": "1"}, timeout=1800)
    records = {r["optim"]: r for r in _records(bench.results)}
    assert sorted(records) == sorted(optims)
    for name, record in records.items():
        assert record["status"] == "finished", (name, record.get("error"))
        last = record["history"][-1]
        assert last["train_images_per_s"] > 0 and record["primary"]["metric"] in last
        if name in LR_FREE:  # the estimated LR after each of the epoch's 2 steps
            assert [step for step, _ in last["optim"]["est_lr_steps"]] == [3, 4]
    if preset == "ps_simclr_stl10":
        assert {"test_knn_acc1", "test_probe_acc1", "test_probe_loss"} <= set(last)
        assert record["primary"]["metric"] == "test_probe_acc1"


@pytest.mark.slow
def test_simclr_on_stl10_files_in_the_official_binary_layout(bench, tmp_path: Path) -> None:
    """The STL-10 preset on generated files in the official ``stl10_binary`` layout (torchvision's
    reader), pre-training on train+unlabeled; the record names the partial (generated) copy."""
    source, _ = _stl10(tmp_path / "stl", {"train": 16, "test": 8, "unlabeled": 16})
    bench("+experiment=ps_simclr_stl10", f"dataset.source={source}", "dataset.allow_incomplete=true",
          "dataset.workers=0", "trainer.epochs=1", "trainer.batch_size=8", "trainer.eval_batch_size=8",
          "trainer.progress=false", "workload.probe.epochs=2", env={"OMP_NUM_THREADS": "1"})
    (record,) = _records(bench.results)
    assert record["status"] == "finished" and record["data"]["provenance"].startswith("stl10-partial-")
    assert record["data"]["official_md5"] is False  # generated files, not the official release
    assert record["data"]["train_examples"] == 32 and record["data"]["probe_examples"] == 16
    assert len(record["history"]) == 1 and record["history"][0]["step"] == 4  # drop_last: 32 / 8
    assert record["best"]["metric"] == "test_probe_acc1"
