"""trainer.amp, trainer.channels_last and trainer.compile (bench.gpu_options) on CPU: bf16 autocast only
where it applies and the record's precision says so; same numbers, recorded, validated, and a compiled
run's checkpoint holds the plain module's names and resumes."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from bench import gpu_options
from bench.data.loader import TensorLoader
from bench.errors import BenchError
from bench.identity import config_hash, protocol_deviations
from bench.trainer import FAULT_RAISE_ENV, Trainer, set_deterministic
from bench.validate import validate
from bench.workloads import LoopHooks, TrainState, workload_class
from optimizers.adas import AdaS
from optimizers.packaged import SGDP
from tests.conftest import TINY
from tests.helpers import LoaderClassification, driver_for, planned

CHANNELS_LAST = torch.channels_last


class Float64(nn.Module):
    """Casts the (float32) batch to float64, keeping its memory format."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Float64(), nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).double()


def _loader() -> TensorLoader:
    rng = np.random.default_rng(0)   # 3 channels: a 1-channel NCHW tensor is channels_last-contiguous too
    images, labels = rng.integers(0, 256, (96, 8, 8, 3), dtype=np.uint8), rng.integers(0, 3, 96)
    return TensorLoader(images, labels, batch_size=32, mean=[0.5] * 3, std=[0.25] * 3, device=torch.device("cpu"))


OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    "adas": lambda params: AdaS(params, lr=0.1, beta=0.8),       # the low-rank metric pass on NHWC weights
    "sgdp": lambda params: SGDP(params, lr=0.1, momentum=0.9),   # the adamp package's flattening views
}


def _train(optim: str, channels_last: bool) -> tuple[list[dict[str, Any]], list[torch.Tensor], set[bool]]:
    """Two epochs; the history, the final parameters and whether each batch reached the model in NHWC."""
    model = _net()
    workload = LoaderClassification(model, _loader(), _loader())
    gpu_options.prepare(workload, {"channels_last": channels_last})   # before the optimizer, as bench.run
    seen: set[bool] = set()
    model.register_forward_pre_hook(lambda _, args: seen.add(args[0].is_contiguous(memory_format=CHANNELS_LAST)))
    trainer = Trainer(workload, driver_for(OPTIMIZERS[optim](model.parameters())), seed=0, epochs=2,
                      progress=False, channels_last=channels_last)
    state = TrainState()
    trainer.fit(state, LoopHooks())
    assert model[1].weight.is_contiguous(memory_format=CHANNELS_LAST) == channels_last
    return state.history, [p.detach().clone() for p in model.parameters()], seen


def test_bf16_autocast_only_on_cuda_when_amp_is_on_and_the_precision_says_which() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")   # a device object, no GPU needed
    assert gpu_options.autocast_args(True, cuda) == {"device_type": "cuda", "dtype": torch.bfloat16, "enabled": True}
    assert not gpu_options.autocast_args(False, cuda)["enabled"] and not gpu_options.autocast_args(True, cpu)["enabled"]
    classification, sac = workload_class("classification"), workload_class("sac")
    assert gpu_options.precision({"amp": True}, cuda, classification) == "bf16-autocast"
    assert gpu_options.precision({"amp": False}, cuda, classification) == "fp32"   # a preset's fp32 protocol
    assert gpu_options.precision({"amp": True}, cpu, classification) == "fp32"
    assert gpu_options.precision({"amp": True}, cuda, sac) == "fp32"   # Stable-Baselines3's loop never autocasts


@pytest.mark.parametrize("enabled", [True, False])
def test_the_loop_runs_forward_passes_under_the_autocast_it_resolves(monkeypatch, enabled: bool) -> None:
    """With the switch resolved on (forced here, on CPU, where bf16 autocast also exists), every training
    and evaluation forward pass of the loop computes its Linear in bf16; resolved off, in fp32."""
    monkeypatch.setattr("bench.trainer.autocast_args", lambda amp, device: {
        "device_type": device.type, "dtype": torch.bfloat16, "enabled": enabled})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    dtypes: list[torch.dtype] = []
    model[1].register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    workload = LoaderClassification(model, _loader(), _loader())
    Trainer(workload, driver_for(torch.optim.SGD(model.parameters(), lr=0.1)), seed=0, epochs=1,
            progress=False).fit(TrainState(), LoopHooks())
    assert len(dtypes) == 6 and set(dtypes) == {torch.bfloat16 if enabled else torch.float32}   # 3 train, 3 eval
    assert model[1].weight.dtype == torch.float32   # autocast casts the computation, never the parameters


