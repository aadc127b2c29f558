"""AdaS and RMSGD: learning-rate rules and parameter grouping checked by hand (metrics mocked, so
each expected value is a two-line computation), the inner step against torch.optim.SGD, resume, and
the CLI smoke runs."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from bench.optim_factory import parameter_groups
from models.resnet_cifar import ResNet, BasicBlock
from optimizers import AdaS, RMSGD
from tests.conftest import TINY

LR, BETA = 0.03, 0.8


def layer(in_kg: float, out_kg: float) -> dict:
    zeros = {f"{m}_{k}": 0.0 for m in ("in", "out") for k in ("condition", "kappa", "rank", "stable_rank")}
    return {"in_kg": in_kg, "out_kg": out_kg, "in_failed": False, "out_failed": False, **zeros}


def mock_gains(optimizer, gains):
    """Replace the metric pass: ``gains(t, j) -> (in_kg, out_kg)`` of analysed layer j after epoch t."""
    calls = {"t": 0}

    def compute(weights):
        t = calls["t"]
        calls["t"] += 1
        return [layer(*gains(t, j)) for j in range(len(weights))]

    optimizer.metrics.compute = compute


def lr_of(optimizer, param) -> float:
    return optimizer.param_lr[param]


def vgg16(num_classes: int = 10) -> nn.Sequential:
    """kuangliu/pytorch-cifar VGG16 (AdaS A11): conv3x3 with bias, BN, ReLU; max-pools; Linear(512, C)."""
    layers, channels = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers, nn.AvgPool2d(1, 1), nn.Flatten(), nn.Linear(512, num_classes))


def resnet(blocks: list[int]) -> ResNet:
    return ResNet(BasicBlock, blocks, num_classes=10, width=4)


# ------------------------------------------------------------------------ learning-rate rules
def test_adas_paper_code_rule_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 4, 3, bias=False), nn.BatchNorm2d(4),
                          nn.Flatten(), nn.Linear(4, 2))
    opt = AdaS(model.parameters(), lr=LR, beta=BETA)
    mock_gains(opt, lambda t, j: (0.1 * (j + 1) * t, 0.05 * (j + 1) * t))
    opt.end_epoch(1)                       # t = 0: velocity lr from eta = 0 -> eta = lr
    assert opt.layer_lrs() == pytest.approx([LR] * 8)
    opt.end_epoch(2)                       # t = 1: eta = beta lr + (G_1 - G_0), G = (in + out) / 2
    conv0, conv1 = BETA * LR + 0.075, BETA * LR + 0.15
    fc = BETA * LR + 0.1                   # last conv's OUTPUT gain change: 0.05 * 2 * (1 - 0)
    assert opt.layer_lrs() == pytest.approx([conv0, conv0, conv0, conv1, conv1, conv1, fc, fc])
    opt.end_epoch(3)
    assert lr_of(opt, model[2].weight) == pytest.approx(BETA * conv1 + 0.15)
    assert lr_of(opt, model[5].bias) == pytest.approx(BETA * fc + 0.1)
    log = opt.epoch_log()
    assert [entry["index"] for entry in log["layers"]] == [0, 3]
    assert log["fc_lr"] == pytest.approx(BETA * fc + 0.1)


def test_adas_floor_and_paper_text_variant():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    opt = AdaS(model.parameters(), lr=LR, beta=BETA)
    mock_gains(opt, lambda t, j: (0.5 - 0.5 * t, 0.5 - 0.5 * t))
    opt.end_epoch(1)
    opt.end_epoch(2)                       # beta lr - 0.5 < 0 -> min_lr 1e-20
    assert opt.layer_lrs()[0] == 1e-20
    text = AdaS(model.parameters(), lr=LR, beta=BETA, variant="paper_text")
    mock_gains(text, lambda t, j: (0.2 * (t + 1), 0.1 * (t + 1)))
    text.end_epoch(1)                      # Eq. (8) with G(0) = 0: beta lr + (G_1 - 0)
    assert text.layer_lrs()[0] == pytest.approx(BETA * LR + 0.15)
    text.end_epoch(2)
    assert text.layer_lrs()[0] == pytest.approx(BETA * (BETA * LR + 0.15) + 0.15)


def test_rmsgd_paper_branch_rule_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3),
                          nn.Flatten(), nn.Linear(4, 2))
    beta, gamma = 0.98, 0.98
    opt = RMSGD(model.parameters(), lr=LR, beta=beta)    # the branch's zeta decay: x0.98 every epoch
    assert [entry["shape"][2] for entry in opt.epoch_log()["layers"]] == [3, 3]    # 1x1 not analysed
    # layer 0 learns from t = 1 on; layer 1 stays at gain 0 (not ready) through t = 2
    mock_gains(opt, lambda t, j: ((0.2 * t, 0.2 * t) if j == 0 else (0.0, 0.0) if t < 3 else (0.1, 0.1)))
    opt.end_epoch(1)                       # t = 0: delta = lr, v = 0 -> lr
    assert opt.layer_lrs() == pytest.approx([LR] * 10)
    opt.end_epoch(2)                       # t = 1: zeta = 0.98; layer 0 leaves not_ready ...
    v0 = beta * LR + gamma * 0.2
    v1 = beta * LR                         # ... and the references' remove-while-iterating skips
    lrs = opt.layer_lrs()                  # layer 1's hold this epoch: delta = 0 - 0
    assert lrs[:6] == pytest.approx([v0] * 6)   # conv0 w, b; bn w, b; the 1x1 conv w, b inherit
    assert lrs[6:] == pytest.approx([v1] * 4)   # conv3 w, b; linear w, b inherit from conv3
    opt.end_epoch(3)                       # t = 2: zeta = 0.98^2; layer 1 held: delta = lr - beta v
    zeta = gamma**2
    assert opt.layer_lrs()[0] == pytest.approx(beta * v0 + zeta * 0.2)
    assert opt.layer_lrs()[-1] == pytest.approx(beta * v1 + zeta * (LR - beta * v1))
    opt.end_epoch(4)                       # t = 3: layer 1 has a gain: leaves not_ready
    assert opt.sched["not_ready"] == []
    floor = RMSGD(model.parameters(), lr=LR, beta=beta)
    mock_gains(floor, lambda t, j: (1.0 - 0.9 * t, 1.0 - 0.9 * t))
    floor.end_epoch(1)
    floor.end_epoch(2)
    assert floor.layer_lrs()[0] == 1e-10


def test_rmsgd_pypi_variant_starts_at_one_plus_beta_lr():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4, 2))
    opt = RMSGD(model.parameters(), lr=LR, beta=0.98, variant="pypi")
    assert len(opt.epoch_log()["layers"]) == 1                  # 1x1 analysed in rmsgd 1.0.2
    mock_gains(opt, lambda t, j: (0.0, 0.0))
    opt.end_epoch(1)
    assert opt.layer_lrs()[0] == pytest.approx((1 + 0.98) * LR)


@pytest.mark.parametrize(("changes", "gamma", "step"), [
    ({}, 0.98, 1),                                                        # paper_branch: released configs
    ({"variant": "paper_text"}, 1.0, None),                               # the paper: no decay
    ({"variant": "pypi"}, 1.0, None),                                     # rmsgd 1.0.2 defaults
    ({"variant": "paper_text", "zeta_decay_gamma": 0.9, "zeta_decay_step": 2}, 0.9, 2),   # asked for
    ({"zeta_decay_gamma": 1.0}, 1.0, 1),                                  # switched off
])
def test_rmsgd_zeta_decay_is_the_variants_unless_set(changes, gamma, step):
    """Built from conf/optim/rmsgd.yaml: paper_text never keeps the code's decay; zeta after epoch t is
    gamma ** (number of t in 1..t-1 divisible by step), and the log names the rule in force."""
    from bench.optim_factory import build_optimizer
    from tests.test_optim_conformance import load_config

    cfg = load_config("rmsgd")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(16, 2))
    opt = build_optimizer(model, {**cfg, "hparams": {**cfg["hparams"], **changes}})
    mock_gains(opt, lambda t, j: (0.1 * t, 0.1 * t))
    for epoch in range(1, 6):
        opt.end_epoch(epoch)
        decays = sum(1 for t in range(1, epoch) if step and t % step == 0)
        assert opt.epoch_log()["zeta"] == pytest.approx(gamma**decays)
    assert opt.epoch_log()["zeta_decay"] == {"gamma": gamma, "step": step}


# ------------------------------------------------------------------------ grouping
def gains_by_layer(t: int, j: int) -> tuple[float, float]:
    return 0.001 * (j + 1) * t, 0.002 * (j + 1) * t


def two_epochs(opt):
    mock_gains(opt, gains_by_layer)
    opt.end_epoch(1)
    opt.end_epoch(2)
    return lambda j: BETA * LR + 0.0015 * (j + 1)    # LR of conv slot j after t = 1


def test_resnet18_grouping():
    model = resnet([2, 2, 2, 2])
    adas = AdaS(model.parameters(), lr=LR, beta=BETA)
    slot = two_epochs(adas)
    assert len(adas.analysed) == 20
    assert lr_of(adas, model.bn1.bias) == pytest.approx(slot(0))
    assert lr_of(adas, model.layer2[0].shortcut[0].weight) == pytest.approx(slot(7))   # own block
    assert lr_of(adas, model.layer2[0].shortcut[1].weight) == pytest.approx(slot(7))   # its BN
    assert lr_of(adas, model.layer2[1].bn1.bias) == pytest.approx(slot(8))
    fc = BETA * LR + 0.002 * 20                                    # last conv's output gain
    assert lr_of(adas, model.linear.weight) == lr_of(adas, model.linear.bias) == pytest.approx(fc)
    rms = RMSGD(model.parameters(), lr=LR, beta=BETA, zeta_decay_gamma=1.0)
    slot = two_epochs(rms)                                         # shortcut 1x1 convs not analysed
    assert len(rms.analysed) == 17
    assert lr_of(rms, model.layer2[0].shortcut[0].weight) == pytest.approx(slot(6))  # = layer2[0].conv2
    assert lr_of(rms, model.layer2[1].conv1.weight) == pytest.approx(slot(7))
    assert lr_of(rms, model.linear.weight) == pytest.approx(slot(16))                 # last conv


def test_resnet34_grouping():
    model = resnet([3, 4, 6, 3])
    adas = AdaS(model.parameters(), lr=LR, beta=BETA)
    slot = two_epochs(adas)
    assert len(adas.analysed) == 36
    assert lr_of(adas, model.layer3[0].shortcut[0].weight) == pytest.approx(slot(18))
    assert lr_of(adas, model.layer3[5].bn2.weight) == pytest.approx(slot(28))
    assert lr_of(adas, model.layer4[2].conv2.weight) == pytest.approx(slot(35))
    assert lr_of(adas, model.linear.bias) == pytest.approx(BETA * LR + 0.002 * 36)


def test_vgg16_grouping():
    model = vgg16()
    adas = AdaS(model.parameters(), lr=LR, beta=BETA)
    slot = two_epochs(adas)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(adas.analysed) == 13
    assert lr_of(adas, convs[4].bias) == pytest.approx(slot(4))            # conv bias follows its conv
    assert lr_of(adas, model[list(model).index(convs[12]) + 1].weight) == pytest.approx(slot(12))   # its BN
    assert lr_of(adas, model[-1].weight) == pytest.approx(BETA * LR + 0.002 * 13)


def test_several_parameter_groups_keep_the_layer_assignment():
    model = resnet([2, 2, 2, 2])
    single = AdaS(model.parameters(), lr=LR, beta=BETA)
    groups = parameter_groups(model, ["bn", "bias"])
    assert len(groups) == 2
    split = AdaS(groups, lr=LR, beta=BETA, weight_decay=5e-4)
    two_epochs(single)
    two_epochs(split)
    assert split.layer_lrs() == single.layer_lrs()
    assert lr_of(split, model.layer1[0].bn2.weight) == lr_of(single, model.layer1[0].conv2.weight)
    assert split.param_groups[1]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="param_order"):
        AdaS([{"params": g["params"]} for g in groups], lr=LR)


# ------------------------------------------------------------------------ inner step and resume
def sgd_pair(optimizer_cls, group_lr: float = LR, **kwargs):
    """Three steps of ``optimizer_cls`` (its group LR set to ``group_lr``) and of torch SGD at ``group_lr``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 2))
    twin = copy.deepcopy(model)
    groups = parameter_groups(model, ["bn"])
    ours = optimizer_cls(groups, lr=LR, momentum=0.9, weight_decay=5e-4, **kwargs)
    reference = torch.optim.SGD(parameter_groups(twin, ["bn"]), lr=group_lr, momentum=0.9, weight_decay=5e-4,
                                nesterov=kwargs.get("nesterov", False))
    for group in ours.param_groups:
        group["lr"] = group_lr              # what StepLR / AutoDrop do
    x, y = torch.randn(8, 3, 6, 6), torch.randint(0, 2, (8,))
    for _ in range(3):
        for m, opt in ((model, ours), (twin, reference)):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
    return model, twin, ours


