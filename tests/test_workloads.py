"""Issue 10: workloads, the optimizer driver, schedule resolution, roles, record schema 2 and its
schema-1 compatibility, and ``debug=smoke`` on every preset."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from bench.identity import get_dotted
from bench.schedules import Constant, build_schedule, warmup_cosine_factor
from optimizers import SPS, SAM
from optimizers.protocol import Diverged, Driver, UnmetRequirement
from tests.conftest import ROOT, TINY
from tests.helpers import planned

REFERENCE_NQM = ROOT / "results" / "reference" / "autodrop_nqm" / "runs"
# SAC presets refuse closure and f* methods (sam, ps_sps): tests/test_sac.py smokes them with the paper's RL optimizers;
# tests/test_segmentation.py smokes the ADE20K presets with every optimizer of PS Table 3
# Presets that differ from a sibling's only in values (classes, batch, epochs, network depth, weight decay): the sibling's smoke run covers their code path (keeps the suite near 25 min);
# test_siblings_compose_like_the_preset_that_smoke_tests_them checks the claim.
SIBLINGS = {"rmsgd_cifar100": "rmsgd_cifar10", "rmsgd_cifar100_cutout": "rmsgd_cifar10_cutout",
            "autodrop_cifar100": "autodrop_cifar10",
            "rmsgd_imagenet_b256": "rmsgd_imagenet", "ps_vit_tiny_imagenet_wd": "ps_vit_tiny_imagenet"}
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")
                 if not p.stem.startswith("ps_sac_") and not p.stem.endswith("_ade20k") and p.stem not in SIBLINGS)
# one optimizer per protocol feature: plain, end_epoch per-layer LRs, closure, loss, averaged model
SMOKE_OPTIMS = "sgd,adas,sam,ps_sps,dog"
NO_CONV_LAYERS = {"autodrop_nqm"}  # AdaS has nothing to adapt there: refused up front (tests/test_cli_errors.py)


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


# ------------------------------------------------------------------------------------- the driver
def test_driver_refuses_an_optimizer_the_loop_cannot_feed() -> None:
    params = [nn.Parameter(torch.ones(2))]
    with pytest.raises(UnmetRequirement, match="needs \\['loss'\\]"):
        Driver({"actor": (SPS(params), Constant())}, provides=())
    with pytest.raises(UnmetRequirement, match="closure"):
        Driver({"critic": (SAM(params, lr=0.1), Constant())}, provides=("loss",))
    Driver({"actor": (SPS(params), Constant())}, provides=("loss",))  # what it needs is given


def test_driver_steps_every_role_with_hooks_and_resumes() -> None:
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.Adam(b.parameters(), lr=0.01)
    schedule = build_schedule(opt_a, 2, 3, "warmup_cosine", warmup_epochs=1)
    driver = Driver({"a": (opt_a, schedule), "b": (opt_b, Constant())})
    x = torch.ones(4, 2)
    for _ in range(3):
        driver.step((a(x) + b(x)).square().mean())
    assert driver.roles["a"].steps == driver.roles["b"].steps == 3
    # warm-up over 3 steps, cosine over the other 3: after 3 steps the factor is warmup_cosine_factor(3) = 1
    assert opt_a.param_groups[0]["lr"] == pytest.approx(0.1 * warmup_cosine_factor(3, 3, 6, 0.0))
    assert driver.lrs() == {"a": [opt_a.param_groups[0]["lr"]], "b": [0.01]}
    state = json.loads(json.dumps({k: {"steps": v["steps"]} for k, v in driver.state_dict().items()}))
    assert state == {"a": {"steps": 3}, "b": {"steps": 3}}
    twin = Driver({"a": (torch.optim.SGD(a.parameters(), lr=0.1), build_schedule(opt_a, 2, 3, "constant")),
                   "b": (torch.optim.Adam(b.parameters(), lr=0.01), Constant())})
    twin.load_state_dict(driver.state_dict())
    assert twin.roles["a"].steps == 3 and twin.optimizer("a").param_groups[0]["lr"] == opt_a.param_groups[0]["lr"]
    with pytest.raises(Diverged, match="loss nan"):
        driver.check(float("nan"), "here")


@pytest.mark.filterwarnings("ignore:Detected call of .lr_scheduler.step")
def test_per_step_schedules_by_hand() -> None:
    assert [warmup_cosine_factor(s, 2, 6, 0.0) for s in range(7)] == pytest.approx(
        [0.5, 1.0, 1.0, (1 + 2 ** -0.5) / 2, 0.5, (1 - 2 ** -0.5) / 2, 0.0])
    w = nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=1.0)
    poly = build_schedule(opt, 2, 2, "poly", power=2.0)
    lrs = []
    for step in range(1, 4):
        poly.end_step(step)
        poly.end_epoch(1)  # per-step schedules ignore epoch ends
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([(3 / 4) ** 2, (2 / 4) ** 2, (1 / 4) ** 2])
    with pytest.raises(BenchError, match="unknown schedule"):
        build_schedule(opt, 2, 2, "no_such")


# ------------------------------------------------------------------------------- planning a run
@pytest.mark.parametrize(("overrides", "schedule"), [
    (["+experiment=cifar10_resnet34"], "step"),                       # SGD-StepLR
    (["+experiment=cifar10_resnet34", "optim=adam"], "constant"),     # AdaS Table 1's AdaM: constant LR
    (["+experiment=cifar10_resnet34", "optim=adas"], "constant"),     # AdaS sets its own LRs
    (["+experiment=cifar10_resnet34", "optim=adas", "schedule=step"], "step"),  # explicit wins
    (["+experiment=autodrop_nqm"], "autodrop"),
    (["+experiment=autodrop_nqm", "optim=dog"], "constant"),
    ([], "constant"),
])
def test_schedule_auto_resolves_per_optimizer(overrides: list[str], schedule: str) -> None:
    cfg = planned(*overrides)
    assert cfg["schedule"]["name"] == schedule == cfg["roles"]["model"]["schedule"]["name"]
    assert "baseline_schedule" not in cfg and ("schedule" in cfg["planned"]) == ("schedule=step" not in overrides)


def test_roles_take_their_own_optimizer_and_schedule() -> None:
    cfg = planned("optim=adas", "+optim@roles.model.optim=adam", "+schedule@roles.model.schedule=cosine")
    assert cfg["roles"]["model"]["optim"]["name"] == "adam" and cfg["roles"]["model"]["schedule"]["name"] == "cosine"
    assert cfg["optim"]["name"] == "adas"  # the default of roles not set explicitly


def test_a_role_set_on_the_command_line_drives_the_model(bench) -> None:
    bench(*TINY, "trainer.epochs=1", "+optim@roles.model.optim=adam", "roles.model.optim.hparams.lr=0.01")
    (record,) = _records(bench.results)
    assert record["optimizers"] == {"model": {"optim": "adam", "class_name": "Adam", "schedule": "constant"}}
    assert record["history"][0]["lr"] == [0.01]


# -------------------------------------------------------------------------- schema-1 records
@pytest.mark.slow
def test_schema_1_records_still_skip_and_tabulate(bench, tmp_path: Path) -> None:
    """The committed schema-1 NQM records (optim=gd_angle_nqm, before workloads) make the same run skip
    and are read by python -m bench.tables, in the same cell as schema-2 runs."""
    runs = bench.results / "runs"
    runs.mkdir(parents=True)
    for path in REFERENCE_NQM.glob("*gd_angle_nqm*.json"):
        shutil.copy(path, runs)
    old = {json.loads(p.read_text())["config"]["optim"]["hparams"]["lr"]: p.name for p in runs.glob("*.json")}
    result = bench("+experiment=autodrop_nqm", "schedule=angle_probe_nqm", "optim.hparams.lr=0.001")
    assert "skipped" in result.stdout and old[0.001] in result.stdout
    bench("+experiment=autodrop_nqm", "schedule=angle_probe_nqm", "optim.hparams.lr=0.001", "force=true",
          "trainer.epochs=1000")
    out = tmp_path / "tables"
    subprocess.run([sys.executable, "-m", "bench.tables", "--results", str(bench.results), "--out", str(out),
                    "--specs", str(tmp_path), "--quiet"], cwd=ROOT, check=True)
    with open(out / "summary.csv") as handle:
        rows = [line.split(",") for line in handle.read().splitlines()]
    header, body = rows[0], rows[1:]
    cells = {row[header.index("final")]: row[header.index("n")] for row in body}
    assert len(body) == 4 and cells["0.66 ± 0.00§"] == "2"  # the rerun of the schema-1 cell joined it
    new = [r for r in _records(bench.results) if r["schema"] == 2]
    (rerun,) = new
    (twin,) = [json.loads((runs / old[0.001]).read_text())]
    assert rerun["history"][-1]["test_loss"] == twin["history"][-1]["test_loss"]  # the refactor changed nothing


# ------------------------------------------------------------------------------- debug=smoke
@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_with_debug_smoke(bench, preset: str) -> None:
    """debug=smoke on every preset with one optimizer per protocol feature: a few steps, recorded reduced."""
    optims = [o for o in SMOKE_OPTIMS.split(",") if not (o == "adas" and preset in NO_CONV_LAYERS)]
    bench("--multirun", f"+experiment={preset}", f"optim={','.join(optims)}", "debug=smoke", env={"OMP_NUM_THREADS": "1"})
    records = _records(bench.results)
    assert sorted(r["optim"] for r in records) == sorted(optims)
    for record in records:
        assert record["status"] in ("finished", "diverged"), record.get("error")
        assert record["protocol"]["reduced"] is True and record["config"]["debug"]["name"] == "smoke"
        assert record["history"][-1]["step"] <= 4
        assert record["time"]["train_s"] > 0 and record["time"]["first_step_s"] > 0   # issue 17's accounting
        on_cuda_with_amp = record["hardware"]["device"].startswith("cuda") and record["config"]["trainer"]["amp"]
        assert record["precision"] in (("bf16-autocast", "fp32") if on_cuda_with_amp else ("fp32",))
        if record["data"]["provenance"].endswith("-stand-in"):  # no copy at hand: random images, said so
            assert record["data"]["source"] == {"kind": "generated"} and "measures nothing" in record["data"]["description"]


@pytest.mark.parametrize(("preset", "sibling"), sorted(SIBLINGS.items()))
def test_siblings_compose_like_the_preset_that_smoke_tests_them(preset: str, sibling: str) -> None:
    ours, theirs = planned(f"+experiment={preset}"), planned(f"+experiment={sibling}")
    for key in ("workload.name", "dataset.loader", "dataset.augment.name", "trainer.amp"):
        assert get_dotted(ours, key) == get_dotted(theirs, key), key
    assert {k for k in ours if k != "experiment"} == {k for k in theirs if k != "experiment"}


# ------------------------------------------------------------------ what counts as the paper's setting
@pytest.mark.parametrize(("overrides", "deviates"), [
    ([], None),
    (["optim=adas"], None),
    (["optim=adas", "optim.hparams.beta=0.975"], None),                       # the paper's sweep
    (["optim=adas", "optim.hparams.lr=0.1"], "optim.hparams.lr"),
    (["optim=adas", "model=vgg16_bn"], "model.name"),                          # per_model lr is no deviation
    (["dataset/augment=none"], "dataset.augment"),
    (["dataset/norm=unit"], "dataset.norm"),
    (["trainer.amp=true"], "trainer.amp"),
    (["+optim@roles.model.optim=adam", "roles.model.optim.hparams.eps=0.1"], "roles.model.optim.hparams.eps"),
])
def test_optimizer_values_augmentation_and_precision_count_as_protocol(overrides: list[str], deviates: str | None) -> None:
    from bench.identity import get_dotted, protocol_summary

    summary = protocol_summary(planned("+experiment=cifar10_resnet34", *overrides))
    assert summary["reduced"] is (deviates is not None)
    if deviates:
        assert deviates in summary["deviations"]
    adalip = protocol_summary(planned("+experiment=adalip_mnist", "optim.hparams.lr=0.5"))
    assert adalip["reduced"] is False  # AdaLip's tables aggregate over its LR grid
