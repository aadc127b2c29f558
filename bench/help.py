"""The first screen of ``python -m bench --help``: what bench is, the presets by paper and table, the
optimizers by paper and family, and example commands (then Hydra's own listing follows).

The lists are read from the config tree when the help is printed, so a new preset or optimizer
appears without editing this file: a preset's line is the first comment line of
``conf/experiment/<name>.yaml`` (which names the paper table it reproduces), an optimizer's paper is
the first of the five papers named in the header of ``conf/optim/<name>.yaml`` and its family is
its ``class_name``. ``conf/hydra/help/bench.yaml`` puts this text in Hydra's help template through the
``bench_help`` resolver (registered by ``bench.cli``).
"""
from __future__ import annotations

import importlib.util
import re
import textwrap
from collections import defaultdict
from pathlib import Path

import yaml

from bench import CONF_DIR

PAPERS = {"AdaS": "AdaS (Hosseini & Plataniotis 2020)", "RMSGD": "RMSGD (Hosseini, Tuli & Plataniotis 2022)",
          "AutoDrop": "AutoDrop", "AdaLip": "AdaLip (Ioannou et al. 2023)", "PS": "PS-SPS / PS-DA-SGD (Suh & Seo 2024)"}
OTHER = "other"
# The papers' own methods by class name (their config headers name the method, not always the paper).
METHODS = {"AdaS": "AdaS", "RMSGD": "RMSGD", "AdaLip": "AdaLip", "AdamLip": "AdaLip", "RMSLip": "AdaLip",
           "AdaLipU": "AdaLip", "AdamLipU": "AdaLip", "RMSLipU": "AdaLip", "PSSPS": "PS", "PSDASGD": "PS"}
WIDTH = 100

INTRO = """\
bench reproduces the published tables of five papers on adaptive learning rates (AdaS, RMSGD,
AutoDrop, AdaLip, PS-SPS/PS-DA-SGD) and compares their optimizers with strong baselines under one
protocol: one trainer, one config tree, one results store (results/runs/*.json, one record per run
with its config, commit, hardware and data provenance). Reduced or synthetic runs say so in every
table. README.md: "Running experiments"."""

EXAMPLES = """\
Examples:
  python -m bench +experiment=cifar10_resnet34 optim=adas                   # run one cell of a paper table
  python -m bench --multirun +experiment=cifar10_resnet34 optim=sgd,adam,adas seed=0,1,2   # a sweep
  python -m bench +experiment=cifar10_resnet34 optim=adas debug=smoke       # a few steps, to check it runs
  python -m bench.sweep adas_table1 --tier cpu --dry-run                     # a paper table's missing cells
  python -m bench.tables && python -m bench.report                          # tabulate; HTML report
  python -m bench +experiment=cifar10_resnet34 --cfg job                    # show the composed config"""


def header(path: Path) -> str:
    """The first comment line of a config file that is not a ``@package`` directive."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("#"):
            break
        text = text.lstrip("#").strip()
        if text and not text.startswith("@package"):
            return text
    return ""


def paper_of(text: str) -> str:
    """The paper named first in ``text`` (one of ``PAPERS``), else ``OTHER``."""
    found = [(m.start(), name) for name in PAPERS if (m := re.search(rf"\b{name}\b", text))]
    return min(found)[1] if found else OTHER


def presets(conf: Path = CONF_DIR) -> dict[str, list[tuple[str, str]]]:
    """``{paper: [(preset, its first comment line)]}``."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path in sorted((conf / "experiment").glob("*.yaml")):
        line = header(path)
        groups[paper_of(line)].append((path.stem, line))
    return groups


def optimizers(conf: Path = CONF_DIR) -> dict[str, dict[str, list[str]]]:
    """``{paper: {family (class name): [optim config names]}}``."""
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((conf / "optim").glob("*.yaml")):
        family = (yaml.safe_load(path.read_text()) or {}).get("class_name", path.stem)
        paper = METHODS.get(family) or paper_of(" ".join(header_lines(path)))
        groups[paper][family].append(path.stem)
    return groups


def header_lines(path: Path, count: int = 2) -> list[str]:
    lines = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
    return lines[:count]


def _ordered(groups: dict[str, object]) -> list[str]:
    return [p for p in (*PAPERS, OTHER) if p in groups]


def text(conf: Path = CONF_DIR) -> str:
    """The whole first screen (no ``$``: Hydra's template would read it as a placeholder)."""
    out = [INTRO, "", "Presets (+experiment=NAME, conf/experiment/), by paper; each line says which table or figure:"]
    by_paper = presets(conf)
    for paper in _ordered(by_paper):
        out.append(f"  {PAPERS.get(paper, 'other presets')}")
        for name, line in by_paper[paper]:
            out.append(f"    {name:26s} " + textwrap.shorten(line, WIDTH - 31, placeholder=" ..."))
    out += ["", "Optimizers (optim=NAME, conf/optim/), by the paper whose settings they carry, and family:"]
    by_optim = optimizers(conf)
    for paper in _ordered(by_optim):
        families = "; ".join(f"{family}: {', '.join(names)}" for family, names in sorted(by_optim[paper].items()))
        out += textwrap.wrap(f"{PAPERS.get(paper, 'other baselines')}: {families}", WIDTH,
                             initial_indent="  ", subsequent_indent="      ")
    out += ["  Schedules: schedule=NAME (conf/schedule/); schedule=auto gives each optimizer its paper's.", "",
            EXAMPLES]
    if importlib.util.find_spec("bench.sweep") is not None:
        out.append("  python -m bench.sweep adas_table1 --dry-run                               "
                   "# a paper table's missing cells")
    return "\n".join(out + [""]).replace("$", "")
