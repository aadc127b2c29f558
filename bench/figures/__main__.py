"""Dispatch ``python -m bench.figures <name> [args]`` to ``bench.figures.<name>.main(args)``."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import bench.figures
from bench.figures import FORMATS
from bench.errors import BenchError, report


EXAMPLES = """examples:
  python -m bench.figures adas_layers results/runs/<run_id>.json --out adas_layers.png
  python -m bench.figures lr_estimates --experiment ps_cifar100_resnet32 --out lr_estimates.pdf
  python -m bench.figures autodrop_nqm --results results/reference/autodrop_nqm --out autodrop_nqm.svg
  python -m bench.figures adas_layers --runs results/runs --optim rmsgd --panels lr kg q Q --out rmsgd.png
  python -m bench.figures autodrop_angles --runs results/runs --where config.schedule.name=autodrop --out angles.png
  python -m bench.figures adalip_grid --runs results/runs --experiment adalip_mnist --out adalip_mnist.pdf
  python -m bench.figures curves --runs results/runs --experiment cifar10_resnet34 --metric test_acc1 --out curves.png"""


def available() -> list[str]:
    """Figure modules of this package (every submodule with a ``main``)."""
    return sorted(m.name for m in pkgutil.iter_modules(bench.figures.__path__) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] not in names:
        print(f"usage: python -m bench.figures {{{','.join(names)}}} <args> --out FILE  (--help after the name)\n\n"
              f"Figures from run records; --out is the file to write, its suffix picks the format ({', '.join(FORMATS)}).\n"
              f"{EXAMPLES}")
        return 0 if argv[:1] in (["--help"], ["-h"]) else 2
    try:
        importlib.import_module(f"bench.figures.{argv[0]}").main(argv[1:])
    except BenchError as exc:
        report(exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
