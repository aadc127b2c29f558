"""The CLI explains itself: ``python -m bench --help`` starts with what bench is, the presets and the
optimizers; every tool's ``--help`` has examples; every figure's ``--out`` is one file whose suffix
picks the format."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import CONF_DIR
from bench.figures.__main__ import available
from bench.figures.__main__ import main as figures
from tests.conftest import ROOT
from tests.report_store import generate, record


def test_bench_help_begins_with_what_bench_is_presets_optimizers_and_examples() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.splitlines()[0].startswith("bench reproduces the published tables of five papers")
    ours, hydra = text.split("== Configuration groups", 1)
    assert "Presets (+experiment=NAME" in ours and "Optimizers (optim=NAME" in ours and "Examples:" in ours
    for preset in (p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")):
        assert f"    {preset} " in ours, preset
    for optim in (p.stem for p in (CONF_DIR / "optim").glob("*.yaml")):
        assert optim in ours, optim
    assert "python -m bench +experiment=" in ours and "--multirun" in ours and "python -m bench.tables" in ours
    assert "experiment:" in hydra  # Hydra's own listing follows


@pytest.mark.parametrize("module", ["bench.tables", "bench.report", "bench.data", "bench.submit", "bench.sweep",
                                    "bench.figures",
                                   *(f"bench.figures {name}" for name in available())])
def test_every_tool_help_has_examples(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", *module.split(), "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    examples = done.stdout.split("examples:", 1)
    assert len(examples) == 2 and f"python -m {module.split()[0]}" in examples[1]


@pytest.fixture(scope="module")
def figure_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Arguments (all but --out) that let each figure draw."""
    root = tmp_path_factory.mktemp("figures")
    store = generate(root / "results", 8)
    adas = root / "adas.json"
    adas.write_text(json.dumps(record(2, epochs=4)))
    runs = ["--runs", str(store.runs)]
    return {"adas_layers": [str(adas)], "lr_estimates": ["--results", str(store.root)],
            "autodrop_nqm": ["--results", str(ROOT / "results" / "reference" / "autodrop_nqm")],
            "curves": runs, "adalip_grid": [*runs, "--experiment", "adalip_mnist"],
            "autodrop_angles": ["--runs", str(ROOT / "results" / "reference" / "autodrop_nqm" / "runs")]}


@pytest.mark.parametrize("suffix, magic", [(".pdf", b"%PDF"), (".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_every_figure_writes_the_file_named_by_out(figure_inputs: dict[str, list[str]], tmp_path: Path,
                                                   suffix: str, magic: bytes) -> None:
    assert set(figure_inputs) == set(available()), "give each figure its inputs here"
    for name, args in figure_inputs.items():
        out = tmp_path / "nested" / f"{name}{suffix}"
        assert figures([name, *args, "--out", str(out)]) == 0
        assert out.is_file() and out.read_bytes().startswith(magic), name


def test_out_that_is_not_a_figure_file_is_one_error_line(figure_inputs: dict[str, list[str]], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    for name, args in figure_inputs.items():
        for out in (tmp_path, tmp_path / "figure.txt"):
            assert figures([name, *args, "--out", str(out)]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: --out"), (name, err)
        assert list(tmp_path.iterdir()) == []