@pytest.mark.parametrize("cls,kwargs", [(AdaS, {}), (RMSGD, {}), (AdaS, {"variant": "pypi", "nesterov": True})])
def test_step_is_momentum_sgd_while_the_lrs_are_equal(cls, kwargs):
    model, twin, _ = sgd_pair(cls, **kwargs)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cls", [AdaS, RMSGD])
def test_group_lr_multiplies_the_per_layer_rates(cls):
    """A schedule halving group["lr"] halves every layer's step (issue 11 item 1: it was ignored) and
    the logged per-layer rates are the effective ones; the unscheduled run stays momentum SGD at lr."""
    model, twin, ours = sgd_pair(cls, group_lr=LR / 2)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)
    assert ours.layer_lrs() == [LR / 2] * len(ours.layer_lrs())
    mock_gains(ours, gains_by_layer)
    ours.end_epoch(1)
    assert [entry["lr"] for entry in ours.epoch_log()["layers"]] == [
        float(f"{lr / 2:.7g}") for lr in ours.sched["slot_lr"][:len(ours.analysed)]]


def test_sutskever_form_equals_sgd_at_constant_lr():
    model, twin, _ = sgd_pair(AdaS, variant="paper_text")
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_state_dict_round_trip(tmp_path):
    model = resnet([2, 2, 2, 2])
    opt = RMSGD(parameter_groups(model, ["bn"]), lr=LR, momentum=0.9)
    two_epochs(opt)
    x = torch.randn(2, 3, 8, 8)
    model(x).sum().backward()
    opt.step()
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    fresh = RMSGD(parameter_groups(model, ["bn"]), lr=LR, momentum=0.9)
    fresh.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=False))
    assert fresh.layer_lrs() == opt.layer_lrs() and fresh.sched == opt.sched
    assert fresh.sched["epoch"] == 2 and fresh.layer_lrs()[0] != LR