def test_deterministic_mode_sets_what_cuda_needs(monkeypatch) -> None:
    """trainer.deterministic on CUDA needs cuBLAS's fixed workspace (set before any CUDA work, kept if the
    user set one), deterministic algorithms and cuDNN without autotuning; off, cuDNN may autotune."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        set_deterministic(True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        set_deterministic(True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
        set_deterministic(False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    finally:   # this process's other tests see PyTorch's settings as they were
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


@pytest.mark.parametrize("optim", sorted(OPTIMIZERS))
def test_channels_last_trains_to_the_same_numbers(optim: str) -> None:
    """In float64 a different summation order in the NHWC kernels moves results by ~1e-15 relative;
    rtol 1e-7 leaves seven orders of margin, while any change of the computation (a mixed-up layout,
    a wrong flattening) moves them by percent. The hook proves the NHWC path ran."""
    want, want_params, plain = _train(optim, channels_last=False)
    got, got_params, nhwc = _train(optim, channels_last=True)
    assert plain == {False} and nhwc == {True}
    for key in ("train_loss", "test_loss", "train_acc1", "test_acc1"):
        assert np.allclose([r[key] for r in got], [r[key] for r in want], rtol=1e-7, atol=0), key
    for a, b in zip(got_params, want_params):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-12)


def test_compile_keeps_the_plain_module_for_state_and_names() -> None:
    """The compiled wrapper (built lazily: nothing compiles here) shares the model's parameters; the
    workload's state_dict and named_parameters keep the plain names."""
    model = _net()
    workload = LoaderClassification(model, _loader(), _loader())
    trainer = Trainer(workload, driver_for(torch.optim.SGD(model.parameters(), lr=0.1)), seed=0, epochs=1,
                      progress=False, compile=True)
    assert trainer.forward is not model and trainer.forward._orig_mod is model
    assert [p for p in trainer.forward.parameters()] == list(model.parameters())
    assert list(workload.state_dict()["model"]) == list(_net().state_dict())
    assert not any("_orig_mod" in name for name, _ in workload.model.named_parameters())


def test_settings_are_off_by_default_and_enter_the_identity_only_when_on() -> None:
    off = planned(*TINY)
    assert (off["trainer"]["channels_last"], off["trainer"]["compile"]) == (False, False)
    trainer = {k: v for k, v in off["trainer"].items() if k not in gpu_options.KEYS}
    assert config_hash(off, "tag") == config_hash({**off, "trainer": trainer}, "tag")   # old run ids stay
    for override, key, value in (("trainer.channels_last=true", "trainer.channels_last", True),
                                 ("trainer.compile=max-autotune", "trainer.compile", "max-autotune")):
        on = planned(*TINY, override)
        validate(on)
        assert config_hash(on, "tag") != config_hash(off, "tag")
        assert protocol_deviations(on)[key] == [False, value]


@pytest.mark.parametrize("override, message", [
    ("trainer.compile=fast", "trainer.compile must be one of false, true, reduce-overhead, max-autotune"),
    ("trainer.compile=1", "trainer.compile must be one of false, true"),
    ("trainer.channels_last=1", "trainer.channels_last must be true or false, got 1"),
    ("trainer.channels_last=yes", "trainer.channels_last must be true or false, got 'yes'"),
])
def test_bad_values_are_one_clear_error(override: str, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        validate(planned(*TINY, override))


@pytest.mark.parametrize("workload, key", [("nqm", "channels_last"), ("sac", "channels_last"), ("sac", "compile")])
def test_workloads_without_the_setting_refuse_it(workload: str, key: str) -> None:
    cfg = {"trainer": {key: True}}
    with pytest.raises(BenchError, match=f"trainer.{key} applies to .*the {workload} workload does not have; "
                                         f"pass trainer.{key}=false"):
        gpu_options.check(cfg, workload_class(workload))
    gpu_options.check({"trainer": {key: False}}, workload_class(workload))


def _record(results: Path) -> dict[str, Any]:
    (path,) = (results / "runs").glob("*.json")
    return json.loads(path.read_text())


def test_a_channels_last_run_records_the_setting_as_a_deviation(bench) -> None:
    bench(*TINY, "trainer.epochs=1", "trainer.channels_last=true")
    record = _record(bench.results)
    assert record["status"] == "finished"
    assert (record["config"]["trainer"]["channels_last"], record["config"]["trainer"]["compile"]) == (True, False)
    assert record["protocol"]["deviations"]["trainer.channels_last"] == [False, True]
    assert record["config"]["trainer"]["amp"] is True and record["precision"] == "fp32"   # amp is CUDA-only


@pytest.mark.slow
def test_a_compiled_run_checkpoints_plain_names_resumes_and_matches_eager(bench) -> None:
    """torch.compile on CPU (inductor builds C++ with gcc: about a minute). A crash in epoch 2 leaves
    epoch 1's checkpoint; its keys are the plain module's; the relaunch resumes and finishes with the
    eager run's numbers (inductor may fuse and reorder float32 reductions: rtol 1e-4)."""
    settings = [*TINY, "trainer.steps_per_epoch=4"]
    crashed = bench(*settings, "trainer.compile=true", home="compiled", env={FAULT_RAISE_ENV: "6"}, check=False)
    assert crashed.returncode != 0 and "injected fault" in crashed.stderr
    (ckpt,) = (bench.results.parent / "compiled" / "runs").glob("*/checkpoint.pt")
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    keys = list(saved["workload"]["model"])
    assert keys and not any("_orig_mod" in key for key in keys), keys[:3]
    resumed = bench(*settings, "trainer.compile=true", home="compiled")
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    eager = bench(*settings, home="eager")
    assert "finished:" in eager.stdout
    got, want = _record(bench.results.parent / "compiled" / "results"), _record(bench.results.parent / "eager" / "results")
    assert got["status"] == "finished" and got["config"]["trainer"]["compile"] is True
    for key in ("train_loss", "test_loss"):
        assert np.allclose([r[key] for r in got["history"]], [r[key] for r in want["history"]], rtol=1e-4), key
