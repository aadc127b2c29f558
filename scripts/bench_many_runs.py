"""Runs per hour of a sweep of small runs: N at a time (hydra/launcher=parallel) vs one after another.

    python scripts/bench_many_runs.py --from ../shared/data/mnist.tar.xz [--runs 4] [--jobs 2] [--epochs 1]
    python scripts/bench_many_runs.py --experiment autodrop_nqm --dataset none --epochs 1000  # generated data

Both sides are the same ``python -m bench --multirun`` of a preset (default the AdaLip MNIST network,
``+experiment=adalip_mnist``; seeds 0..runs-1, a few epochs), into throw-away stores, in this process's machine:
sequentially with the default launcher (PyTorch's default threads), and with ``hydra/launcher=parallel
hydra.launcher.n_jobs=<jobs>`` (each run gets cores // jobs threads). Prints both rates and their
ratio (goal on 2 cores: >= 1.6x), and, from the records, each side's mean training time per run and
its thread count: N runs at once beat one after another by about N x (training time of a run with all
the threads) / (training time of a run with its share of them, beside the others), so a model whose
steps already use every core well gains little. The data is prepared once before timing. Not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], what: str) -> None:
    """Run ``command``; if it fails, exit with one message naming ``what`` and the command's own words."""
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr).strip()[-2000:]}")


def sweep(args: argparse.Namespace, store: Path, data_root: Path, parallel: bool) -> tuple[float, float, int]:
    """Seconds for the whole sweep, the runs' mean training seconds and their thread count."""
    launcher = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"] if parallel else []
    source = [] if args.source is None else [f"dataset.source={args.source}"]
    start = time.perf_counter()
    run([sys.executable, "-m", "bench", "--multirun", *launcher, f"+experiment={args.experiment}",
         "trainer.progress=false", f"trainer.epochs={args.epochs}", f"seed=range({args.runs})",
         f"results_dir={store / 'results'}", f"work_dir={store / 'runs'}", f"data_root={data_root}", *source],
        "the parallel sweep" if parallel else "the sequential sweep")
    seconds = time.perf_counter() - start
    records = [json.loads(path.read_text()) for path in (store / "results" / "runs").glob("*.json")]
    threads = {record["hardware"]["torch_threads"] for record in records}
    return seconds, statistics.mean(record["time"]["train_s"] for record in records), max(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="adalip_mnist", help="the preset to sweep (default adalip_mnist)")
    parser.add_argument("--dataset", default="mnist", help="its dataset, prepared once before timing (none: generated)")
    parser.add_argument("--from", dest="source", type=Path, help="the dataset's archive or folder")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    if (args.source is None) != (args.dataset == "none"):
        parser.error("give --from with a dataset, or --dataset none for a preset with generated data")
    with tempfile.TemporaryDirectory() as tmp:
        data_root = Path(tmp) / "data"
        if args.source is not None:
            args.source = args.source.resolve()
            run([sys.executable, "-m", "bench.data", "prepare", args.dataset, "--from", str(args.source),
                 "--root", str(data_root)], f"preparing {args.dataset} from {args.source}")
        one = sweep(args, Path(tmp) / "sequential", data_root, parallel=False)
        many = sweep(args, Path(tmp) / "parallel", data_root, parallel=True)
    (one, one_train, one_threads), (many, many_train, many_threads) = one, many
    rate = lambda seconds: args.runs * 3600 / seconds  # noqa: E731
    print(f"{args.runs} {args.experiment} runs of {args.epochs} epoch(s): one after another {rate(one):.0f} runs/h "
          f"({one:.0f} s); {args.jobs} at a time {rate(many):.0f} runs/h ({many:.0f} s); ratio {one / many:.2f}x")
    print(f"training time per run: {one_train:.1f} s with {one_threads} thread(s) alone, {many_train:.1f} s with "
          f"{many_threads} thread(s) beside the others: {args.jobs * one_train / many_train:.2f}x expected from "
          "the training time alone")


if __name__ == "__main__":
    main()
