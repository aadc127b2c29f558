"""Runs per hour of a sweep of small runs: N at a time (hydra/launcher=parallel) vs one after another.

    python scripts/bench_many_runs.py --from ../shared/data/mnist.tar.xz [--runs 4] [--jobs 2] [--epochs 1]

Both sides are the same ``python -m bench --multirun`` of the AdaLip MNIST network (``+experiment=
adalip_mnist``, seeds 0..runs-1, a few epochs), into throw-away stores, in this process's machine:
sequentially with the default launcher (PyTorch's default threads), and with ``hydra/launcher=parallel
hydra.launcher.n_jobs=<jobs>`` (each run gets cores // jobs threads). Prints both rates and their
ratio (goal on 2 cores: >= 1.6x). The data is prepared once before timing. Not a test.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sweep(args: argparse.Namespace, store: Path, data_root: Path, parallel: bool) -> float:
    """Seconds for the whole sweep."""
    command = [sys.executable, "-m", "bench", "--multirun", "+experiment=adalip_mnist", "trainer.progress=false",
               f"trainer.epochs={args.epochs}", f"seed=range({args.runs})", f"results_dir={store / 'results'}",
               f"work_dir={store / 'runs'}", f"data_root={data_root}", f"dataset.source={args.source}"]
    if parallel:
        command[3:3] = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, required=True, help="MNIST archive or folder")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    args.source = args.source.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "bench.data", "prepare", "mnist", "--from", str(args.source),
                        "--root", str(data_root)], cwd=ROOT, check=True, capture_output=True)
        one = sweep(args, Path(tmp) / "sequential", data_root, parallel=False)
        many = sweep(args, Path(tmp) / "parallel", data_root, parallel=True)
    rate = lambda seconds: args.runs * 3600 / seconds  # noqa: E731
    print(f"{args.runs} AdaLip-MNIST runs of {args.epochs} epoch(s): one after another {rate(one):.0f} runs/h "
          f"({one:.0f} s); {args.jobs} at a time {rate(many):.0f} runs/h ({many:.0f} s); ratio {one / many:.2f}x")


if __name__ == "__main__":
    main()
