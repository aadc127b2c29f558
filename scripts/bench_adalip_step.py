"""Per-step cost of AdaLip / AdamLip / RMSLip over their PyTorch base optimizers (same process).

Two ratios per pair, each the median over interleaved repetitions:

* ``step``  : ``optimizer.step()`` alone on fixed random gradients (the optimizer's own cost);
* ``train`` : a whole training step (forward, backward, step) of the model on a random batch,
              the per-step overhead a run actually pays.

    python scripts/bench_adalip_step.py [--model resnet18] [--width 64] [--batch 32] [--reps 15]

Base optimizers use ``foreach=True`` (their fastest CPU/GPU path), as the *Lip ones do.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's packages first
from models import create_model  # noqa: E402
from optimizers import AdaLip, AdamLip, RMSLip  # noqa: E402

PAIRS: dict[str, tuple[Callable, Callable]] = {
    "AdaLip / SGD": (lambda p: AdaLip(p, lr=0.01), lambda p: torch.optim.SGD(p, lr=0.01, foreach=True)),
    "AdamLip / Adam": (lambda p: AdamLip(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
    "RMSLip / RMSprop": (lambda p: RMSLip(p, lr=1e-3),
                         lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, foreach=True)),
}


def _timer(fn: Callable[[], None], device: torch.device, n: int) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


def measure(make_opt: Callable, args: argparse.Namespace, device: torch.device) -> tuple[Callable, Callable]:
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, in_channels=3, width=args.width).to(device)
    opt = make_opt(model.parameters())
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    train_step()  # gradients exist and the state is initialised

    def step_only() -> None:
        opt.step()

    return step_only, train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5, help="steps per timing")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n_params = sum(p.numel() for p in create_model(args.model, num_classes=10, in_channels=3, width=args.width).parameters())
    print(f"{args.model} width {args.width} ({n_params / 1e6:.2f}M parameters), batch {args.batch}, {device}, "
          f"{args.threads} thread(s), median of {args.reps} interleaved repetitions")
    for name, (lip, base) in PAIRS.items():
        ours, theirs = measure(lip, args, device), measure(base, args, device)
        for i, kind in enumerate(("step", "train")):
            a, b = [], []
            for _ in range(args.reps):
                a.append(_timer(ours[i], device, args.steps))
                b.append(_timer(theirs[i], device, args.steps))
            ta, tb = statistics.median(a), statistics.median(b)
            print(f"{name:18s} {kind:5s}  {ta * 1e3:8.2f} ms / {tb * 1e3:8.2f} ms  ratio {ta / tb:.2f}x")


if __name__ == "__main__":
    main()
