"""Tables: aggregation over seeds, marks, published values beside ours, and the transcription."""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

import numpy as np

from bench.errors import BenchError
from bench.records import ResultsStore, summarize
from bench.tables.build import summary
from bench.tables.paper import paper_table
from bench.tables.reduce import bootstrap_ci
from bench.tables.spec import Spec, load_spec
from tests.conftest import ROOT

NOTES = ROOT.parent / "shared" / "papers" / "notes" / "adas.md"


def _record(seed: int, accs: list[float], *, optim: str = "adam", status: str = "finished", reduced: bool = False,
            lossy: bool = False, experiment: str = "cifar10_resnet34", beta: float | None = None) -> dict:
    """A minimal record in the store's schema (only what the tables read)."""
    hparams = {"lr": 0.1} | ({"beta": beta} if beta is not None else {})
    class_name = "AdaS" if optim.startswith("adas") else optim
    config = {"experiment": experiment, "seed": seed, "optim": {"name": optim, "class_name": class_name,
                                                                "hparams": hparams},
              "schedule": {"name": "constant"}, "trainer": {"epochs": len(accs)}}
    history = [{"epoch": i + 1, "test_acc1": a} for i, a in enumerate(accs)]
    record = {"schema": 2, "run_id": f"{experiment}-{optim}-{beta}-{seed}", "status": status, "experiment": experiment,
              "workload": "classification", "primary": {"metric": "test_acc1", "mode": "max"},
              "optim": optim, "model": "resnet34", "dataset": "cifar10", "seed": seed, "config": config,
              "protocol": {"reduced": reduced}, "data": {"provenance": "cifar10-jpeg" if lossy else "cifar10-shared",
                                                         "lossy": lossy}, "history": history}
    return {**record, **summarize(record)}


def _spec(tmp_path: Path, csv_text: str, **spec: object) -> Spec:
    (tmp_path / "published").mkdir(exist_ok=True)
    (tmp_path / "published" / "t.csv").write_text(csv_text)
    (tmp_path / "t.yaml").write_text(json.dumps({"title": "T", "paper": "P", "published": "t.csv", **spec}))
    return load_spec(tmp_path / "t.yaml", tmp_path / "published")


def _published(tmp_path: Path, **extra: object) -> Spec:
    return _spec(tmp_path, "dataset,epoch,method,mean,std\nCIFAR-10,2,AdaM,50.0,1.0\nCIFAR-10,2,AdaS beta=0.8,60.0,\n"
                 "CIFAR-10,3,AdaM,55.0,0.5\n", metric="test_acc1", reduce={"at_epoch": {"column": "epoch"}},
                 match={"dataset": {"CIFAR-10": {"+experiment": "cifar10_resnet34"}},
                        "method": {"AdaM": {"optim": "adam"},
                                   "AdaS beta=0.8": {"optim": "adas", "optim.hparams.beta": 0.8}}}, **extra)


def _rows(table: object) -> dict[tuple[str, ...], dict[str, str]]:
    keys = table.columns[:table.columns.index("ours")]
    return {tuple(r[:len(keys)]): dict(zip(table.columns[len(keys):], r[len(keys):])) for r in table.rows}


def test_paper_table_reads_the_metric_at_the_published_epoch(tmp_path: Path) -> None:
    spec = _published(tmp_path)
    records = [_record(0, [10.0, 52.0, 56.0]), _record(1, [10.0, 54.0, 58.0]),
               _record(0, [10.0, 61.0], optim="adas", beta=0.8), _record(0, [1.0, 99.0], optim="adas", beta=0.9)]
    rows = _rows(paper_table(spec, records))
    adam = rows[("CIFAR-10", "2", "AdaM")]
    assert (adam["ours"], adam["n"], adam["paper"], adam["Δ"]) == (f"53.00 ± {statistics.stdev([52, 54]):.2f}", "2",
                                                                  "50.00 ± 1.0", "3.00")
    assert adam["paper outside CI"] == "yes"                 # both seeds above 50: the interval is [52, 54]
    assert adam["95% CI"] == "[52.00, 54.00]"
    assert rows[("CIFAR-10", "3", "AdaM")]["ours"] == "57.00 ± 1.41"
    ada = rows[("CIFAR-10", "2", "AdaS beta=0.8")]           # beta=0.9 excluded
    assert (ada["ours"], ada["n"], ada["95% CI"], ada["Δ"]) == ("61.00", "1", "-", "1.00")


