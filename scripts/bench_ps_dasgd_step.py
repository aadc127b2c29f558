"""Step overhead of PS-DA-SGD against D-Adapt SGD on the same model (issue: <= 1.5x).

Times ``optimizer.step()`` alone: before every timed step, the same fixed random gradients are
copied into ``p.grad`` (untimed; PS-DA-SGD scales ``p.grad`` in place, as dadaptation adds weight
decay in place). The two optimizers alternate in short blocks so that both see the same machine
load; the script prints the median time per step and the ratio measured in this one process.
``--batch N`` also times whole training steps (forward, backward and step on N random
CIFAR-sized images).

    python scripts/bench_ps_dasgd_step.py [--model resnet18] [--steps 60] [--batch 0] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages

from models import create_model  # noqa: E402
from optimizers import PSDASGD, DAdaptSGD  # noqa: E402

Timed = tuple[Callable[[], None], Callable[[], None]]  # (untimed preparation, timed step)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds(prepare: Callable[[], None], step: Callable[[], None], device: torch.device) -> float:
    prepare()
    sync(device)
    started = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - started


def compare(entries: dict[str, Timed], total: int, block: int, device: torch.device) -> dict[str, float]:
    """Median seconds per step of each entry, in alternating blocks of ``block`` after a warm-up."""
    for prepare, step in entries.values():
        for _ in range(2):
            seconds(prepare, step, device)
    times: dict[str, list[float]] = {name: [] for name in entries}
    for _ in range(max(1, total // block)):
        for name, (prepare, step) in entries.items():
            times[name] += [seconds(prepare, step, device) for _ in range(block)]
    return {name: statistics.median(values) for name, values in times.items()}


def report(what: str, medians: dict[str, float]) -> None:
    for name, value in medians.items():
        print(f"  {what:18s} {name:10s} {value * 1e3:9.2f} ms")
    print(f"  {what:18s} ratio PSDASGD / DAdaptSGD = {medians['PSDASGD'] / medians['DAdaptSGD']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per optimizer")
    parser.add_argument("--block", type=int, default=5, help="steps per alternating block")
    parser.add_argument("--batch", type=int, default=0, help="also time whole training steps at this batch size")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(0)
    models = [create_model(args.model, num_classes=100, in_channels=3).to(device) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    grads = [torch.randn_like(p) * 1e-2 for p in models[0].parameters()]
    optimizers = {"DAdaptSGD": DAdaptSGD(models[0].parameters(), momentum=0.9),
                  "PSDASGD": PSDASGD(models[1].parameters(), momentum=0.9)}
    n_params = sum(p.numel() for p in models[0].parameters())
    print(f"model {args.model} ({n_params / 1e6:.2f}M parameters, {len(grads)} tensors) on {device}, "
          f"threads {torch.get_num_threads()}")

    def set_grads(model: torch.nn.Module) -> Callable[[], None]:
        def prepare() -> None:
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
        return prepare

    entries = {name: (set_grads(model), opt.step) for model, (name, opt) in zip(models, optimizers.items())}
    report("optimizer.step()", compare(entries, args.steps, args.block, device))
    if args.batch:
        inputs = torch.randn(args.batch, 3, 32, 32, device=device)
        targets = torch.randint(0, 100, (args.batch,), device=device)

        def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[], None]:
            def step() -> None:
                optimizer.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(inputs), targets).backward()
                optimizer.step()
            return step

        entries = {name: (lambda: None, train_step(model, opt))
                   for model, (name, opt) in zip(models, optimizers.items())}
        report(f"training step (batch {args.batch})", compare(entries, max(2, args.steps // 10), 1, device))


if __name__ == "__main__":
    main()
