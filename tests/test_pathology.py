"""MHIST and ADP-Release1 (RMSGD Tables 4 and 6) on SYNTHETIC copies in the official layouts
(bench.data.stand_in.write_mhist / write_adp): readers, provenance, multi-label metrics, test AUC,
the presets' smoke runs, and the errors a user sees."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch import nn

from bench.data.pathology import ADP_L3ONLY, read_adp, read_mhist
from bench.data.prepare import prepare_from, resolve
from bench.data.stand_in import write_adp, write_mhist
from bench.errors import BenchError
from tests.conftest import ROOT
from bench.workloads.classification import AUCEvaluator, auroc, multilabel_correct

MHIST_LABELS = {"train": ["HP", "SSA", "SSA", "HP", "SSA"], "test": ["SSA", "HP", "HP"]}


def _adp_labels(n: int = 12) -> np.ndarray:
    labels = np.random.default_rng(3).integers(0, 2, (n, len(ADP_L3ONLY)))
    labels[-2:] = [[1] * len(ADP_L3ONLY), [0] * len(ADP_L3ONLY)]  # every label positive and negative in test
    return labels


ADP_SPLITS = {"train": [0, 1, 2, 3, 4, 5, 6], "valid": [8, 7], "test": [11, 9, 10]}


def test_mhist_reader_labels_splits_and_pixels(tmp_path):
    source = write_mhist(tmp_path / "mhist", MHIST_LABELS, size=16)
    splits, classes = read_mhist(source)
    assert classes == ["HP", "SSA"]
    assert splits["train"].labels.tolist() == [0, 1, 1, 0, 1] and splits["test"].labels.tolist() == [1, 0, 0]
    assert splits["test"].images.shape == (3, 16, 16, 3)
    second_test = np.asarray(Image.open(source / "images" / "MHIST_006.png"))  # rows are numbered in CSV order
    np.testing.assert_array_equal(splits["test"].images[1], second_test)


def test_adp_reader_takes_l3only_columns_in_split_order(tmp_path):
    labels = _adp_labels()
    source = write_adp(tmp_path / "adp", labels, ADP_L3ONLY[::-1], ADP_SPLITS, size=8)  # columns reversed on disk
    splits, classes = read_adp(source)
    assert classes == ADP_L3ONLY and len(ADP_L3ONLY) == 22  # the paper's 22 classes
    for split, index in ADP_SPLITS.items():
        np.testing.assert_array_equal(splits[split].labels, labels[index][:, ::-1])
    image = np.asarray(Image.open(source / "ADP V1.0 Release" / "img_res_1um_bicubic" / "009.png_crop_9.png"))
    np.testing.assert_array_equal(splits["test"].images[1], image)


def test_generated_copy_is_recorded_as_synthetic(tmp_path):
    source = write_adp(tmp_path / "adp", _adp_labels(), ADP_L3ONLY, ADP_SPLITS, size=8)
    folder = prepare_from("adp", source, tmp_path / "data", allow_incomplete=True)
    meta = json.loads((folder / "meta.json").read_text())
    assert folder.name.startswith("adp-stand-in-") and meta["complete"] is False and meta["multi_label"] is True
    assert meta["source"]["kind"] == "generated" and meta["source"]["generator"] == "bench.data.stand_in.write_adp"
    assert meta["class_counts"]["test"] == _adp_labels()[ADP_SPLITS["test"]].sum(axis=0).tolist()
    assert meta["sizes"] == {"train": 7, "valid": 2, "test": 3}


def test_real_looking_copy_is_not_synthetic(tmp_path):
    source = write_mhist(tmp_path / "mhist", MHIST_LABELS, size=16)
    (source / "BENCH_STAND_IN.json").unlink()
    folder = prepare_from("mhist", source, tmp_path / "data", allow_incomplete=True)
    meta = json.loads((folder / "meta.json").read_text())
    assert folder.name.startswith("mhist-partial-") and meta["source"]["kind"] == "local"


def test_binary_auc_matches_sklearn_and_hand_value():
    # sklearn's documented example: scores 0.1, 0.4, 0.35, 0.8 for labels 0, 0, 1, 1 give AUC 0.75.
    scores, targets = torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])
    logits = torch.stack([torch.zeros(4), scores], dim=1)  # the evaluator scores the class-1 output
    evaluator = AUCEvaluator(lambda lg, t: {"n": torch.tensor(float(len(t)))}, auroc(2, False), False)
    evaluator.update(nn.Identity(), logits[:2], targets[:2])  # two batches: the AUC is over the whole set
    evaluator.update(nn.Identity(), logits[2:], targets[2:])
    assert evaluator.compute()["auc"] == pytest.approx(75.0)
    assert roc_auc_score(targets.numpy(), scores.numpy()) == pytest.approx(0.75)


def test_multilabel_auc_is_sklearn_macro():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, (40, 5))
    targets[:2] = [[0] * 5, [1] * 5]
    logits = torch.from_numpy(rng.normal(size=(40, 5)) + targets).float()
    evaluator = AUCEvaluator(lambda lg, t: {}, auroc(5, True), True)
    evaluator.update(nn.Identity(), logits, torch.from_numpy(targets))
    expected = 100 * roc_auc_score(targets, logits.numpy(), average="macro")
    assert evaluator.compute()["auc"] == pytest.approx(expected, abs=1e-4)


def test_auc_needs_two_classes_or_labels():
    with pytest.raises(BenchError, match="workload.auc needs two classes"):
        auroc(10, False)


def test_multilabel_accuracy_is_per_label():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0], [-1.0, -1.0, -1.0, -1.0]])
    targets = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]])
    sums = multilabel_correct(logits, targets)
    assert float(sums["acc1"]) == pytest.approx(100 * 3 / 4 + 100)  # 3 of 4 labels right, then 4 of 4
    assert float(sums["exact"]) == pytest.approx(100)


@pytest.mark.parametrize("name", ["mhist", "adp"])
def test_missing_copy_names_the_option(tmp_path, name):
    with pytest.raises(BenchError, match=rf"prepare {name} --from PATH \(or pass dataset.source=PATH\)"):
        resolve(name, tmp_path, None, download=True)


@pytest.mark.parametrize("name", ["mhist", "adp"])
def test_wrong_folder_names_the_option(tmp_path, name):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="dataset.source must be the"):
        prepare_from(name, tmp_path / "empty", tmp_path / "data")


def test_missing_source_folder_is_one_error(bench, tmp_path):
    result = bench("+experiment=rmsgd_mhist", "debug=smoke", f"dataset.source={tmp_path / 'absent'}", check=False)
    assert result.returncode != 0
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert "dataset.source" in line and "does not exist" in line


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["rmsgd_mhist", "rmsgd_adp"])
def test_preset_smoke_on_generated_copy_logs_test_auc(bench, tmp_path, preset):
    if preset == "rmsgd_mhist":
        source = write_mhist(tmp_path / "src", {"train": ["HP", "SSA"] * 4, "test": ["SSA", "HP"] * 2})
    else:
        source = write_adp(tmp_path / "src", _adp_labels(), ADP_L3ONLY, ADP_SPLITS)
    bench(f"+experiment={preset}", "debug=smoke", f"dataset.source={source}", "dataset.allow_incomplete=true",
          "trainer.device=cpu")
    (record_file,) = (bench.results / "runs").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "finished" and record["protocol"]["reduced"] is True
    assert record["data"]["source"]["kind"] == "generated" and "-stand-in-" in record["data"]["provenance"]
    assert all(0 <= row["test_auc"] <= 100 for row in record["history"]) and len(record["history"]) == 2
    smoke_batch = yaml.safe_load((ROOT / "conf" / "debug" / "smoke.yaml").read_text())["set"]["trainer.batch_size"]
    assert record["config"]["trainer"]["batch_size"] == smoke_batch != 32  # debug=smoke's, over the preset's 32
