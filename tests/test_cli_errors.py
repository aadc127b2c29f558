"""Bad input: one ``error:`` line naming the fix, a non-zero exit, no traceback, no record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import CONF_DIR
from bench.errors import BenchError
from bench.validate import validate
from tests.conftest import TINY
from tests.helpers import planned


def _assert_clean_failure(result, *fragments: str) -> None:
    assert result.returncode != 0
    err_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1, result.stderr
    assert err_lines[0].startswith("error: ")
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in err_lines[0], err_lines[0]


def _no_records(bench) -> None:
    runs = bench.results / "runs"
    assert not runs.exists() or not list(runs.glob("*.json"))


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["trainer.epochz=3"], ["unknown config option 'trainer.epochz'", "--cfg job"]),
        (["+experiment=no_such_preset"], ["unknown experiment 'no_such_preset'", "cifar100_resnet34"]),
        (["optim=no_such_optim"], ["unknown optim 'no_such_optim'", "sgd"]),
        (["optim.hparams.lr=-0.1"], ["optim.hparams.lr must be a non-negative number", "optim.hparams.lr="]),
        (["trainer.epochs=0"], ["trainer.epochs must be a positive integer"]),
        (["optim.class_name=NotImplementedYet"], ["optimizer sgd is not available yet", "optim="]),
        (["dataset=cifar10", "dataset.download=false"], ["not prepared", "python -m bench.data prepare cifar10"]),
        (["dataset=cifar10", "dataset.source=/no/such/cifar10.tar.xz"], ["does not exist"]),
        (["schedule=no_such_schedule"], ["unknown schedule 'no_such_schedule'", "step"]),
        (["workload=no_such_workload"], ["unknown workload 'no_such_workload'", "classification"]),
        (["+roles.actor.optim.name=adam"], ["has no parameter role 'actor'", "model"]),
        (["trainer.steps_per_epoch=0"], ["trainer.steps_per_epoch must be a positive integer"]),
        (["optim.hparams.lr=nan"], ["optim.hparams.lr must be a non-negative number, got nan"]),
        (["model=adalip_cifar10"], ["model adalip_cifar10 does not fit dataset digits (1x8x8 images)", "model="]),
        (["dataset.num_classes=5"], ["dataset.num_classes is 5 but digits-sklearn has 10 classes",
                                     "dataset.num_classes=10"]),
        (["workload=nqm", "optim=adas"], ["AdaS has nothing to adapt", "no trainable conv (4-D) weights"]),
        (["++model.no_such_option=1"], ["cannot build run", "(nothing was written): TypeError", "no_such_option"]),
        (["optim=sgd,no_such_optim", "--multirun"], ["unknown optim 'no_such_optim'"]),
    ],
)
def test_bad_input_is_one_clear_line(bench, overrides: list[str], fragments: list[str]) -> None:
    result = bench(*TINY, *overrides, check=False)
    _assert_clean_failure(result, *fragments)
    _no_records(bench)


def test_unwritable_results_directory(bench, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = bench(*TINY, f"results_dir={blocker / 'results'}", check=False)
    _assert_clean_failure(result, "results_dir must be a folder path", f"{blocker} is a file", "results_dir=")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_cuda(bench) -> None:
    result = bench(*TINY, "trainer.device=cuda", check=False)
    _assert_clean_failure(result, "trainer.device must be", "0 CUDA devices", "trainer.device=auto")
    _no_records(bench)


def test_truncated_dataset_archive(bench, tmp_path: Path) -> None:
    """A cut-off .tar.xz: one line naming the file, and nothing it unpacked is left in data_root."""
    from sklearn.datasets import load_digits
    import io, lzma, tarfile  # noqa: E401

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz", preset=0) as archive:
        for name in ("train", "test"):
            data = load_digits().images.astype("uint8").tobytes()
            info = tarfile.TarInfo(f"mnist/{name}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    truncated = tmp_path / "mnist.tar.xz"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    data_root = tmp_path / "data"
    result = bench(*TINY, "dataset=mnist", f"dataset.source={truncated}", f"data_root={data_root}", check=False)
    _assert_clean_failure(result, f"cannot read {truncated} as a mnist archive", "truncated or corrupt")
    _no_records(bench)
    assert not [p for p in data_root.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_a_bad_cell_of_a_sweep_is_reported_and_the_rest_runs(bench) -> None:
    result = bench("--multirun", "seed=0,1,-2,3", *TINY[:2], "trainer.epochs=1", *TINY[3:], check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith("error: sweep cell seed=-2: seed must be a non-negative integer")
    assert "1 cell(s) of the sweep did not finish: seed=-2 (bad input)" in errors[1] and len(errors) == 2
    runs = bench.results / "runs"
    assert sorted(json.loads(p.read_text())["seed"] for p in runs.glob("*.json")) == [0, 1, 3]


def test_card_example_runs(bench) -> None:
    """`+experiment=cifar100_resnet34 optim=adas`, shrunk to digits and one epoch, runs and records AdaS."""
    result = bench("+experiment=cifar100_resnet34", "optim=adas", *TINY[:2], "trainer.epochs=1",
                   "trainer.progress=false")
    assert "finished:" in result.stdout
    (record,) = [json.loads(p.read_text()) for p in (bench.results / "runs").glob("*.json")]
    assert (record["experiment"], record["optim"], record["protocol"]["reduced"]) == ("cifar100_resnet34", "adas", True)
    assert "layers" in record["history"][0]["optim"]  # AdaS's per-layer metrics and LRs are logged


# --------------------------------------------------------------------------- the validation table, in-process
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["seed=-2"], "seed must be a non-negative integer, got -2"),
        (["seed=1.5"], "seed must be a non-negative integer, got 1.5"),
        (["force=maybe"], "force must be true or false, got 'maybe'"),
        (["trainer.epochs=2.5"], "trainer.epochs must be a positive integer"),
        (["trainer.batch_size=-1"], "trainer.batch_size must be a positive integer"),
        (["trainer.eval_batch_size=abc"], "trainer.eval_batch_size must be a positive integer, got 'abc'"),
        (["trainer.train_subset=0"], "trainer.train_subset must be a positive integer or null"),
        (["trainer.test_subset=-5"], "trainer.test_subset must be a positive integer or null"),
        (["trainer.amp=yes"], "trainer.amp must be true or false, got 'yes'; pass trainer.amp=<true or false>"),
        (["trainer.deterministic=1"], "trainer.deterministic must be true or false, got 1"),
        (["trainer.progress=off"], "trainer.progress must be true or false"),
        (["trainer.keep_checkpoint=2"], "trainer.keep_checkpoint must be true or false"),
        (["trainer.divergence_check_every=0"], "trainer.divergence_check_every must be a positive integer"),
        (["trainer.device=tpu"], "trainer.device must be auto, cpu or cuda[:n]"),
        (["trainer.device=cuda:x"], "trainer.device must be auto, cpu or cuda[:n]"),
        (["optim.hparams.lr=nan"], "optim.hparams.lr must be a non-negative number, got nan"),
        (["optim.hparams.lr=inf"], "optim.hparams.lr must be a non-negative number, got inf"),
        (["optim.hparams.lr=fast"], "optim.hparams.lr must be a non-negative number, got 'fast'"),
        (["optim.hparams.momentum=1.5"], "optim.hparams.momentum must be a number >= 0 and <= 1"),
        (["optim.hparams.weight_decay=-1e-4"], "optim.hparams.weight_decay must be a non-negative number"),
        (["optim.hparams.nesterov=3"], "optim.hparams.nesterov must be true or false, got 3"),
        (["optim=adam", "optim.hparams.betas=[0.9,2.0]"],
         "optim.hparams.betas must be a list, each item a number >= 0 and <= 1"),
        (["optim=prodigy", "optim.hparams.growth_rate=nan"], "optim.hparams.growth_rate must be a number, got nan"),
        (["optim=adas", "optim.hparams.variant=7"], "optim.hparams.variant must be a string, got 7"),
        (["optim.no_weight_decay=[bn,weights]"], "optim.no_weight_decay must be a list, each item one of bn, bias"),
        (["optim=adalip", "optim.group_by=layer"], "optim.group_by must be one of module or null"),
        (["+optim@roles.model.optim=adam", "roles.model.optim.hparams.eps=-1"],
         "roles.model.optim.hparams.eps must be"),
        (["schedule=step", "schedule.step_size=0"], "schedule.step_size must be a positive integer"),
        (["schedule=step", "schedule.gamma=-0.5"], "schedule.gamma must be a number > 0"),
        (["schedule=multistep", "schedule.milestones=[10,-5]"],
         "schedule.milestones must be a list, each item a positive integer"),
        (["schedule=warmup_cosine", "schedule.min_factor=2"], "schedule.min_factor must be a number >= 0 and <= 1"),
        (["schedule=poly", "schedule.power=0"], "schedule.power must be a number > 0"),
        (["+schedule@roles.model.schedule=step", "roles.model.schedule.step_size=-1"],
         "roles.model.schedule.step_size must be a positive integer"),
        (["dataset.loader=turbo"], "dataset.loader must be one of fast, dataloader, got 'turbo'"),
        (["dataset.workers=-1"], "dataset.workers must be a non-negative integer"),
        (["dataset.download=nope"], "dataset.download must be true or false"),
        (["dataset.stand_in=3"], "dataset.stand_in must be true or false"),
        (["dataset.augment.name=nope"], "dataset.augment.name must be one of"),
        (["dataset.num_classes=0"], "dataset.num_classes must be a positive integer"),
        (["dataset.std=[0.0]"], "dataset.std must be a list, each item a number > 0"),
        (["dataset.source=/no/such/archive.tar.xz"], "dataset.source must be an existing file or folder"),
        (["model.name=nope"], "model.name must be one of"),
        (["logger.wandb.enabled=sometimes"], "logger.wandb.enabled must be true or false"),
        (["logger.wandb.mode=cloud"], "logger.wandb.mode must be one of offline, online, disabled"),
        (["workload=nqm", "workload.dim=0"], "workload.dim must be a positive integer"),
        (["workload=nqm", "workload.noise=pink"], "workload.noise must be one of identity, inverse_curvature"),
        (["workload=nqm", "workload.noise_scale=-1"], "workload.noise_scale must be a non-negative number"),
    ],
)
def test_validation_table_rejects(overrides: list[str], fragment: str) -> None:
    with pytest.raises(BenchError) as info:
        validate(planned(*TINY, *overrides))
    assert fragment in str(info.value)
    assert "; pass " in str(info.value)  # every message names the fix


@pytest.mark.parametrize("key", ["results_dir", "work_dir", "data_root", "logger.wandb.dir"])
def test_a_file_where_a_folder_is_expected(key: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for value in (blocker, blocker / "below"):
        with pytest.raises(BenchError, match=rf"{key} must be a folder path( or null)?, got .*{blocker} is a file"):
            validate(planned(*TINY, f"{key}={value}"))


def test_cuda_without_cuda_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(BenchError, match=r"trainer.device must be .*got '.*' \(this machine has 0 CUDA devices\); "
                                             r"pass trainer.device=auto"):
            validate(planned(*TINY, f"trainer.device={device}"))


def test_valid_values_pass() -> None:
    """The table accepts what the presets and users legitimately set (an infinite default, null, cpu)."""
    validate(planned(*TINY, "optim=prodigy", "optim.hparams.growth_rate=inf", "trainer.device=cpu",
                     "trainer.train_subset=null", "schedule=multistep", "schedule.milestones=[1,2]"))
    validate(planned("+experiment=autodrop_nqm"))
    for preset in sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")):
        validate(planned(f"+experiment={preset}"))
    for group in ("optim", "schedule", "model", "dataset"):  # every shipped default passes its rules
        for name in sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")):
            validate(planned(*(o for o in TINY if not o.startswith("optim.hparams")), f"{group}={name}"))
