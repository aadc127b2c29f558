"""The AdaS code's train-loss early stop (``bench.early_stop``, ``trainer.early_stop``): the rule against
sequences worked out by hand, the epoch loop stopping on it, resume, the config checks, the run id
(unchanged while off) and the protocol (a deviation while on), and one CLI run."""
from __future__ import annotations

import json
import random

import pytest

from bench.early_stop import EarlyStop, early_stop, stopped_early
from bench.errors import BenchError
from bench.identity import config_hash, protocol_summary
from bench.records import summarize
from bench.validate import validate
from bench.workloads import LoopHooks, TrainState, workload_class
from tests.conftest import TINY
from tests.helpers import planned, tiny_linear_trainer

ON = "trainer.early_stop={metric:train_loss,patience:10,threshold:1.0e-3}"


def rows(losses: list[float]) -> list[dict]:
    return [{"epoch": epoch, "train_loss": loss} for epoch, loss in enumerate(losses, start=1)]


def first_stop(rule: EarlyStop, losses: list[float]) -> int | None:
    """The epoch at which the rule, asked after every epoch as the loop does, ends the run."""
    history = rows(losses)
    return next((row["epoch"] for i, row in enumerate(history) if rule.stop_event(history[: i + 1])), None)


def reference_counter(losses: list[float], patience: int, threshold: float) -> int | None:
    """The reference's incremental rule (notes/reference-implementations.md): ``loss - best < -threshold``
    resets ``best`` and the count, anything else counts; stop when the count reaches ``patience``."""
    best, wait = float("inf"), 0
    for epoch, loss in enumerate(losses, start=1):
        if loss - best < -threshold:
            best, wait = loss, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch
    return None


def test_the_rule_on_sequences_worked_out_by_hand() -> None:
    rule = EarlyStop(patience=10, threshold=1e-3)
    # 5 epochs improving by 2e-3, then flat: epochs 6..15 are the 10 without improvement
    assert first_stop(rule, [1 - 2e-3 * k for k in range(5)] + [1 - 8e-3] * 20) == 15
    # improving by 4e-4 a epoch: every third epoch beats the best by 1.2e-3 > 1e-3, so it never stops
    assert first_stop(rule, [1 - 4e-4 * k for k in range(60)]) is None
    # improving by 9e-4 a epoch: every second epoch beats the best by 1.8e-3: never stops either
    assert first_stop(rule, [1 - 9e-4 * k for k in range(60)]) is None
    # a rising loss: epoch 1 sets the best, epochs 2..11 count
    assert first_stop(rule, [1 + 0.1 * k for k in range(30)]) == 11
    assert first_stop(EarlyStop(patience=1, threshold=0.0), [1.0, 1.0]) == 2   # equal is no improvement


def test_the_event_names_when_and_why() -> None:
    history = rows([3.0, 2.0, 2.5, 2.4, 2.1])
    rule = EarlyStop(patience=3, threshold=0.5)
    assert rule.stop_event(history[:4]) is None
    assert rule.stop_event(history) == {"epoch": 5, "best": 2.0, "best_epoch": 2, "epochs_without_improvement": 3,
                                        "metric": "train_loss", "patience": 3, "threshold": 0.5}


def test_replaying_the_history_agrees_with_the_reference_counter() -> None:
    """Random walks: the replay over the history (what a resumed run does) stops where the
    reference's epoch-by-epoch counter does."""
    rng = random.Random(0)
    for _ in range(200):
        patience, threshold = rng.randint(1, 6), rng.choice([0.0, 1e-3, 0.05])
        losses = [1.0]
        for _ in range(40):
            losses.append(losses[-1] + rng.uniform(-0.06, 0.04))
        assert first_stop(EarlyStop(patience=patience, threshold=threshold), losses) == \
            reference_counter(losses, patience, threshold)


