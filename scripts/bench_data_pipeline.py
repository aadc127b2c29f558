"""Images per second of one augmented CIFAR-10 training epoch: fast path vs DataLoader path.

    python scripts/bench_data_pipeline.py [--from ../shared/data/cifar10.tar.xz] [--data-root data]
        [--workers 2] [--threads 1] [--subset N] [--batch-size 128] [--repeats 2]

Both paths run the AdaS/RMSGD pipeline (RandomCrop(32, padding=4), horizontal flip, kuangliu
normalisation) over the training split and deliver float batches on the device; the clock stops
after the last batch has reached the device (CUDA is synchronised). Prints one line per (device,
path), then the fast/DataLoader ratio per device, measured in this process. Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's bench, not an installed one

from bench.data import augment, cache, transforms  # noqa: E402
from bench.data.loader import TensorLoader  # noqa: E402
from bench.data.prepare import prepare_from, resolve  # noqa: E402
from bench.data.workers import WorkerLoader  # noqa: E402

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]


def _load(args: argparse.Namespace) -> cache.Split:
    if args.source is not None:
        folder = prepare_from("cifar10", args.source, args.data_root)
        return cache.read(folder).splits["train"]  # type: ignore[return-value]
    return resolve("cifar10", args.data_root, None, download=True).splits["train"]  # type: ignore[return-value]


def _epoch_rate(loader: TensorLoader | WorkerLoader, device: torch.device, repeats: int) -> float:
    """Best images/s over ``repeats`` epochs (the first epoch also warms up allocators and workers)."""
    best = 0.0
    for epoch in range(1, repeats + 1):
        start = time.perf_counter()
        count = 0
        for images, _ in loader.epoch(epoch):
            count += len(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_source = Path(os.environ.get("BENCH_TEST_DATA", "../shared/data")) / "cifar10.tar.xz"
    parser.add_argument("--from", dest="source", type=Path, default=default_source if default_source.exists() else None)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("BENCH_DATA_ROOT", "data")))
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--subset", type=int, default=None, help="first N training images (default: all 50,000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the main process (the fast path); workers use 1 each")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    split = _load(args)
    n = args.subset or len(split.labels)
    images, labels = np.array(split.images[:n]), np.array(split.labels[:n])
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"CIFAR-10 train, {n} images, batch {args.batch_size}, crop 32 pad 4 + flip; torch threads "
          f"{torch.get_num_threads()}, DataLoader workers {args.workers}")
    for device in devices:
        fast = TensorLoader(images, labels, batch_size=args.batch_size, mean=MEAN, std=STD, device=device,
                            augment=augment.build("crop_flip", padding=4))
        slow = WorkerLoader(cache.Split(images, labels), transforms.train_transform("crop_flip", {"padding": 4}, 32,
                                                                                    MEAN, STD),
                            batch_size=args.batch_size, device=device, workers=args.workers)
        rates = {"fast": _epoch_rate(fast, device, args.repeats), "dataloader": _epoch_rate(slow, device, args.repeats)}
        for path, rate in rates.items():
            print(f"{device.type:4s} {path:10s} {rate:10.0f} images/s")
        print(f"{device.type:4s} fast / dataloader = {rates['fast'] / rates['dataloader']:.2f}x")


if __name__ == "__main__":
    main()
