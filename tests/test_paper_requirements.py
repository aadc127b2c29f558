"""What each paper's tables need, in one place: every optimizer, schedule, model and workload config
and every per-(optimizer, model) value must exist AND build. A missing one is a red test here, not a surprise
during a sweep. The lists come from the papers' notes (../shared/papers/notes/<paper>.md, sections
"Experiments" and "Baselines"); methods owned by other issues are listed too."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
import optimizers
from bench import CONF_DIR
from bench.optim_factory import build_optimizer
from bench.schedules import build_schedule
from bench.workloads import WORKLOADS
from models import create_model
from tests.helpers import composed, planned

torch.set_num_threads(1)

REQUIREMENTS: dict[str, dict[str, list[str]]] = {
    # AdaS Table 1, Figs. 3-5 (notes/adas.md 2.1, 2.2, 4): SGD-StepLR (x0.5 / 25 epochs; 15 on ImageNet),
    # AdaGrad 1e-2, RMSProp 3e-4, AdaM 3e-4, AdaBound 1e-3, SLS; the beta sweep is optim.hparams.beta;
    # VGG16 (BN), ResNet18/34, ResNeXt (29_1x64d HEAD, 29_2x64d June code), DenseNet (growth-12
    # "DenseNet121CIFAR", and growth 32); ImageNet ResNet34 (Fig. 5) and ResNet18 (Fig. 1).
    "adas": {
        "optim": ["adas", "sgd", "adam", "adagrad", "rmsprop", "adabound", "sls"],
        "schedule": ["step", "constant"],
        "model": ["vgg16_bn", "resnet18", "resnet34", "resnext29_1x64d", "resnext29_2x64d", "densenet_cifar",
                  "densenet121", "tv_resnet34", "tv_resnet18"],
        "per_model": ["adas@vgg16_bn", "adas@vgg16"],
    },
    # RMSGD Tables 1-8 (notes/rmsgd.md 2.3, 2.4, 4): every baseline with StepLR(25, 0.5) and wd 5e-4;
    # CIFAR ResNet18/34/50/101, ResNeXt29_1x64d, and with cutout MobileNetV2, SENet18, EfficientNetB0,
    # ShuffleNetV2; VGG16 for the beta ablation; ImageNet MobileNetV2 and ResNet50.
    "rmsgd": {
        "optim": ["rmsgd", "sgd", "sam", "sgdp", "adamp", "adam_rmsgd", "adabound_rmsgd", "adagrad_rmsgd",
                  "adabelief", "sls"],
        "schedule": ["step"],
        "model": ["resnet18", "resnet34", "resnet50", "resnet101", "resnext29_1x64d", "mobilenetv2", "senet18",
                  "efficientnetb0", "shufflenetv2", "vgg16_bn", "tv_mobilenet_v2", "tv_resnet50"],
    },
    # AutoDrop Tables 1-2, Figs. 1-3 (notes/autodrop.md 2, 4): MultiStep baselines (CIFAR [60,120,160] x0.2,
    # ImageNet [30,60,90] x0.1), constant-LR Nesterov SGD, the AutoDrop schedule on the same optimizer;
    # CIFAR ResNet18/34, WRN-28-10/40-10 (lr 0.1 without Nesterov), torchvision ResNet18; the NQM.
    "autodrop": {
        "optim": ["sgd_nesterov", "sgd_imagenet", "gd"],
        "schedule": ["multistep", "autodrop", "autodrop_nqm", "angle_probe_nqm", "constant"],
        "model": ["resnet18", "resnet34", "wrn28_10", "wrn40_10", "tv_resnet18"],
        "per_model": ["sgd_nesterov@wrn28_10", "sgd_nesterov@wrn40_10"],
        "workload": ["nqm"],
    },
    # AdaLip Tables 2-5 (notes/adalip.md 2, 4): the three methods and their TF-Keras-default baselines;
    # the networks of Tables 6-8.
    "adalip": {
        "optim": ["sgd_keras", "adam_keras", "rmsprop_keras", "adalip", "adamlip", "rmslip",
                  "adalip_u", "adamlip_u", "rmslip_u"],  # -U: Appendix C
        "model": ["adalip_mnist", "adalip_cifar10", "adalip_cifar100"],
    },
    # PS-SPS / PS-DA-SGD Tables 3-4 (notes/ps-lrfree.md 2, 4): hand-tuned SGD and Adam without weight
    # decay, AdamW with it (Table 4, DeiT's warm-up + cosine), the LR-free methods; CIFAR-100 ResNet-32
    # and VGG-19 without BN, ViT-Tiny. (The RL, segmentation and SSL columns need other workloads.)
    "ps": {
        "optim": ["sgd_nowd", "adam", "adamw", "sps", "ps_sps", "ps_dasgd", "dog", "ldog", "dadapt_sgd", "dadapt_adam",
                  "prodigy", "cocob"],
        "schedule": ["warmup_cosine", "cosine"],
        "model": ["resnet32", "vgg19", "vit_tiny_patch16_224"],
        "workload": ["classification"],
    },
}

CASES = [(paper, kind, name) for paper, needs in REQUIREMENTS.items() for kind, names in needs.items() for name in names]


def check_optim(name: str, *overrides: str) -> None:
    assert (CONF_DIR / "optim" / f"{name}.yaml").is_file(), f"conf/optim/{name}.yaml is missing"
    cfg = planned("dataset=digits", "model=small_cnn", f"optim={name}", *overrides)
    assert hasattr(optimizers, cfg["optim"]["class_name"]), f"optimizers.{cfg['optim']['class_name']} is not importable"
    optimizer = build_optimizer(create_model("small_cnn", num_classes=2, in_channels=1), cfg["optim"])  # AdaS: convs
    build_schedule(optimizer, 10, 5, **cfg["schedule"])


def check_schedule(name: str) -> None:
    assert (CONF_DIR / "schedule" / f"{name}.yaml").is_file(), f"conf/schedule/{name}.yaml is missing"
    check_optim("sgd", f"schedule={name}")


def check_model(name: str) -> None:
    assert (CONF_DIR / "model" / f"{name}.yaml").is_file(), f"conf/model/{name}.yaml is missing"
    cfg = composed("dataset=cifar10", f"model={name}", "optim=sgd")
    options = {k: v for k, v in cfg["model"].items() if k != "name"}
    model = create_model(cfg["model"]["name"], num_classes=10, in_channels=3, **options)
    assert sum(p.numel() for p in model.parameters()) > 0


def check_per_model(name: str) -> None:
    optim, model = name.split("@")
    check_model(model)
    values = yaml.safe_load((CONF_DIR / "optim" / f"{optim}.yaml").read_text())["per_model"][model]
    hparams = planned("dataset=cifar10", f"model={model}", f"optim={optim}")["optim"]["hparams"]
    assert {k: hparams[k] for k in values} == values, f"{optim}'s per_model values for {model} are not applied"


def check_workload(name: str) -> None:
    assert name in WORKLOADS and (CONF_DIR / "workload" / f"{name}.yaml").is_file()


CHECKS = {"optim": check_optim, "schedule": check_schedule, "model": check_model, "per_model": check_per_model,
          "workload": check_workload}


@pytest.mark.parametrize("paper, kind, name", CASES, ids=[f"{p}-{k}-{n}" for p, k, n in CASES])
def test_paper_needs_are_present_and_build(paper: str, kind: str, name: str) -> None:
    CHECKS[kind](name)


def test_requirements_cover_every_config() -> None:
    """Every optimizer and schedule config in the tree belongs to some paper (or is a documented generic extra)."""
    extras = {"sgd_plain"}  # a generic comparator named by the issue, in no paper table
    listed = {n for needs in REQUIREMENTS.values() for n in needs.get("optim", [])}
    present = {p.stem for p in Path(CONF_DIR / "optim").glob("*.yaml")}
    assert present - listed - extras == set()
    schedules = {n for needs in REQUIREMENTS.values() for n in needs.get("schedule", [])} | {"auto", "poly"}
    assert {p.stem for p in Path(CONF_DIR / "schedule").glob("*.yaml")} - schedules == set()  # poly: segmentation