def test_the_epoch_loop_stops_where_the_rule_fires_and_the_row_says_so() -> None:
    state = TrainState()
    hooks = LoopHooks(early_stop=EarlyStop(patience=2, threshold=100.0))   # nothing can improve by 100
    assert tiny_linear_trainer(epochs=6).fit(state, hooks) == "finished"
    assert [row["epoch"] for row in state.history] == [1, 2, 3]
    assert [("early_stop" in row) for row in state.history] == [False, False, True]
    assert state.history[-1]["early_stop"]["epoch"] == 3 and state.history[-1]["early_stop"]["best_epoch"] == 1
    assert stopped_early(state.history)
    record = {"primary": {"metric": "test_acc1", "mode": "max"}, "history": state.history}
    assert summarize(record)["stopped_early"] == state.history[-1]["early_stop"]
    assert summarize({**record, "history": state.history[:2]})["stopped_early"] is None


def test_a_resumed_run_stops_at_the_same_epoch() -> None:
    rule = EarlyStop(patience=3, threshold=100.0)
    whole = TrainState()
    tiny_linear_trainer(epochs=8).fit(whole, LoopHooks(early_stop=rule))
    resumed = TrainState()
    tiny_linear_trainer(epochs=2).fit(resumed, LoopHooks(early_stop=rule))          # interrupted after epoch 2 ...
    trainer = tiny_linear_trainer(epochs=8)
    trainer.fit(resumed, LoopHooks(early_stop=rule))                     # ... and continued
    assert [r["epoch"] for r in whole.history] == [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert whole.history[-1]["early_stop"] == resumed.history[-1]["early_stop"]


def test_off_by_default_and_the_run_id_of_a_run_without_it_is_unchanged() -> None:
    cfg = planned(*TINY)
    assert cfg["trainer"]["early_stop"] is None
    assert early_stop(cfg, workload_class("classification")) is None
    without = json.loads(json.dumps(cfg))
    del without["trainer"]["early_stop"]
    assert config_hash(cfg, "tag") == config_hash(without, "tag")     # older runs keep their ids
    on = planned(*TINY, ON)
    assert config_hash(on, "tag") != config_hash(cfg, "tag")
    assert early_stop(on, workload_class("classification")) == EarlyStop("train_loss", 10, 1e-3)


def test_on_it_is_a_deviation_from_the_paper_protocol() -> None:
    paper = planned("+experiment=cifar10_resnet34", "optim=adas")
    assert "trainer.early_stop" not in protocol_summary(paper)["deviations"]
    stopped = protocol_summary(planned("+experiment=cifar10_resnet34", "optim=adas", ON))
    assert stopped["reduced"] is True
    assert stopped["deviations"]["trainer.early_stop"] == [None, {"metric": "train_loss", "patience": 10,
                                                                   "threshold": 1e-3}]


@pytest.mark.parametrize(("overrides", "message"), [
    (["trainer.early_stop.patience=0"], "trainer.early_stop.patience must be a positive integer"),
    (["trainer.early_stop.threshold=-1"], "trainer.early_stop.threshold must be a non-negative number"),
])
def test_bad_values_are_one_error_line(overrides: list[str], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        validate(planned(*TINY, ON, *overrides))


@pytest.mark.parametrize(("overrides", "workload", "message"), [
    ([ON.replace("train_loss", "test_acc1")], "classification", "metric must be one of train_loss"),
    (["trainer.early_stop=5"], "classification", "must be null or {metric, patience, threshold}"),
    (["trainer.early_stop={metric:train_loss,wait:3}"], "classification", "must be null or"),
    ([ON], "sac", "the sac workload's loop cannot stop early; pass trainer.early_stop=null"),
])
def test_what_a_workload_cannot_do_is_refused_before_the_run(overrides, workload, message) -> None:
    with pytest.raises(BenchError, match=message.replace("{", r"\{").replace("}", r"\}")):
        early_stop(planned(*TINY, *overrides), workload_class(workload))


@pytest.mark.slow
def test_a_cli_run_stops_early_and_its_record_says_when(bench) -> None:
    bench(*TINY, "trainer.epochs=6", "trainer.early_stop={metric:train_loss,patience:1,threshold:100.0}")
    (path,) = (bench.results / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "finished" and [row["epoch"] for row in record["history"]] == [1, 2]
    assert record["stopped_early"]["epoch"] == 2 and record["stopped_early"]["best_epoch"] == 1
    assert record["final"]["at"]["epoch"] == 2
    assert record["protocol"]["deviations"]["trainer.early_stop"][0] is None