# ------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("optim", ["adas", "rmsgd"])
def test_cli_run_logs_per_layer_metrics(bench, optim):
    bench(*TINY, f"optim={optim}", "optim.no_weight_decay=[bn,bias]")
    record = json.loads(next((bench.results / "runs").glob("*.json")).read_text())
    assert record["status"] == "finished" and record["config"]["optim"]["class_name"] in ("AdaS", "RMSGD")
    layers = record["history"][-1]["optim"]["layers"]
    assert len(layers) == 2 and {"lr", "kg", "in_kg", "out_condition", "q"} <= set(layers[0])


# ------------------------------------------------------------------------ figure
def test_adas_layers_figure(tmp_path):
    from bench.errors import BenchError
    from bench.figures.__main__ import main as figures
    from bench.figures.adas_layers import layer_series

    layers = lambda e: [{"lr": 0.03 + 0.01 * e * j, "kg": 0.1 * e, "condition": 1.0 + e} for j in range(3)]
    record = {"run_id": "x", "history": [{"epoch": e, "lr": [0.03], "optim": {"layers": layers(e)}}
                                         for e in (1, 2, 3)]}
    epochs, series = layer_series(record)
    assert epochs == [1, 2, 3]
    assert series["lr"][2] == [0.03, 0.03 + 0.02, 0.03 + 0.04]     # the LR each epoch trained with
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    assert figures(["adas_layers", str(path), "--out", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(BenchError, match="per-layer"):
        layer_series({"history": [{"epoch": 1, "lr": [0.1]}]})


def test_failed_factorisation_fallbacks():
    """AdaS 2020 code: a failed unfolding takes the previous layer's value; the packages: the same
    layer's value of the previous epoch (0 in the first)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.Conv2d(4, 4, 3, bias=False), nn.Flatten(),
                          nn.Linear(4, 2))
    failing = [[layer(0.2, 0.4), {**layer(0.9, 0.9), "out_failed": True}],
               [layer(0.3, 0.5), {**layer(0.8, 0.7), "out_failed": True}]]
    adas = AdaS(model.parameters(), lr=LR)
    adas.metrics.compute = lambda weights: [dict(d) for d in failing[adas.sched["epoch"]]]
    adas.end_epoch(1)
    assert adas.sched["layers"][1]["out_kg"] == 0.4 and adas.sched["layers"][1]["kg"] == pytest.approx(0.65)
    pypi = AdaS(model.parameters(), lr=LR, variant="pypi")
    pypi.metrics.compute = lambda weights: [dict(d) for d in failing[pypi.sched["epoch"]]]
    pypi.end_epoch(1)
    assert pypi.sched["layers"][1]["out_kg"] == 0.0                 # first epoch: 0
    pypi.sched["layers"][1]["out_kg"] = 0.6                        # pretend epoch 1 had succeeded
    pypi.end_epoch(2)
    assert pypi.sched["layers"][1]["out_kg"] == 0.6 and pypi.sched["layers"][1]["in_kg"] == 0.8
