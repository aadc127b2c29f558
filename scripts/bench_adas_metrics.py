"""Speed of the AdaS/RMSGD machinery, as ratios measured in one process (issue 4).

1. Metric pass over every conv layer of the CIFAR ResNet-34 (36 convs, both unfoldings):
   ``optimizers.lowrank_metrics.LowRankMetrics`` (batched by shape, on ``--device``) against the
   ``adas`` 1.1.3 package's ``Metrics`` (one ``torch.svd`` + SciPy search per matrix) on the same
   weights; also checks identical retained ranks and metrics within 1e-5.
2. One optimizer step of AdaS and RMSGD against ``torch.optim.SGD(momentum=0.9, foreach=True)`` on
   the same model and gradients, with distinct learning rates per layer (as after training).

The weights are the ResNet-34 initialisation plus a planted low-rank part per conv (random init alone
gives rank 0 everywhere, which would not exercise the shrinkage and metric code).

    python scripts/bench_adas_metrics.py [--device cpu|cuda] [--threads 1] [--steps 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

# measure THIS checkout's code: run as a script, sys.path[0] is scripts/, and the editable install
# would otherwise import the main checkout's optimizers (worktrees measured main's code)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.resnet_cifar import BasicBlock, ResNet  # noqa: E402
from optimizers import RMSGD, AdaS  # noqa: E402
from optimizers.lowrank_metrics import LowRankMetrics  # noqa: E402

KEYS = ("kg", "condition", "rank")


def resnet34(device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = ResNet(BasicBlock, [3, 4, 6, 3], num_classes=100).to(device)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 4:
                out_c, rest = p.shape[0], p[0].numel()
                k = max(1, min(out_c, rest) // 8)
                low = torch.randn(out_c, k, device=device) @ torch.randn(k, rest, device=device)
                p.add_(0.3 * p.std() / k**0.5 * low.reshape(p.shape))
    return model


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def metric_pass(device: str) -> None:
    from adas.metrics import Metrics   # test-only dependency: pip install adas==1.1.3

    model = resnet34(device)
    convs = [p for p in model.parameters() if p.dim() == 4]
    ours = LowRankMetrics()
    ours.compute(convs)                                       # warm-up (library initialisation)
    t_ours, mine = timed(lambda: ours.compute(convs), repeats=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = Metrics(list(model.parameters()))
        t_pkg, _ = timed(history, repeats=2)                  # best of 2 for both
    theirs = [m for _, m in history.history[-1] if m is not None]
    worst, same_ranks = 0.0, True
    for o, t in zip(mine, theirs):
        for prefix, channel in (("in_", t.input_channel), ("out_", t.output_channel)):
            same_ranks &= o[prefix + "rank"] == channel.rank
            for key, ref in zip(KEYS, (channel.KG, channel.condition, channel.rank)):
                worst = max(worst, abs(o[prefix + key] - ref) / max(abs(ref), 1.0))
    ranks = [o["out_rank"] for o in mine]
    print(f"metric pass, ResNet-34 ({len(convs)} convs x 2 unfoldings) on {device}:")
    print(f"  adas package {t_pkg:8.3f} s   ours {t_ours:8.3f} s   speed-up {t_pkg / t_ours:7.1f}x")
    print(f"  identical ranks: {same_ranks}   max |diff| of kg/condition/rank (relative when >1): {worst:.2e}"
          f"   (non-zero out ranks: {sum(r > 0 for r in ranks)}/{len(ranks)})")


def step_cost(device: str, steps: int) -> None:
    model = resnet34(device)
    params = list(model.parameters())
    grads = [torch.randn_like(p) * 1e-3 for p in params]

    def make(kind: str) -> torch.optim.Optimizer:
        if kind == "sgd":
            return torch.optim.SGD(params, lr=0.03, momentum=0.9, weight_decay=5e-4, foreach=True)
        opt = (AdaS if kind == "adas" else RMSGD)(params, lr=0.03, momentum=0.9, weight_decay=5e-4)
        opt.sched["slot_lr"] = [0.03 * (1 + 0.01 * i) for i in range(len(opt.sched["slot_lr"]))]
        opt._apply_lrs()                                      # distinct LR per layer, as in training
        return opt

    optimizers = {kind: make(kind) for kind in ("sgd", "adas", "rmsgd")}
    for p, g in zip(params, grads):
        p.grad = g
    times: dict[str, list[float]] = {kind: [] for kind in optimizers}
    for _ in range(3):                                        # warm-up, momentum buffers
        for opt in optimizers.values():
            opt.step()
    for _ in range(steps):                                    # interleaved to share the CPU's moods
        for kind, opt in optimizers.items():
            times[kind].append(timed(opt.step)[0])
    sgd = statistics.median(times["sgd"])
    print(f"optimizer step, ResNet-34 ({sum(p.numel() for p in params) / 1e6:.1f} M params) on {device}, "
          f"median of {steps}:")
    print(f"  SGD(momentum=0.9, foreach=True) {sgd * 1e3:8.2f} ms")
    for kind in ("adas", "rmsgd"):
        t = statistics.median(times[kind])
        print(f"  {kind:5s} {t * 1e3:8.2f} ms   ratio to SGD {t / sgd:5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-metrics", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_metrics:
        metric_pass(args.device)
    step_cost(args.device, args.steps)


if __name__ == "__main__":
    main()
