"""Overhead of our trainer over a bare PyTorch loop, per epoch, on the same model and batches.

    python scripts/bench_trainer_overhead.py [--from ../shared/data/cifar10.tar.xz] [--data-root data]
        [--subset 2000] [--repeats 5] [--threads 2] [--device cpu]

"Ours" is a whole ``python -m bench`` run in this process (``bench.run.execute``: records,
per-epoch checkpoints, the progress bar, divergence checks, the optimizer driver and its hooks,
time accounting) of one epoch of a width-16 ResNet-18 with SGD on a CIFAR-10 subset; its cost is the
epoch's ``epoch_time_s`` (training, end-of-epoch hooks, evaluation) plus its checkpoint time.
"Bare" is the loop anyone would write: the same model, initial weights, loaders and batches
(the same ``TensorLoader``), ``zero_grad / forward / cross_entropy / backward / step``, then an
evaluation pass. The two alternate ``--repeats`` times; the script prints each ratio, their median
and spread. Without ``--from`` and no prepared copy it uses random stand-in images (said so).
Not a test: these machines are noisy, which is why both sides run in one process, alternating.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's bench, not an installed one

from bench import CONF_DIR  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.data.build import build_loaders  # noqa: E402
from bench.plan import plan  # noqa: E402
from bench.run import execute  # noqa: E402
from bench.trainer import seed_everything  # noqa: E402
from bench.workloads.classification import find_data  # noqa: E402
from models import create_model  # noqa: E402


def _config(args: argparse.Namespace, home: Path) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = ["trainer.epochs=1", f"trainer.train_subset={args.subset}", "trainer.test_subset=1000",
                 f"trainer.device={args.device}", "trainer.progress=true", "force=true", "dataset.stand_in=true",
                 f"results_dir={home / 'results'}", f"work_dir={home / 'runs'}", f"data_root={args.data_root}"]
    if args.source:
        overrides.append(f"dataset.source={args.source}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)


def ours(cfg: dict) -> float:
    """Seconds of one epoch of the full run path (its epoch time plus its checkpoint write)."""
    record = execute(cfg).record
    assert record is not None and record["status"] == "finished", record
    return record["history"][0]["epoch_time_s"] + record["time"]["checkpoint_s"]


def bare(cfg: dict, device: torch.device) -> float:
    """Seconds of the same epoch with a plain loop on the same loaders, model and initial weights."""
    planned = plan(cfg, ("model",))
    seed_everything(planned["seed"])
    train, test, _ = build_loaders(planned, find_data(planned["dataset"], planned["data_root"]), device)
    model = create_model("resnet18", num_classes=10, in_channels=3, width=16).to(device)
    hp = planned["optim"]["hparams"]
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                                weight_decay=hp["weight_decay"])
    start = time.perf_counter()
    model.train()
    for inputs, targets in train.epoch(1):
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for inputs, targets in test.epoch(0):
            nn.functional.cross_entropy(model(inputs), targets, reduction="sum")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, default=None, help="CIFAR-10 archive or folder")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--subset", type=int, default=2000, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(args, Path(tmp))
        ours(cfg), bare(cfg, device)  # warm-up: data preparation, allocator, kernels
        ratios = []
        for repeat in range(args.repeats):
            a, b = ours(cfg), bare(cfg, device)
            ratios.append(a / b)
            print(f"repeat {repeat + 1}: ours {a:.2f} s, bare {b:.2f} s, ratio {a / b:.3f}", flush=True)
    data = find_data(cfg["dataset"] | {"stand_in": True}, str(args.data_root)).tag
    print(f"trainer overhead ({device}, {args.subset} images/epoch, data {data}): median ratio "
          f"{statistics.median(ratios):.3f}, spread {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} repeats")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:   # bad input (a missing --from, a bad option): one line, no traceback
        sys.exit(f"error: {exc}")
