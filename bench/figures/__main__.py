"""``python -m bench.figures <name> [options]``: dispatch to the module ``bench.figures.<name>``.

Each figure module exposes ``main(argv: list[str]) -> None``.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import bench.figures as package


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in available():
        sys.exit(f"usage: python -m bench.figures <name> [options]; names: {', '.join(available())}")
    importlib.import_module(f"bench.figures.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
