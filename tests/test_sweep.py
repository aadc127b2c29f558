"""``python -m bench.sweep``: a table's cells, the runs already in the store, and exactly the missing ones
launched as Hydra multiruns."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from bench.sweep import Cell, group, main, plan
from bench.tables.spec import load_spec
from tests.conftest import ROOT

SPECS = sorted((ROOT / "results" / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_table_has_a_dry_run_for_every_tier(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = load_spec(path, ROOT / "results" / "published")
    for tier in spec.tiers:
        assert main([path.stem, "--tier", tier, "--dry-run", "--results", str(tmp_path / "empty")]) == 0
        out = capsys.readouterr().out
        assert f"{path.stem} (" in out and "cells x" in out and "python -m bench --multirun" in out


def _cells(runs: list[tuple[str, float, int]]) -> list[Cell]:
    out: dict[tuple, Cell] = {}
    for optim, lr, seed in runs:
        out.setdefault((optim, lr), Cell({"optim": optim, "optim.hparams.lr": lr})).missing.append(seed)
    return list(out.values())


def test_grouped_commands_cover_exactly_the_missing_runs() -> None:
    wanted = {(o, lr, s) for o, lr in (("sgd", 0.1), ("sgd", 0.5), ("adam", 0.1), ("adam", 0.5), ("adam", 0.01))
              for s in (0, 1)} - {("sgd", 0.5, 1)}
    sweeps = group(_cells(sorted(wanted)))
    launched = [run for sweep in sweeps
                for run in itertools.product(sweep["optim"], sweep["optim.hparams.lr"], sweep["seed"])]
    assert sorted(launched) == sorted(wanted) and len(launched) == len(set(launched))
    assert len(sweeps) < len(wanted) / 2


def _spec(tmp_path: Path, rows: dict[str, dict], seeds: int = 2) -> Path:
    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "published").mkdir(exist_ok=True)
    (tmp_path / "published" / "t.csv").write_text("method,mean,std\n" + "".join(f"{m},50,\n" for m in rows))
    (tmp_path / "specs" / "t.yaml").write_text(json.dumps({
        "title": "T", "paper": "P", "published": "t.csv", "metric": "test_acc1", "match": {"method": rows},
        "sweep": {"seeds": 1, "tiers": {"tiny": {"seeds": seeds, "overrides": {
            "dataset": "digits", "model": "small_cnn", "trainer.epochs": 1, "trainer.batch_size": 64}}}}}))
    return tmp_path / "specs"


def test_the_store_decides_what_is_missing(tmp_path: Path) -> None:
    specs = _spec(tmp_path, {"SGD": {"optim": "sgd", "optim.hparams.lr": "0.05,0.1"}, "Adam": {"optim": "adam"}})
    spec = load_spec(specs / "t.yaml", tmp_path / "published")
    tiny = {"dataset": "digits", "model": "small_cnn", "config": {"trainer": {"epochs": 1, "batch_size": 64}}}
    done = [{**tiny, "status": "finished", "seed": 0, "optim": "sgd", "protocol": {"reduced": True},
             "config": {**tiny["config"], "optim": {"hparams": {"lr": 0.05}}}},
            {**tiny, "status": "failed", "seed": 1, "optim": "sgd", "protocol": {"reduced": True},   # failed: rerun
             "config": {**tiny["config"], "optim": {"hparams": {"lr": 0.05}}}},
            {**tiny, "status": "finished", "seed": 0, "optim": "adam", "protocol": {"reduced": False},  # other tier
             "config": {**tiny["config"], "optim": {"hparams": {"lr": 0.001}}}}]
    cells, commands = plan(spec, "tiny", done, [])
    assert {(c.overrides["optim"], c.overrides.get("optim.hparams.lr"), tuple(c.missing)) for c in cells} == {
        ("sgd", 0.05, (1,)), ("sgd", 0.1, (0, 1)), ("adam", None, (0, 1))}
    assert all(c[:4] == [c[0], "-m", "bench", "--multirun"] for c in commands)


def test_unknown_table_or_tier_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    specs = _spec(tmp_path, {"SGD": {"optim": "sgd"}})
    assert main(["nope", "--specs", str(specs), "--results", str(tmp_path)]) != 0
    assert "no table 'nope'" in capsys.readouterr().err
    assert main(["t", "--tier", "gpu", "--specs", str(specs), "--results", str(tmp_path)]) != 0
    assert "has no tier 'gpu'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_runs_the_missing_cells_keeps_going_past_a_failing_one_and_then_has_nothing_to_do(
        tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture) -> None:
    specs = _spec(tmp_path, {"SGD": {"optim": "sgd", "optim.hparams.lr": 0.05},
                             "Bad": {"optim": "sgd", "optim.hparams.lr": -1.0}}, seeds=1)   # refused at start
    store = tmp_path                                     # holds specs/ and published/ too
    args = ["t", "--tier", "tiny", "--specs", str(specs), "--results", str(store), "trainer.progress=false",
            f"work_dir={tmp_path / 'work'}", f"data_root={data_root}", "trainer.threads=1"]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "1 cells of t are still missing" in err and "optim.hparams.lr=-1.0" in err
    records = [json.loads(p.read_text()) for p in (store / "runs").glob("*.json")]
    assert [(r["config"]["optim"]["hparams"]["lr"], r["status"]) for r in records] == [(0.05, "finished")]
    from bench.tables.__main__ import main as tables
    assert tables(["--results", str(store), "--specs", str(specs), "--quiet"]) == 0
    table = (store / "tables" / "t.md").read_text()
    assert "| SGD |" in table and "†" in table
    capsys.readouterr()
    main([*args[:5], "--dry-run", *args[5:]])
    assert "1 runs in the store, 1 missing" in capsys.readouterr().out


def test_list_names_every_table_and_its_tiers(capsys: pytest.CaptureFixture) -> None:
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in lines) == [p.stem for p in SPECS]
    assert all("full" in line for line in lines) and any("cpu_rl" in line for line in lines)


def test_a_missing_specs_folder_or_a_broken_spec_is_one_clear_error(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    assert main(["t", "--specs", str(tmp_path / "nowhere"), "--results", str(tmp_path)]) != 0
    assert "no table specs at" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "t.yaml").write_text("title: [oops\n")
    assert main(["--list", "--specs", str(tmp_path / "broken"), "--results", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "is not valid YAML" in err and "Traceback" not in err
