"""Dispatch ``python -m bench.figures <name> [args]`` to ``bench.figures.<name>.main(args)``."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import bench.figures
from bench.errors import BenchError, report


def available() -> list[str]:
    """Figure modules of this package (every submodule with a ``main``)."""
    return sorted(m.name for m in pkgutil.iter_modules(bench.figures.__path__) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] not in names:
        print(f"usage: python -m bench.figures {{{','.join(names)}}} <args>  (--help after the name)")
        return 2
    try:
        importlib.import_module(f"bench.figures.{argv[0]}").main(argv[1:])
    except BenchError as exc:
        report(exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
