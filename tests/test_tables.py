"""Tables: aggregation over seeds, marks, published values beside ours, and the transcription."""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from bench.records import ResultsStore, summarize
from bench.tables.build import paper_table, summary
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


def _published(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "t.csv").write_text(
        "dataset,epoch,method,mean,std\nCIFAR-10,2,AdaM,50.0,1.0\nCIFAR-10,2,AdaS beta=0.8,60.0,\n"
        "CIFAR-10,3,AdaM,55.0,0.5\n")
    spec = tmp_path / "t.yaml"
    spec.write_text(json.dumps({
        "title": "T", "paper": "P", "published": "t.csv", "metric": "test_acc1", "at_epoch": "epoch",
        "match": {"dataset": {"CIFAR-10": {"experiment": "cifar10_resnet34"}},
                  "method": {"AdaM": {"optim": "adam"},
                             "AdaS beta=0.8": {"config.optim.class_name": "AdaS",
                                               "config.optim.hparams.beta": 0.8}}}}))
    return spec, tmp_path / "published"


def test_paper_table_reads_the_metric_at_the_published_epoch(tmp_path: Path) -> None:
    spec, published = _published(tmp_path)
    records = [_record(0, [10.0, 52.0, 56.0]), _record(1, [10.0, 54.0, 58.0]),
               _record(0, [10.0, 61.0], optim="adas", beta=0.8), _record(0, [1.0, 99.0], optim="adas", beta=0.9)]
    table = paper_table(spec, published, records)
    rows = {(r[0], r[1], r[2]): r[3:] for r in table.rows}
    assert rows[("CIFAR-10", "2", "AdaM")] == [f"53.00 ± {statistics.stdev([52, 54]):.2f}", "2", "50.00 ± 1.0", "3.00"]
    assert rows[("CIFAR-10", "3", "AdaM")][:2] == ["57.00 ± 1.41", "2"]
    assert rows[("CIFAR-10", "2", "AdaS beta=0.8")] == ["61.00 ± 0.00", "1", "60.00", "1.00"]  # beta=0.9 excluded


def test_cells_mark_reduced_and_lossy_runs_and_count_divergence(tmp_path: Path) -> None:
    spec, published = _published(tmp_path)
    records = [_record(0, [10.0, 52.0, 56.0], reduced=True, lossy=True), _record(1, [], status="diverged"),
               _record(0, [1.0, 2.0], optim="adas", beta=0.8, status="diverged")]
    rows = {(r[0], r[1], r[2]): r[3] for r in paper_table(spec, published, records).rows}
    assert rows[("CIFAR-10", "2", "AdaM")] == "52.00 ± 0.00†‡ (1 diverged)"
    assert rows[("CIFAR-10", "2", "AdaS beta=0.8")] == "NaN (0/1)"


def test_empty_cells_show_a_dash(tmp_path: Path) -> None:
    spec, published = _published(tmp_path)
    assert {row[3] for row in paper_table(spec, published, []).rows} == {"-"}


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


def test_adalip_tables_render_ours_beside_the_paper() -> None:
    from bench.tables.adalip import render

    def run(optim: str, lr: float, seed: int, train: list[float]) -> dict:
        record = _record(seed, [50.0] * len(train), optim=optim, experiment="adalip_mnist")
        record["dataset"] = "mnist"
        record["config"]["optim"]["hparams"]["lr"] = lr
        for row, acc in zip(record["history"], train):
            row["train_acc1"] = acc
        return record

    records = [run("adalip", 0.01, 0, [90.0, 99.0]), run("adalip", 0.01, 1, [95.0, 97.0]),
               run("adalip", 0.1, 0, [80.0, 85.0])]
    table2 = next(t for t in render(records) if t.name == "adalip_table2")
    rows = {(r[0], r[1]): r[2:] for r in table2.rows}
    # per-LR score = median over runs of each run's peak: lr 0.01 -> median(0.99, 0.97) = 0.98; lr 0.1 -> 0.85
    assert rows[("AdaLip", "Max")] == ["0.98", "1", "-0.020"]
    assert rows[("AdaLip", "Median")][0] == f"{(0.98 + 0.85) / 2:.4g}"
    assert rows[("SGD", "Max")][0] == "-"
    # a diverged run keeps its place in the LR grid (its peak before diverging): Mean over 3 LRs
    diverged = run("adalip", 0.5, 0, [30.0])
    diverged["status"] = "diverged"
    table2 = next(t for t in render(records + [diverged]) if t.name == "adalip_table2")
    rows = {(r[0], r[1]): r[2:] for r in table2.rows}
    assert rows[("AdaLip", "Mean")][0] == f"{(0.98 + 0.85 + 0.30) / 3:.4g}"


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
    """The AdaLip tables read the same published/ as the spec tables: the store's when it has one."""
    from bench.tables.__main__ import main

    store = _store(tmp_path)
    (store / "published").mkdir()
    for source in (ROOT / "results" / "published").glob("*.csv"):
        with open(source, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if source.stem == "adalip_table2":
            key = "row"
            rows = [{k: (v if k == key else "0.123") for k, v in row.items()} for row in rows]
        with open(store / "published" / source.name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    assert main(["--results", str(store), "--quiet"]) == 0
    with open(store / "tables" / "adalip_table2.csv", newline="") as handle:
        assert {row["paper"] for row in csv.DictReader(handle)} == {"0.123"}


@pytest.mark.parametrize(("overrides", "label"), [
    (["optim=adas"], "AdaS beta=0.8"), (["optim=adas", "optim.hparams.beta=0.9"], "AdaS beta=0.9"),
    (["optim=adas", "optim.hparams.beta=0.975"], "AdaS beta=0.975"), (["optim=adam"], "AdaM"),
    ([], "SGD-StepLR"), (["optim=sgd", "schedule=step"], "SGD-StepLR"), (["optim=sgd", "schedule=constant"], None),
    (["optim=adabound"], "AdaBound"), (["optim=adam", "schedule=step"], None),
])
def test_adas_table1_spec_matches_real_configs(overrides: list[str], label: str | None) -> None:
    """A record of each paper setting lands in exactly its own AdaS Table 1 column (other settings in none)."""
    import yaml

    from bench.tables.records import matches
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
