"""Bad input: one ``error:`` line naming the fix, a non-zero exit, no traceback, no record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY


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
        (["optim.hparams.lr=-0.1"], ["optim.hparams.lr must be non-negative", "optim.hparams.lr="]),
        (["trainer.epochs=0"], ["trainer.epochs must be a positive integer"]),
        (["optim.class_name=NotImplementedYet"], ["optimizer sgd is not available yet", "optim="]),
        (["dataset=cifar10", "dataset.download=false"], ["not prepared", "python -m bench.data prepare cifar10"]),
        (["dataset=cifar10", "dataset.source=/no/such/cifar10.tar.xz"], ["does not exist"]),
        (["schedule=no_such_schedule"], ["unknown schedule 'no_such_schedule'", "step"]),
        (["workload=no_such_workload"], ["unknown workload 'no_such_workload'", "classification"]),
        (["+roles.actor.optim.name=adam"], ["has no parameter role 'actor'", "model"]),
        (["trainer.steps_per_epoch=0"], ["trainer.steps_per_epoch must be a positive integer"]),
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
    _assert_clean_failure(result, "not writable", "results_dir=")


def test_card_example_runs(bench) -> None:
    """`+experiment=cifar100_resnet34 optim=adas`, shrunk to digits and one epoch, runs and records AdaS."""
    result = bench("+experiment=cifar100_resnet34", "optim=adas", *TINY[:2], "trainer.epochs=1",
                   "trainer.progress=false")
    assert "finished:" in result.stdout
    (record,) = [json.loads(p.read_text()) for p in (bench.results / "runs").glob("*.json")]
    assert (record["experiment"], record["optim"], record["protocol"]["reduced"]) == ("cifar100_resnet34", "adas", True)
    assert "layers" in record["history"][0]["optim"]  # AdaS's per-layer metrics and LRs are logged
