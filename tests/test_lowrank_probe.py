"""``probe=lowrank`` (``bench.probes``): low-rank metrics of the conv weights each epoch for any optimizer,
equal to the metrics AdaS/RMSGD compute for themselves, never changing the training, plotted by
``bench.figures.adas_layers``, nothing computed while off; config checks; one CLI run."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from bench.figures.adas_layers import layer_series
from bench.probes import LowRankProbe, build_probes
from bench.schedules import Constant
from bench.trainer import Trainer
from bench.validate import validate
from bench.workloads import LoopHooks, TrainState
from optimizers import AdaS, RMSGD
from optimizers.lowrank_metrics import LowRankMetrics
from optimizers.protocol import Driver
from tests.conftest import ROOT, TINY
from tests.helpers import LoaderClassification, planned
from tests.test_trainer import _loader


def conv_net() -> nn.Module:
    """Three convs whose weights are a planted rank-2 part plus noise (at random init EVBMF keeps
    nothing, so every metric would be 0)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3),
                          nn.ReLU(), nn.Conv2d(8, 8, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        for w in (p for p in model.parameters() if p.dim() == 4):
            low = torch.randn(w.shape[0], 2) @ torch.randn(2, w[0].numel())
            w.copy_(0.3 * low.view_as(w) + 0.05 * torch.randn_like(w))
    return model


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, probe: bool, epochs: int = 3) -> list[dict]:
    """The shared epoch loop on 8x8 images, with or without the probe; the history."""
    probes = {"model": {"lowrank": LowRankProbe(model)}} if probe else None
    driver = Driver({"model": (optimizer, Constant())}, probes=probes)
    workload = LoaderClassification(model, _loader(48, 16), _loader(20, 10, shuffle=False))
    state = TrainState()
    Trainer(workload, driver, seed=0, epochs=epochs, progress=False).fit(state, LoopHooks())
    return state.history


def test_any_optimizer_gets_the_metrics_of_its_final_weights_and_trains_the_same() -> None:
    probed, plain = conv_net(), conv_net()
    history = fit(probed, torch.optim.Adam(probed.parameters(), lr=1e-2), probe=True)
    untouched = fit(plain, torch.optim.Adam(plain.parameters(), lr=1e-2), probe=False)
    for a, b in zip(probed.parameters(), plain.parameters()):
        assert torch.equal(a, b)                                   # measuring never changes the run
    assert all("lowrank" not in row for row in untouched)
    last = history[-1]["lowrank"]
    convs = [w for w in probed.parameters() if w.dim() == 4]
    expected = LowRankMetrics().compute(convs)                    # the metrics module on the final weights
    assert [layer["index"] for layer in last["layers"]] == [0, 4, 6]
    assert [layer["shape"] for layer in last["layers"]] == [list(w.shape) for w in convs]
    for layer, metrics in zip(last["layers"], expected):
        for key in ("kg", "condition", "in_kg", "out_kg", "in_rank", "out_rank", "q"):
            assert layer[key] == pytest.approx(metrics[key], rel=1e-6)
    assert last["Q"] == pytest.approx(LowRankMetrics.quality(expected), rel=1e-6)
    assert all(layer["kg"] > 0 for layer in last["layers"])        # something to measure
    assert len({json.dumps(row["lowrank"]) for row in history}) == 3   # one measurement per epoch


@pytest.mark.parametrize("make", [lambda params: AdaS(params, lr=0.05, variant="pypi"),
                                  lambda params: RMSGD(params, lr=0.05, variant="pypi")])
def test_on_adas_and_rmsgd_the_probe_logs_what_they_compute_themselves(make) -> None:
    """Same metric options (p 1, tall unfoldings transposed, Gram route) and same layer order: the
    probe's per-layer values and Q equal the optimizer's own log, epoch by epoch."""
    model = conv_net()
    history = fit(model, make(model.parameters()), probe=True)
    assert all(layer["kg"] > 0 for row in history for layer in row["lowrank"]["layers"])
    for row in history:
        own, probe = row["optim"], row["lowrank"]
        assert probe["Q"] == own["Q"]
        assert [{k: v for k, v in layer.items() if k != "lr"} for layer in own["layers"]] == probe["layers"]


def test_nothing_is_computed_while_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, weights):
        raise AssertionError("low-rank metrics computed without a probe")

    monkeypatch.setattr(LowRankMetrics, "compute", refuse)
    model = conv_net()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.05), probe=False, epochs=1)
    assert build_probes(None, {"model": model}) == {}


def test_the_layer_figure_reads_a_probed_run_of_any_optimizer(tmp_path: Path) -> None:
    model = conv_net()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.05), probe=True)
    epochs, series = layer_series({"history": history})
    assert epochs == [1, 2, 3]
    assert series["lr"] == [[0.05] * 3] * 3                          # every layer at the group's LR
    assert series["kg"] == [[row["lowrank"]["layers"][j]["kg"] for row in history] for j in range(3)]
    with pytest.raises(BenchError, match="probe=lowrank"):
        layer_series({"history": [{k: v for k, v in row.items() if k != "lowrank"} for row in history]})


def test_a_model_without_conv_weights_is_refused_unless_linear() -> None:
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    temperature = nn.ParameterDict({"log_alpha": nn.Parameter(torch.zeros(1))})
    with pytest.raises(BenchError, match="pass probe.linear=true or drop probe=lowrank"):
        build_probes({"name": "lowrank"}, {"actor": mlp, "temperature": temperature})
    probes = build_probes({"name": "lowrank", "linear": True}, {"actor": mlp, "temperature": temperature})
    assert list(probes) == ["actor"] and len(probes["actor"]["lowrank"].epoch_log()["layers"]) == 2
    with pytest.raises(BenchError, match="probe lowrank: .*see conf/probe/lowrank.yaml"):
        build_probes({"name": "lowrank", "svd": "magic"}, {"actor": copy.deepcopy(mlp)})


@pytest.mark.parametrize(("override", "message"), [
    ("probe.p=3", "probe.p must be one of 1, 2"),
    ("probe.tall=wide", "probe.tall must be one of transpose, reference"),
])
def test_bad_probe_options_are_one_error_line(override: str, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        validate(planned(*TINY, "probe=lowrank", override))


def test_off_by_default_so_run_ids_do_not_change() -> None:
    assert "probe" not in planned(*TINY)
    assert planned(*TINY, "probe=lowrank")["probe"]["name"] == "lowrank"


@pytest.mark.slow
def test_a_cli_run_of_sgd_with_the_probe_records_and_plots_the_layers(bench, tmp_path: Path) -> None:
    bench(*TINY, "probe=lowrank")
    (path,) = (bench.results / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert record["optim"] == "sgd" and record["config"]["probe"]["name"] == "lowrank"
    assert all(len(row["lowrank"]["layers"]) == 2 for row in record["history"])      # small_cnn: 2 convs
    out = tmp_path / "layers.png"
    subprocess.run([sys.executable, "-m", "bench.figures", "adas_layers", str(path), "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stat().st_size > 0