def test_cells_mark_reduced_and_lossy_runs_and_count_divergence(tmp_path: Path) -> None:
    spec = _published(tmp_path, sweep={"tiers": {"cpu": {}}})
    records = [_record(0, [10.0, 52.0, 56.0], reduced=True, lossy=True), _record(1, [], status="diverged", reduced=True),
               _record(0, [1.0, 2.0], optim="adas", beta=0.8, status="diverged")]
    rows = _rows(paper_table(spec, records))
    assert rows[("CIFAR-10", "2", "AdaM")]["ours"] == "52.00†‡ (1 diverged)"
    assert rows[("CIFAR-10", "2", "AdaS beta=0.8")]["ours"] == "NaN (0/1)"


def test_reduced_runs_fill_a_cell_only_through_a_tier_and_never_beside_full_runs(tmp_path: Path) -> None:
    spec = _published(tmp_path, sweep={"tiers": {"cpu": {"overrides": {"trainer.epochs": 1}, "only": {"epoch": [3]}}}})
    short = _record(0, [40.0], reduced=True)                     # 1 epoch: read at its last epoch for epoch 3
    other = _record(1, [41.0, 42.0], reduced=True)              # a reduced run of no tier: left out
    rows = _rows(paper_table(spec, [short, other]))
    assert rows[("CIFAR-10", "3", "AdaM")]["ours"] == "40.00†" and rows[("CIFAR-10", "2", "AdaM")]["ours"] == "-"
    rows = _rows(paper_table(spec, [short, _record(2, [50.0, 51.0, 52.0])]))
    assert rows[("CIFAR-10", "3", "AdaM")]["ours"] == "52.00"    # the paper's protocol wins


def test_empty_cells_show_a_dash(tmp_path: Path) -> None:
    spec = _published(tmp_path)
    assert {row[3] for row in paper_table(spec, []).rows} == {"-"}


