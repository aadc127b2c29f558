"""Issue 14: the segmentation workload (ADE20K reader on a generated copy, joint augmentation, mIoU from
one confusion matrix, whole/slide inference), SegNeXt-T and UPerNet + Swin-T (sizes, pretrained
weights), the head LR multiplier, poly warm-up, and debug=smoke with every optimizer of PS Table 3."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from bench.data.segmentation import (SegPipeline, list_ade20k, random_crop, reduce_zero_label, rescale_size)
from bench.errors import BenchError
from bench.optim_factory import build_driver
from bench.schedules import poly_factor
from bench.workloads.batch import _swapped
from bench.workloads.segmentation import MIoUEvaluator, Segmentation, slide_logits, whole_logits
from models import create_model
from models.segnext import MSCAN
from tests.helpers import planned

# every optimizer of PS Table 3's rows (SGD as sgd_nowd: the paper ran none on these columns)
PAPER_OPTIMS = "sgd_nowd,sps,dog,dadapt_sgd,adam,cocob,ldog,dadapt_adam,prodigy,ps_sps,ps_dasgd"
PRESETS = ("ps_upernet_swin_t_ade20k", "ps_segnext_t_ade20k")
SMALL = ("debug=smoke", "trainer.device=cpu")


def write_ade20k(root: Path, sizes: dict[str, int], seed: int = 0) -> Path:
    """A generated ADE20K copy in the official layout (JPEG images, PNG masks holding 0..150)."""
    rng = np.random.default_rng(seed)
    base = root / "ADEChallengeData2016"
    for folder, n in sizes.items():
        for kind in ("images", "annotations"):
            (base / kind / folder).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            stem = f"ADE_{'train' if folder == 'training' else 'val'}_{i:08d}"
            h, w = int(rng.integers(40, 80)), int(rng.integers(40, 80))
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(base / "images" / folder / f"{stem}.jpg")
            Image.fromarray(rng.integers(0, 151, (h, w), dtype=np.uint8)).save(base / "annotations" / folder / f"{stem}.png")
    return root


# ----------------------------------------------------------------------------------------- mIoU
class FixedLogits(nn.Module):
    """Ignores its input: one-hot logits of the predictions it holds, one image per call."""

    def __init__(self, predictions: list[torch.Tensor], num_classes: int) -> None:
        super().__init__()
        self.predictions, self.num_classes = list(predictions), num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = self.predictions.pop(0)
        logits = nn.functional.one_hot(pred, self.num_classes).permute(2, 0, 1).float()[None]
        return nn.functional.pad(logits, (0, x.shape[-1] - pred.shape[1], 0, x.shape[-2] - pred.shape[0]))


def test_miou_is_accumulated_over_the_set_and_matches_a_hand_computation() -> None:
    """Two 1x8 images, 4 classes (3 never occurs), ignore 255. Over both images the confusion matrix
    (rows: label, columns: prediction) is [[3,1,0],[2,4,0],[0,0,0]], so IoU_0 = 3/6, IoU_1 = 4/7 and class
    2 (absent everywhere) is left out: mIoU = (1/2 + 4/7) / 2 = 53.5714 %, pixel accuracy 7/10. The mean
    of the two per-image mIoUs would differ (image 1 alone: IoU_0 = 3/4, IoU_1 = 0/1 -> 37.5 %)."""
    labels = [torch.tensor([[0, 0, 0, 0, 255, 255, 255, 255]]), torch.tensor([[1, 1, 1, 1, 1, 1, 255, 255]])]
    preds = [torch.tensor([[0, 0, 0, 1, 2, 1, 0, 1]]), torch.tensor([[1, 1, 1, 1, 0, 0, 0, 1]])]
    evaluator = MIoUEvaluator({"mode": "whole", "size_divisor": 8}, num_classes=4, ignore_index=255)
    model = FixedLogits(preds, 4)
    for label in labels:
        evaluator.update(model, torch.zeros(1, 3, 1, 8), label[None])
    metrics = evaluator.compute()
    assert metrics["miou"] == pytest.approx(100 * (1 / 2 + 4 / 7) / 2, abs=1e-4)
    assert metrics["acc"] == pytest.approx(70.0, abs=1e-4)


def test_slide_inference_of_a_pointwise_model_equals_whole_inference() -> None:
    torch.manual_seed(0)
    model = nn.Conv2d(3, 5, 1)
    image = torch.randn(1, 3, 37, 53)
    with torch.no_grad():
        slide = slide_logits(model, image, crop=16, stride=11, num_classes=5)
        assert torch.allclose(slide, model(image), atol=1e-6)
        assert torch.allclose(whole_logits(model, image, 32), model(image), atol=1e-6)


# ------------------------------------------------------------------------------- data and augmentation
def test_ade20k_reader_on_a_generated_copy_in_the_official_layout(tmp_path: Path) -> None:
    write_ade20k(tmp_path, {"training": 3, "validation": 2})
    splits = list_ade20k(tmp_path)
    assert (len(splits["train"]), len(splits["test"])) == (3, 2)
    image, mask = splits["test"].load(0)
    assert image.shape[:2] == mask.shape and image.shape[2] == 3 and mask.max() <= 150
    (tmp_path / "ADEChallengeData2016" / "annotations" / "validation" / "ADE_val_00000002.png").unlink()
    with pytest.raises(BenchError, match="1 masks missing"):
        list_ade20k(tmp_path)
    with pytest.raises(BenchError, match="official layout"):
        list_ade20k(tmp_path / "nowhere")


def test_labels_and_the_mmseg_resize_and_crop_rules() -> None:
    assert reduce_zero_label(np.array([0, 1, 150], dtype=np.uint8), 255).tolist() == [255, 0, 149]
    assert rescale_size(375, 500, (2048, 512)) == (512, 683)   # short side to 512
    assert rescale_size(200, 2000, (2048, 512)) == (205, 2048)  # long side capped at 2048
    # a 64x64 mask: left half class 1, right quarter class 2; only windows holding both classes, with
    # class 1 under 75%, are kept when one exists within 10 draws
    mask = np.zeros((64, 64), dtype=np.int64)
    mask[:, :48] = 1
    mask[:, 48:] = 2
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, crop = random_crop(np.zeros((64, 64, 3)), mask, 32, 0.75, 255, rng)
        counts = np.bincount(crop.ravel(), minlength=3)
        assert counts[2] > 0.25 * crop.size or counts.max() == crop.size  # accepted, or 10 failed draws


def test_training_pipeline_moves_image_and_mask_together() -> None:
    """Pixel value = label: after resize, crop, flip and padding, each pixel still sits on its label."""
    pipe = SegPipeline(train=True, scale=(64, 32), ratio_range=(0.5, 2.0), crop=32, cat_max_ratio=0.75, flip=0.5,
                       photometric=False, mean=(0, 0, 0), std=(1, 1, 1), ignore_index=255, reduce_zero_label=False)
    labels = np.kron(np.arange(12).reshape(3, 4), np.ones((16, 16))).astype(np.uint8)  # 48x64 blocks
    image = np.repeat(labels[:, :, None] * 20, 3, axis=2).astype(np.uint8)
    for seed in range(6):
        tensor, target = pipe(image, labels, np.random.default_rng(seed))
        assert tensor.shape == (3, 32, 32) and target.shape == (32, 32)
        valid = target != 255
        inner = valid & (nn.functional.max_pool2d(valid[None, None].float().neg(), 3, 1, 1)[0, 0] == -1)
        block = torch.nn.functional.max_pool2d(target[None, None].float(), 3, 1, 1)[0, 0] == \
            -torch.nn.functional.max_pool2d(-target[None, None].float(), 3, 1, 1)[0, 0]
        keep = inner & block  # away from label borders (bilinear image vs nearest mask) and padding
        assert keep.sum() > 100 and torch.equal(tensor[0][keep], target[keep].float() * 20)
        assert (tensor[0][~valid] == 0).all()


# ---------------------------------------------------------------------------------------- models
def test_segnext_t_has_the_papers_size_and_loads_the_authors_checkpoint(tmp_path: Path) -> None:
    """SegNeXt paper: SegNeXt-T 4.3 M parameters (Table 2, ADE20K); MSCAN-T 4.2 M (Table 1, with its
    1000-class ImageNet classifier on the 256-channel stage 4)."""
    model = create_model("segnext_t", num_classes=150)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 4.3
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert round((backbone + 256 * 1000 + 1000) / 1e6, 1) == 4.2
    source = MSCAN()
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()} | {"head.weight": torch.zeros(1000, 256)}
    torch.save({"state_dict": state}, tmp_path / "mscan_t.pth")
    loaded = create_model("segnext_t", num_classes=150, pretrained_path=str(tmp_path / "mscan_t.pth"))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[key], value), key
    torch.save({"state_dict": {"patch_embed1.proj.0.weight": torch.zeros(16, 3, 3, 3)}}, tmp_path / "bad.pth")
    with pytest.raises(BenchError, match="lacks"):
        create_model("segnext_t", pretrained_path=str(tmp_path / "bad.pth"))


def test_upernet_swin_t_has_the_swin_papers_size_and_loads_timm_weights(tmp_path: Path) -> None:
    """Swin paper Table 3 (ADE20K): UperNet + Swin-T, 60 M parameters (aux head included)."""
    import timm

    source = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    torch.save({"model": source.state_dict()}, tmp_path / "swin_t.pth")
    model = create_model("upernet_swin_t", num_classes=150, pretrained_path=str(tmp_path / "swin_t.pth"))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == 60
    encoder = model.backbone.model
    assert torch.equal(encoder.layers_3.blocks[1].mlp.fc2.weight, source.layers[3].blocks[1].mlp.fc2.weight)
    model.train()
    logits, aux = model(torch.randn(2, 3, 64, 96))
    assert logits.shape == aux.shape == (2, 150, 64, 96) and model.aux_weight == 0.4


@pytest.mark.parametrize("preset", PRESETS)
def test_a_missing_pretrained_file_is_one_error_naming_the_option(preset: str, tmp_path: Path) -> None:
    cfg = planned(f"+experiment={preset}", *SMALL, f"model.pretrained_path={tmp_path / 'missing.pth'}")
    with pytest.raises(BenchError, match=r"model\.pretrained_path .*missing\.pth does not exist; pass model\.pretrained_path="):
        Segmentation.locate_data(cfg)


def test_the_checkpoints_sha256_enters_the_record_and_the_runs_hash(tmp_path: Path) -> None:
    torch.save({"state_dict": MSCAN().state_dict()}, tmp_path / "mscan_t.pth")
    cfg = planned("+experiment=ps_segnext_t_ade20k", *SMALL, f"model.pretrained_path={tmp_path / 'mscan_t.pth'}")
    tag, (_, _, pretrained) = Segmentation.locate_data(cfg)
    from bench.data.cache import sha256
    assert pretrained["sha256"] == sha256(tmp_path / "mscan_t.pth")
    assert tag == f"ade20k-stand-in+pretrained-{pretrained['sha256'][:12]}"


# ---------------------------------------------------------------------------- roles and schedules
def test_the_head_lr_multiplier_is_a_recorded_role_setting(one_thread) -> None:
    cfg = planned("+experiment=ps_segnext_t_ade20k", *SMALL)
    assert cfg["roles"]["head"]["lr_mult"] == 10.0 and "lr_mult" not in cfg["roles"]["backbone"]
    workload = Segmentation(cfg, torch.device("cpu"))
    lrs = build_driver(workload, cfg).lrs()
    assert lrs["head"][0] == pytest.approx(10 * lrs["backbone"][0])
    assert build_driver(workload, planned("+experiment=ps_segnext_t_ade20k", *SMALL, "roles.head.lr_mult=1")).lrs() \
        == {"backbone": lrs["backbone"], "head": lrs["backbone"]}
    sps = planned("+experiment=ps_segnext_t_ade20k", *SMALL, "optim=sps")
    assert sps["planned"]["roles.head.lr_mult"] == "not applied: sps has no lr hyper-parameter"
    with pytest.raises(BenchError, match="roles.head.lr_mult must be a number > 0"):
        from bench.validate import validate
        validate(planned("+experiment=ps_segnext_t_ade20k", *SMALL, "roles.head.lr_mult=0"))


def test_poly_with_warm_up_by_hand() -> None:
    """mmseg 1.x: LinearLR(1e-6 -> 1 over 1,500 steps), then PolyLR(power 1) over the other 158,500;
    mmseg 0.x (mmcv): the whole run's poly curve, scaled by 1 - (1 - k/1500)(1 - 1e-6) in the warm-up."""
    f = poly_factor
    assert f(0, 160_000, 1.0, 0.0, 1500, 1e-6) == pytest.approx(1e-6)
    assert f(750, 160_000, 1.0, 0.0, 1500, 1e-6) == pytest.approx(1e-6 + (1 - 1e-6) * 0.5)
    assert f(1500, 160_000, 1.0, 0.0, 1500, 1e-6) == 1.0
    assert f(1500 + 158_500 // 2, 160_000, 1.0, 0.0, 1500, 1e-6) == pytest.approx(0.5, abs=1e-5)
    assert f(160_000, 160_000, 1.0, 0.0, 1500, 1e-6) == 0.0
    assert f(750, 160_000, 1.0, 0.0, 1500, 1e-6, "mmcv0") == pytest.approx((1 - 750 / 160_000) * (1 - 0.5 * (1 - 1e-6)))
    assert f(80_000, 160_000, 1.0, 0.0, 1500, 1e-6, "mmcv0") == pytest.approx(0.5)
    assert f(40, 100, 2.0, 0.0) == pytest.approx(0.36)  # no warm-up: plain poly, as before


def test_each_roles_averaged_module_is_evaluated_in_place() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    averaged = nn.Linear(2, 2)
    swapped = _swapped(model, {id(model[1][0]): averaged})
    assert swapped[1][0] is averaged and swapped[0] is model[0] and model[1][0] is not averaged
    assert _swapped(model, {}) is model


# ------------------------------------------------------------------------------------ debug=smoke
@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_debug_smoke_runs_every_optimizer_of_the_paper(bench, preset: str) -> None:
    """The issue's done-when: both presets with debug=smoke for each optimizer of PS Table 3's rows."""
    bench("--multirun", f"+experiment={preset}", f"optim={PAPER_OPTIMS}", *SMALL, env={"OMP_NUM_THREADS": "1"})
    records = [json.loads(p.read_text()) for p in sorted((bench.results / "runs").glob("*.json"))]
    assert sorted(r["optim"] for r in records) == sorted(PAPER_OPTIMS.split(","))
    for record in records:
        assert record["status"] in ("finished", "diverged"), record.get("error")
        assert record["workload"] == "segmentation" and record["primary"] == {"metric": "test_miou", "mode": "max"}
        assert record["protocol"]["reduced"] is True and record["data"]["provenance"] == "ade20k-stand-in"
        assert set(record["optimizers"]) == {"backbone", "head"}
        if record["status"] == "finished":
            assert 0 <= record["final"]["value"] <= 100 and "lr/head" in record["history"][-1]
