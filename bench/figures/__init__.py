"""Figures from run records: ``python -m bench.figures <name> ... --out fig.png``.

Each figure is its own module in this package exposing ``main(argv: list[str]) -> None``; the
dispatcher (``__main__``) finds them by module name, so adding a figure is adding a module. Every
figure's ``--out`` is the file to write, its suffix picking the format (``add_out``, ``out_path``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import BenchError

FORMATS = (".png", ".pdf", ".svg")


def add_out(parser: argparse.ArgumentParser, default: str | None) -> None:
    """The ``--out`` option every figure shares."""
    parser.add_argument("--out", default=default, required=default is None,
                        help=f"the file to write; its suffix picks the format ({', '.join(FORMATS)})"
                        + (f" (default: {default})" if default else ""))


def out_path(text: str) -> Path:
    """``--out`` as a figure file, or one ``error:`` line naming the fix (before anything is drawn)."""
    path = Path(text)
    if path.is_dir() or path.suffix.lower() not in FORMATS:
        raise BenchError(f"--out {text}: a figure is one file whose suffix picks the format "
                         f"({', '.join(FORMATS)}); pass e.g. --out {path.stem or 'figure'}.png")
    return path