def test_bootstrap_interval_is_scipys_percentile_bootstrap_of_the_seed_mean() -> None:
    from scipy import stats

    values = [70.0, 71.5, 69.0, 72.0, 70.5]
    low, high = bootstrap_ci(values, np.mean)
    expected = stats.bootstrap((np.asarray(values),), np.mean, confidence_level=0.95, n_resamples=2000,
                               method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert (low, high) == (expected.low, expected.high) and min(values) <= low < np.mean(values) < high <= max(values)
    assert bootstrap_ci([1.0], np.mean) is None and bootstrap_ci([2.0, 2.0], np.mean) == (2.0, 2.0)


def _grid_run(optim: str, lr: float, seed: int, train: list[float], status: str = "finished") -> dict:
    record = _record(seed, [0.0] * len(train), optim=optim, experiment="adalip_mnist", status=status)
    record["config"]["optim"]["hparams"]["lr"] = lr
    for row, acc in zip(record["history"], train):
        row["train_acc1"] = acc
    return record


def test_grid_tables_reduce_per_lr_over_seeds_then_over_the_grid(tmp_path: Path) -> None:
    """AdaLip Tables 2-4: per LR the median over runs of each run's peak, then Max/Median/Mean/Std over LRs;
    epochs to 98% of the optimizer's peak, per LR the median, then the mean over LRs that reach it."""
    spec = _spec(tmp_path, "optimizer,row,mean,std\nAdaLip,Max,0.98,\nAdaLip,Mean,0.5,\nAdaLip,Std,0.1,\n"
                 "AdaLip,Epochs Mean,2.0,\nAdaLip,Epochs Best,1.0,\n",
                 metric="train_acc1", transform={"scale": 0.01}, reduce="best", seeds="median",
                 grid="optim.hparams.lr", diverged="score", precision=3,
                 match={"optimizer": {"AdaLip": {"optim": "adalip", "optim.hparams.lr": "0.01,0.1,0.5"}}},
                 settings={"row": {"Max": {"over_grid": "max"}, "Mean": {"over_grid": "mean"},
                                   "Std": {"over_grid": "std"},
                                   "Epochs Mean": {"reduce": {"epochs_to_fraction": 0.98, "peak": "row"},
                                                   "over_grid": "mean"},
                                   "Epochs Best": {"reduce": {"epochs_to_fraction": 0.98, "peak": "row"},
                                                   "over_grid": "min"}}})
    records = [_grid_run("adalip", 0.01, 0, [90.0, 99.0]), _grid_run("adalip", 0.01, 1, [95.0, 97.0]),
               _grid_run("adalip", 0.1, 0, [80.0, 85.0]), _grid_run("adalip", 0.5, 0, [30.0], status="diverged"),
               _grid_run("adalip", 0.7, 0, [100.0])]               # an LR outside the grid: left out
    rows = _rows(paper_table(spec, records))
    scores = [0.98, 0.85, 0.30]                                  # lr 0.01: median(0.99, 0.97); the diverged run scores
    assert rows[("AdaLip", "Max")]["ours"] == "0.980" and rows[("AdaLip", "Max")]["Δ"] == "0.000"
    assert rows[("AdaLip", "Mean")]["ours"] == f"{np.mean(scores):.3f}"
    assert rows[("AdaLip", "Std")]["ours"] == f"{np.std(scores):.3f}"
    # the optimizer's peak 0.99 -> target 0.9702: lr 0.01 seed 0 reaches it at epoch 2, seed 1 (0.97) never,
    # lr 0.1 and 0.5 never; per LR the median over the runs that reach it, LRs that never do are left out
    assert rows[("AdaLip", "Epochs Mean")]["ours"] == "2.000" and rows[("AdaLip", "Epochs Best")]["ours"] == "2.000"


def test_success_cells_average_the_runs_that_did_not_diverge_and_count_the_successful_ones(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "env,optimizer,mean,std,successes,runs\nHopper,Adam,3448,,5,5\n", metric="test_return",
                 success=True, precision=0, match={"optimizer": {"Adam": {"optim": "adam"}}})
    runs = []
    for seed, (ret, ok) in enumerate([(3000.0, True), (3200.0, True), (10.0, False), (5.0, False)]):
        record = _record(seed, [ret], status="diverged" if ret == 5.0 else "finished")
        record["history"][0]["test_return"] = ret
        record["success"] = {"rule": "final return >= 1000", "value": ok}
        runs.append(record)
    row = _rows(paper_table(spec, runs))[("Hopper", "Adam")]
    assert (row["ours"], row["n"], row["paper"]) == ("2070 (2/4)", "3", "3448 (5/5)")   # mean(3000, 3200, 10)


def test_time_budget_cells_read_each_run_at_the_reference_optimizers_training_time(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "optimizer,mean,std\nSGD,90,\nRMSGD,91,\n", metric="test_acc1",
                 reduce={"at_train_time_of": {"optim": "sgd"}},
                 match={"optimizer": {"SGD": {"optim": "sgd"}, "RMSGD": {"optim": "rmsgd"}}})
    sgd, rmsgd = _record(0, [50.0, 60.0], optim="sgd"), _record(0, [55.0, 70.0, 80.0], optim="rmsgd")
    for record, times in ((sgd, [10.0, 20.0]), (rmsgd, [12.0, 19.0, 30.0])):
        for row, t in zip(record["history"], times):
            row["train_time_s"] = t
    rows = _rows(paper_table(spec, [sgd, rmsgd]))
    assert rows[("SGD",)]["ours"] == "60.00" and rows[("RMSGD",)]["ours"] == "70.00"   # 19 s <= SGD's 20 s < 30 s


def test_extras_show_ours_beside_the_papers(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "optimizer,mean,std,train_loss\nAdam,70,,0.05\n", metric="test_acc1",
                 extras={"train_loss": {"metric": "train_loss", "precision": 3}},
                 match={"optimizer": {"Adam": {"optim": "adam"}}})
    record = _record(0, [60.0, 70.0])
    record["history"][-1]["train_loss"] = 0.25
    row = _rows(paper_table(spec, [record]))[("Adam",)]
    assert (row["train_loss (ours)"], row["train_loss (paper)"]) == ("0.250", "0.05")


def test_latex_output_is_booktabs_with_the_symbols_escaped(tmp_path: Path) -> None:
    spec = _published(tmp_path)
    text = paper_table(spec, [_record(0, [10.0, 52.0], reduced=False)]).latex()
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert "95\\% CI" in text and "$\\Delta$" in text and "$\\pm$" in text and "±" not in text
    assert text.count("\\begin{tabular}") == 1 and text.rstrip().endswith("\\end{table}")


def test_a_spec_with_an_unknown_key_or_reducer_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown keys"):
        _spec(tmp_path, "optimizer,mean,std\nA,1,\n", metric="m", at_epoch="epoch")
    with pytest.raises(BenchError, match="reduce"):
        _spec(tmp_path, "optimizer,mean,std\nA,1,\n", metric="m", reduce="last")


def test_summary_groups_seeds_into_one_cell() -> None:
    table = summary([_record(0, [40.0, 50.0]), _record(1, [40.0, 70.0]), _record(0, [1.0], optim="sgd")])
    by_optim = {row[table.columns.index("optim")]: row for row in table.rows}
    assert by_optim["adam"][table.columns.index("n")] == "2"
    assert by_optim["adam"][table.columns.index("final")].startswith("60.00 ± 14.14")
    assert by_optim["adam"][table.columns.index("best (mean)")] == "60.00"
    assert by_optim["adam"][table.columns.index("metric")] == "test_acc1 ↑"


def test_store_round_trips_records_atomically(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.check_writable()
    path = store.write(_record(0, [1.0]))
    assert json.loads(path.read_text())["schema"] == 2
    assert [r["run_id"] for r in store] == ["cifar10_resnet34-adam-None-0"]
    assert not list((tmp_path / "runs").glob(".*"))  # no temporary files left behind


def test_published_adas_table1_matches_the_notes() -> None:
    """The CSV is an exact transcription of the table in the AdaS notes (section 3.1)."""
    if not NOTES.is_file():
        pytest.skip(f"{NOTES} not available")
    section = NOTES.read_text().split("### 3.1")[1].split("Notes:")[0]
    methods = ["AdaBound", "AdaM", "SGD-StepLR", "AdaS beta=0.8", "AdaS beta=0.9", "AdaS beta=0.975"]
    expected = {}
    for line in section.splitlines():
        if line.startswith(("| CIFAR", "| Tiny")):
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            for method, value in zip(methods, cells[2:]):
                expected[(cells[0], cells[1], method)] = tuple(value.split("±"))
    with open(ROOT / "results" / "published" / "adas_table1.csv") as handle:
        got = {(r["dataset"], r["epoch"], r["method"]): (r["mean"], r["std"]) for r in csv.DictReader(handle)}
    assert len(expected) == 90 and got == expected


def _store(tmp_path: Path) -> Path:
    store = ResultsStore(tmp_path / "store")
    store.check_writable()
    store.write(_record(0, [40.0, 50.0]))
    return tmp_path / "store"


def test_tables_cli_on_a_relocated_store_uses_the_checkouts_specs_and_published(tmp_path: Path) -> None:
    from bench.tables.__main__ import main

    store = _store(tmp_path)
    assert main(["--results", str(store), "--quiet"]) == 0
    assert (store / "tables" / "adas_table1.md").is_file() and (store / "tables" / "adalip_table2.md").is_file()
    assert main(["--results", str(store), "--specs", str(ROOT / "results" / "specs"), "--quiet"]) == 0


def test_tables_cli_defaults_to_bench_results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.tables.__main__ import main

    store = _store(tmp_path)
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(store))
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet"]) == 0
    assert (store / "tables" / "summary.md").is_file()


def test_a_store_with_its_own_published_values_feeds_every_table(tmp_path: Path) -> None:
    """Every table reads the store's own published/ when it has one."""
    from bench.tables.__main__ import main

    store = _store(tmp_path)
    (store / "published").mkdir()
    for source in (ROOT / "results" / "published").glob("*.csv"):
        with open(source, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if source.stem == "adalip_table2":
            rows = [{**row, "mean": "7", "std": ""} for row in rows]
        with open(store / "published" / source.name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    assert main(["--results", str(store), "--quiet"]) == 0
    with open(store / "tables" / "adalip_table2.csv", newline="") as handle:
        assert {float(row["paper"]) for row in csv.DictReader(handle)} == {7.0}


@pytest.mark.parametrize(("overrides", "label"), [
    (["optim=adas"], "AdaS beta=0.8"), (["optim=adas", "optim.hparams.beta=0.9"], "AdaS beta=0.9"),
    (["optim=adas", "optim.hparams.beta=0.975"], "AdaS beta=0.975"), (["optim=adam"], "AdaM"),
    ([], "SGD-StepLR"), (["optim=sgd", "schedule=step"], "SGD-StepLR"), (["optim=sgd", "schedule=constant"], None),
    (["optim=adabound"], "AdaBound"), (["optim=adam", "schedule=step"], None),
])
def test_adas_table1_spec_matches_real_configs(overrides: list[str], label: str | None) -> None:
    """A record of each paper setting lands in exactly its own AdaS Table 1 column (other settings in none)."""
    import yaml

    from bench.tables.spec import matches
    from tests.helpers import planned

    cfg = planned("+experiment=cifar10_resnet34", *overrides)
    record = {"config": cfg, "experiment": cfg["experiment"], "optim": cfg["optim"]["name"]}
    methods = yaml.safe_load((ROOT / "results" / "specs" / "adas_table1.yaml").read_text())["match"]["method"]
    assert [name for name, criteria in methods.items() if matches(record, criteria)] == ([label] if label else [])


def test_summary_names_the_roles_another_optimizer_drove() -> None:
    from bench.tables.build import optim_label

    record = {"optim": "ps_dasgd", "optimizers": {"actor": {"optim": "ps_dasgd"}, "entropy": {"optim": "adam"}}}
    assert optim_label(record) == "ps_dasgd (entropy: adam)"
    assert optim_label({"optim": "sgd", "optimizers": {"model": {"optim": "sgd"}}}) == "sgd"


def test_a_best_lr_cell_reads_the_papers_protocol_even_on_a_partial_grid(tmp_path: Path) -> None:
    """Mean needs the whole grid (the complete reduced tier); Max takes the full-protocol run of one LR."""
    spec = _spec(tmp_path, "optimizer,row,mean,std\nSGD,Max,0.99,\nSGD,Mean,0.9,\n", metric="train_acc1",
                 transform={"scale": 0.01}, reduce="best", grid="optim.hparams.lr", precision=3,
                 match={"optimizer": {"SGD": {"optim": "sgd", "optim.hparams.lr": "0.1,0.5"}}},
                 settings={"row": {"Max": {"over_grid": "max"}, "Mean": {"over_grid": "mean"}}},
                 sweep={"tiers": {"cpu": {"overrides": {"trainer.epochs": 2}}}})
    cpu = [_grid_run("sgd", lr, 0, [50.0, acc]) for lr, acc in ((0.1, 80.0), (0.5, 90.0))]
    for record in cpu:
        record["protocol"]["reduced"] = True
    full = _grid_run("sgd", 0.5, 0, [90.0, 97.0, 99.0])
    rows = _rows(paper_table(spec, [*cpu, full]))
    assert rows[("SGD", "Max")]["ours"] == "0.990 (1 of 2 grid points)"
    assert rows[("SGD", "Mean")]["ours"] == "0.850†"
