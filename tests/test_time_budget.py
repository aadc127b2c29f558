"""The training-time budget (``bench.time_budget``, ``trainer.time_budget_s``; RMSGD Tables 1a/1b): the
epoch loop against a clock that charges a fixed time per training epoch, resume, the config checks,
the run id (unchanged while off), the protocol, and CLI runs (the record, a killed-and-resumed run)."""
from __future__ import annotations

import json

import pytest

from bench.errors import BenchError
from bench.identity import config_hash, protocol_summary
from bench.records import summarize
from bench.time_budget import TimeBudget, budget_event, time_budget
from bench.timing import Stopwatch
from bench.validate import validate
from bench.workloads import LoopHooks, TrainState
from tests.conftest import TINY
from tests.helpers import planned, tiny_linear_trainer


class EpochClock(Stopwatch):
    """A stopwatch on which every training epoch takes ``per_epoch`` seconds and nothing else takes any
    (the loop counts an epoch's examples once, inside its ``train`` phase)."""

    def __init__(self, per_epoch: float) -> None:
        super().__init__()
        self.now, self.per_epoch = 0.0, per_epoch

    def _now(self) -> float:
        return self.now

    def count(self, n: int, unit: str = "examples") -> None:
        super().count(n, unit)
        self.now += self.per_epoch


def test_the_event_fires_once_the_cumulative_training_time_reaches_the_budget() -> None:
    budget = TimeBudget(25.0)
    assert budget.stop_event({"epoch": 2, "train_time_s": 24.999}) is None
    assert budget.stop_event({"epoch": 3, "train_time_s": 25.0}) == {"budget_s": 25.0, "train_time_s": 25.0,
                                                                      "epochs_reached": 3}


def test_the_loop_stops_at_the_end_of_the_first_epoch_over_budget_and_the_row_says_so() -> None:
    state, clock = TrainState(), EpochClock(per_epoch=10.0)
    assert tiny_linear_trainer(epochs=6).fit(state, LoopHooks(clock=clock, time_budget=TimeBudget(25.0))) == "finished"
    assert [row["epoch"] for row in state.history] == [1, 2, 3]
    assert [row["train_time_s"] for row in state.history] == [10.0, 20.0, 30.0]
    assert [("time_budget" in row) for row in state.history] == [False, False, True]
    record = {"primary": {"metric": "test_acc1", "mode": "max"}, "history": state.history}
    summary = summarize(record)
    assert summary["stopped_by_time_budget"] is True
    assert summary["time_budget"] == {"budget_s": 25.0, "train_time_s": 30.0, "epochs_reached": 3}
    assert summarize({**record, "history": state.history[:2]})["stopped_by_time_budget"] is False


def test_without_a_budget_every_row_still_carries_the_training_time() -> None:
    state = TrainState()
    tiny_linear_trainer(epochs=3).fit(state, LoopHooks(clock=EpochClock(per_epoch=2.0)))
    assert [row["train_time_s"] for row in state.history] == [2.0, 4.0, 6.0]
    assert budget_event(state.history) is None


def test_a_resumed_run_keeps_its_cumulative_training_time_and_stops_at_the_same_epoch() -> None:
    budget = TimeBudget(25.0)
    whole = TrainState()
    tiny_linear_trainer(epochs=8).fit(whole, LoopHooks(clock=EpochClock(10.0), time_budget=budget))
    resumed, first = TrainState(), EpochClock(10.0)
    tiny_linear_trainer(epochs=2).fit(resumed, LoopHooks(clock=first, time_budget=budget))    # interrupted after epoch 2 ...
    second = EpochClock(10.0)
    second.load_state_dict(first.state_dict())                                      # ... the checkpoint's totals
    tiny_linear_trainer(epochs=8).fit(resumed, LoopHooks(clock=second, time_budget=budget))    # ... and continued
    assert [r["train_time_s"] for r in resumed.history] == [r["train_time_s"] for r in whole.history] == [10, 20, 30]
    assert budget_event(resumed.history) == budget_event(whole.history) == {"budget_s": 25.0, "train_time_s": 30.0,
                                                                            "epochs_reached": 3}


def test_off_by_default_and_the_run_id_of_a_run_without_it_is_unchanged() -> None:
    cfg = planned(*TINY)
    assert cfg["trainer"]["time_budget_s"] is None and time_budget(cfg) is None
    without = json.loads(json.dumps(cfg))
    del without["trainer"]["time_budget_s"]
    assert config_hash(cfg, "tag") == config_hash(without, "tag")     # older runs keep their ids
    on = planned(*TINY, "trainer.time_budget_s=3600")
    assert config_hash(on, "tag") != config_hash(cfg, "tag")
    assert time_budget(on) == TimeBudget(3600.0)


def test_on_it_is_a_deviation_unless_the_protocol_leaves_it_free() -> None:
    adas = protocol_summary(planned("+experiment=cifar10_resnet34", "trainer.time_budget_s=3600"))
    assert adas["reduced"] is True and adas["deviations"]["trainer.time_budget_s"] == [None, 3600]
    rmsgd = protocol_summary(planned("+experiment=rmsgd_cifar10", "trainer.time_budget_s=3600"))   # Table 1a
    assert rmsgd["reduced"] is False and rmsgd["deviations"] == {}


@pytest.mark.parametrize("value", ["0", "-5", "abc", "true"])
def test_bad_values_are_one_error_line(value: str) -> None:
    with pytest.raises(BenchError, match="trainer.time_budget_s must be"):
        validate(planned(*TINY, f"trainer.time_budget_s={value}"))
    with pytest.raises(BenchError, match="trainer.time_budget_s must be a positive number of seconds or null"):
        time_budget({"trainer": {"time_budget_s": {"0": 0, "-5": -5, "abc": "abc", "true": True}[value]}})


def _record(bench) -> dict:
    (path,) = (bench.results / "runs").glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_a_cli_run_stops_on_its_budget_and_its_record_says_so(bench) -> None:
    bench(*TINY, "trainer.epochs=6", "trainer.time_budget_s=1e-6")     # any epoch uses it up
    record = _record(bench)
    assert record["status"] == "finished" and [row["epoch"] for row in record["history"]] == [1]
    assert record["stopped_by_time_budget"] is True and record["time_budget"]["epochs_reached"] == 1
    assert record["time_budget"]["train_time_s"] == record["history"][0]["train_time_s"] > 0
    assert record["protocol"]["deviations"]["trainer.time_budget_s"] == [None, 1e-6]


@pytest.mark.slow
def test_a_killed_run_resumes_with_its_training_time_so_far(bench) -> None:
    """Digits at batch 64: 24 steps an epoch; the kill falls in epoch 3, after epoch 2's checkpoint."""
    args = [*TINY, "trainer.epochs=3"]
    killed = bench(*args, env={"BENCH_FAULT_KILL_AT_STEP": str(24 * 2 + 5)}, check=False)
    assert killed.returncode != 0
    bench(*args)
    record = _record(bench)
    times = [row["train_time_s"] for row in record["history"]]
    assert record["resumed_at_epochs"] == [2] and record["stopped_by_time_budget"] is False
    assert 0 < times[0] < times[1] < times[2]                 # epoch 3 counts on from epochs 1-2's time
    assert times[2] == pytest.approx(record["time"]["train_s"], abs=2e-3)
