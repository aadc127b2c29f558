"""Published paper numbers (results/published/*.csv) and their table specs (results/specs/*.yaml).

* every CSV equals the notes' transcription (the Markdown tables of ``notes/<paper>.md`` section 3,
  parsed here) in the same order, and every printed value also appears in the paper's own text;
* every spec loads with ``bench.tables.spec.load_spec``; each `match` override names an existing config
  (``conf/<group>/<name>.yaml``; presets still missing from conf/experiment are skipped, named) and a
  dotted override names a key of the config it sets; each row of a table is a distinct cell;
* the AdaLip LR grids of the specs are the paper's (notes/adalip.md section 2).

The papers live outside the repository: ``$BENCH_PAPERS`` or ``../shared/papers`` beside the checkout.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.tables.spec import choices, load_spec
from tests.conftest import ROOT

PUBLISHED = ROOT / "results" / "published"
SPECS = ROOT / "results" / "specs"
CONF = ROOT / "conf"
PAPERS = Path(os.environ.get("BENCH_PAPERS") or ROOT.parent / "shared" / "papers")
GROUPS = {"+experiment": "experiment", "experiment": "experiment", "optim": "optim", "model": "model",
          "schedule": "schedule", "dataset": "dataset", "workload": "workload"}
VALUE_COLUMNS = ("mean", "std", "train_loss", "successes", "runs")

Keys = Callable[[tuple[str, ...]], dict[str, str]]

# --- the notes' labels -> the CSVs' labels ----------------------------------------------------------
DATASET = {"CIFAR10": "CIFAR-10", "CIFAR100": "CIFAR-100", "C10": "CIFAR-10", "C100": "CIFAR-100",
           "MHIST": "MHIST", "ADP": "ADP"}
NETWORK = {"R18": "ResNet18", "R34": "ResNet34", "R50": "ResNet50", "R101": "ResNet101", "RNeXt": "ResNeXt",
           "MV2": "MobileNetV2"}


def net(label: str) -> str:
    return NETWORK.get(label, label)


def dataset_net(labels: tuple[str, ...]) -> dict[str, str]:
    """``CIFAR10 R18`` -> dataset CIFAR-10, model ResNet18."""
    data, model = labels[0].split()
    return {"dataset": DATASET[data], "model": net(model)}


def cutout_column(header: str) -> dict[str, str]:
    """``C10 SAM^C`` -> dataset CIFAR-10, optimizer SAM (the cutout is the dataset preset's)."""
    data, optimizer = header.split()
    return {"dataset": DATASET[data], "optimizer": optimizer.removesuffix("^C")}


def autodrop_method(label: str) -> str:
    """``Baseline† (ρ = 0.2)`` -> Baseline; ``AutoDrop (ρ = 0.1)`` -> AutoDrop rho=0.1."""
    if label.startswith("Baseline"):
        return "Baseline"
    return "AutoDrop rho=" + re.search(r"ρ = ([\d.]+)", label).group(1)


def one(key: str, mapping: Callable[[str], str] = str) -> Keys:
    return lambda labels: {key: mapping(labels[-1])}


def nothing(labels: tuple[str, ...]) -> dict[str, str]:
    return {}


# name -> (notes file, heading that starts the table's section, label columns, row keys, column keys).
# The CSV's key columns are the row keys' then the column keys' (in this order), except where KEY_ORDER says.
NOTES_TABLES: dict[str, tuple[str, str, int, Keys, Keys]] = {
    "adas_table1": ("adas.md", "### 3.1 Table 1", 2, lambda l: {"dataset": l[0], "epoch": l[1]},
                    one("method", lambda h: h.replace("β", "beta"))),
    "rmsgd_table1a": ("rmsgd.md", "### Table 1a", 1, dataset_net, one("optimizer")),
    "rmsgd_table1b": ("rmsgd.md", "### Table 1b", 1, one("model"), lambda l: cutout_column(l[0])),
    "rmsgd_table2": ("rmsgd.md", "### Table 2 ", 1, one("epoch"),
                     lambda l: dict(zip(("optimizer", "accuracy"), l[0].split()))),
    "rmsgd_table3": ("rmsgd.md", "### Table 3 ", 1, one("model"), one("optimizer")),
    "rmsgd_table4": ("rmsgd.md", "### Table 4 ", 1, dataset_net, one("optimizer")),
    "rmsgd_table6": ("rmsgd.md", "### Table 6 ", 1, lambda l: {"dataset": "MHIST", "model": l[0]}, one("optimizer")),
    "rmsgd_table7": ("rmsgd.md", "### Table 7 ", 1, dataset_net, one("optimizer")),
    "rmsgd_table8": ("rmsgd.md", "### Table 8 ", 1, one("model"), lambda l: cutout_column(l[0])),
    "autodrop_table1": ("autodrop.md", "### Table 1", 2, lambda l: {"setup": l[0], "method": autodrop_method(l[1])},
                        nothing),
    "autodrop_table2": ("autodrop.md", "### Table 2", 1, one("lr"), one("method", autodrop_method)),
    "ps_table3": ("ps-lrfree.md", "### Table 3 ", 1, one("method"), one("task")),
    "ps_table4": ("ps-lrfree.md", "### Table 4 ", 1, nothing, one("method")),
    "adalip_table2": ("adalip.md", "**Table 2 ", 1, one("row"), one("optimizer")),
    "adalip_table3": ("adalip.md", "**Table 3 ", 1, one("row"), one("optimizer")),
    "adalip_table4": ("adalip.md", "**Table 4 ", 1, one("row"), one("optimizer")),
    "adalip_table5": ("adalip.md", "**Table 5 ", 1, one("optimizer"), one("dataset")),
}
KEY_ORDER = {"adalip_table2": ["optimizer", "row"], "adalip_table3": ["optimizer", "row"],
             "adalip_table4": ["optimizer", "row"], "adalip_table5": ["optimizer", "dataset", "lr_grid"],
             "adas_table1": ["dataset", "epoch", "method"], "rmsgd_table1b": ["dataset", "model", "optimizer"],
             "rmsgd_table8": ["dataset", "model", "optimizer"]}
# Tables whose numbers are not in the paper's text (AdaS Table 1: the authors' repository image).
NOT_IN_PAPER_TEXT = {"adas_table1"}


def papers() -> Path:
    if not (PAPERS / "notes").is_dir():
        pytest.skip(f"the papers and their notes are not at {PAPERS} (set BENCH_PAPERS=<folder with notes/>)")
    return PAPERS


def markdown_table(text: str, heading: str) -> list[list[str]]:
    """The first Markdown table after the line starting with ``heading``: header then data rows
    (separator and section rows such as ``| *Steepest descent* |||`` left out)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    first = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("|"))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: ") or not any(cells[1:]):
            continue
        rows.append(cells)
    return rows


def parse_cell(cell: str) -> dict[str, str] | None:
    """A printed cell as the CSV's value columns; None for ``-`` (not run)."""
    cell = cell.replace("**", "").strip()
    if cell == "-":
        return None
    match = re.fullmatch(r"(?P<mean>[\d.]+|NaN)\s*(?:±\s*(?P<std>[\d.]+))?\s*(?:\((?P<paren>[^)]*)\))?", cell)
    assert match, f"unreadable cell {cell!r}"
    values = {"mean": match["mean"].lower(), "std": match["std"] or ""}
    paren = match["paren"]
    if paren and "/" in paren:
        values["successes"], values["runs"] = paren.split("/")
    elif paren:
        values["train_loss"] = paren
    return values


def notes_rows(name: str) -> list[dict[str, str]]:
    """The long-format rows of one table, read from the notes."""
    notes, heading, label_columns, row_keys, column_keys = NOTES_TABLES[name]
    header, *body = markdown_table((papers() / "notes" / notes).read_text(), heading)
    rows, carried = [], [""] * label_columns
    for cells in body:
        carried = [cell or carried[i] for i, cell in enumerate(cells[:label_columns])]
        for column, cell in zip(header[label_columns:], cells[label_columns:]):
            values = parse_cell(cell)
            if values is not None:
                rows.append({**row_keys(tuple(carried)), **column_keys((column,)), **values})
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.yaml"))


def load(path: Path):
    return load_spec(path, PUBLISHED)


# --- the published numbers --------------------------------------------------------------------------
def test_every_table_has_a_csv_and_a_spec() -> None:
    assert sorted(p.stem for p in PUBLISHED.glob("*.csv")) == sorted(NOTES_TABLES)
    assert sorted(p.stem for p in spec_files()) == sorted(NOTES_TABLES)


@pytest.mark.parametrize("name", sorted(NOTES_TABLES))
def test_csv_equals_the_notes(name: str) -> None:
    published = read_csv(PUBLISHED / f"{name}.csv")
    expected = notes_rows(name)
    keys = KEY_ORDER.get(name) or [k for k in expected[0] if k not in VALUE_COLUMNS]
    header = list(published[0])
    assert header[:len(keys)] == keys and header[len(keys):len(keys) + 2] == ["mean", "std"]
    compared = [k for k in header if k in expected[0] or k in VALUE_COLUMNS]
    assert [{k: row[k] for k in compared} for row in published] == \
           [{k: row.get(k, "") for k in compared} for row in expected]


def paper_text(paper_id: str) -> str:
    """The paper's text without LaTeX markup, the std notations (``_{s}``, ``\\pm``) as ``±``, unspaced."""
    text = (papers() / f"{paper_id}.txt").read_text()
    for markup in (r"\boldsymbol", r"\textbf", "$", "{", "}"):
        text = text.replace(markup, "")
    text = text.replace(r"\pm", "±").replace("_", "±")
    return re.sub(r"\s*±\s*", "±", re.sub(r"\s+\(", "(", text))


@pytest.mark.parametrize("name", sorted(set(NOTES_TABLES) - NOT_IN_PAPER_TEXT))
def test_published_values_are_printed_in_the_paper(name: str) -> None:
    """Each cell as printed (mean±std, mean(train loss), mean(k/n), or the bare mean) is in the paper text."""
    paper_id = re.search(r"\((\d{3}_[0-9a-f]+)\)", yaml.safe_load((SPECS / f"{name}.yaml").read_text())["paper"])[1]
    text = paper_text(paper_id)
    missing = []
    for row in read_csv(PUBLISHED / f"{name}.csv"):
        mean = "NaN" if row["mean"] == "nan" else row["mean"]
        printed = mean + (f"±{row['std']}" if row["std"] else "") + \
            (f"({row['train_loss']})" if row.get("train_loss") else "") + \
            (f"({row['successes']}/{row['runs']})" if row.get("runs") else "")
        if not re.search(rf"(?<![\d.]){re.escape(printed)}(?![\d])", text):
            missing.append(printed)
    assert not missing, f"{name}: not in paper {paper_id}: {missing}"


# --- the specs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_spec_loads_and_its_rows_are_distinct_cells(path: Path) -> None:
    spec = load(path)
    assert len(spec.rows) == len(read_csv(PUBLISHED / f"{path.stem}.csv"))
    assert spec.title and spec.paper and spec.source and spec.notes
    seen: dict[str, dict[str, str]] = {}
    for row in spec.rows:
        reduction = row.reduction
        read_at = reduction.argument.get("column") if reduction.reducer == "at_epoch" and isinstance(
            reduction.argument, dict) else None
        cell = repr((sorted(row.overrides.items()), reduction, row.labels.get(read_at)))
        assert cell not in seen, f"{path.stem}: rows {seen[cell]} and {row.labels} are the same cell"
        seen[cell] = row.labels
        assert "+experiment" in row.overrides, f"{path.stem} {row.labels}: no preset"


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_tier_labels_exist(path: Path) -> None:
    spec = load(path)
    labels = {key: {row.labels[key] for row in spec.rows} for key in spec.keys}
    for name, tier in spec.tiers.items():
        for key, wanted in tier.only.items():
            assert key in labels and set(wanted) <= labels[key], f"{path.stem} tier {name}: only {key}={wanted}"
        rows = [row for row in spec.rows if all(row.labels[k] in v for k, v in tier.only.items())]
        for key in tier.overrides:
            group, _, rest = key.partition(".")
            assert group in ("trainer", "model", "workload"), f"{path.stem} tier {name}: unexpected override {key}"
            if group == "workload":   # set by the rows' presets: some workload config must have the key
                assert any(has_key(yaml.safe_load(p.read_text()), rest) for p in (CONF / "workload").glob("*.yaml")), key
                continue
            chosen = {"default"} if group == "trainer" else {r.overrides[group] for r in rows if group in r.overrides}
            for choice in chosen:
                assert has_key(config(group, choice), rest), f"{path.stem} tier {name}: {key} not in {group}/{choice}"


def group_choices() -> list[tuple[str, str]]:
    """Every (config group, name) a spec's `match` selects."""
    found = set()
    for path in spec_files():
        for labels in (yaml.safe_load(path.read_text()).get("match") or {}).values():
            for overrides in labels.values():
                found |= {(GROUPS[k], str(v)) for k, v in (overrides or {}).items() if k in GROUPS}
    return sorted(found)


@pytest.mark.parametrize("group,name", group_choices(), ids=lambda x: x)
def test_match_names_existing_configs(group: str, name: str) -> None:
    assert (CONF / group / f"{name}.yaml").is_file(), f"no conf/{group}/{name}.yaml"


def config(group: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())


def has_key(node: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_dotted_overrides_name_keys_of_the_chosen_config(path: Path) -> None:
    """``optim.hparams.beta`` beside ``optim: adas`` must be a key of conf/optim/adas.yaml (so schedule, model)."""
    for row in load(path).rows:
        for key in row.overrides:
            group, _, rest = key.partition(".")
            if rest and group in row.overrides:
                choice = row.overrides[group]
                assert has_key(config(group, choice), rest), f"{path.stem} {row.labels}: {key} not in {group}/{choice}"


def adalip_grids() -> dict[tuple[str, str], list[float]]:
    """{(preset, optimizer config): LR grid} from the notes' experimental matrix (notes/adalip.md section 2)."""
    header, *rows = markdown_table((papers() / "notes" / "adalip.md").read_text(), "## 2. Experimental matrix")
    presets = {"MNIST": "adalip_mnist", "CIFAR10": "adalip_cifar10", "CIFAR100": "adalip_cifar100"}
    families = {"SGD / AdaLip": ("sgd_keras", "adalip"), "Adam / AdamLip": ("adam_keras", "adamlip"),
                "RMSProp / RMSLip": ("rmsprop_keras", "rmslip")}
    grids = {}
    for cells in rows:
        family = cells[0].removesuffix(" LR grid")
        if family in families:
            for dataset, cell in zip(header[1:], cells[1:]):
                values = [float(v) for v in re.sub(r"\(\d+\)", "", cell).split(",")]
                grids.update({(presets[dataset], optim): values for optim in families[family]})
    return grids


@pytest.mark.parametrize("name", ["adalip_table2", "adalip_table3", "adalip_table4", "adalip_table5"])
def test_adalip_lr_grids_are_the_papers(name: str) -> None:
    grids = adalip_grids()
    for row in load(SPECS / f"{name}.yaml").rows:
        grid = grids[row.overrides["+experiment"], row.overrides["optim"]]
        assert choices(row.overrides["optim.hparams.lr"]) == grid, f"{name} {row.labels}"
