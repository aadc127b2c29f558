"""Peak CPU memory of one training step (forward, backward, Adam step) at crop 512, batch 2.

Each model runs in a fresh subprocess: the resident set before the step (model, Adam state after a
first step, inputs) and the process's peak resident set during a second step (``ru_maxrss``); their
difference is what the step's activations and gradients add. Activations grow with the batch, so
batch 16 on one device needs about ``before + 16 / batch x (peak - before)``.

    python scripts/bench_segmentation_memory.py [--models upernet_swin_t segnext_t] [--batch 2] [--crop 512]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mib() -> float:
    """The current resident set (MiB) from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(model_name: str, batch: int, crop: int) -> dict[str, float]:
    """Memory (MiB) around one training step of ``model_name`` (run in its own process)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from bench.workloads.segmentation import segmentation_loss
    from models import create_model

    torch.manual_seed(0)
    model = create_model(model_name, num_classes=150).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=6e-5)
    inputs = torch.randn(batch, 3, crop, crop)
    targets = torch.randint(0, 150, (batch, crop, crop))

    def step() -> None:
        out = model(inputs)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = segmentation_loss(logits, targets, 255, False)
        if aux is not None:
            loss = loss + model.aux_weight * segmentation_loss(aux, targets, 255, False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # Adam's state exists from here on
    optimizer.zero_grad(set_to_none=True)
    before = rss_mib()
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    params = sum(p.numel() for p in model.parameters())
    return {"params_m": params / 1e6, "before_mib": before, "peak_mib": peak, "step_mib": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["upernet_swin_t", "segnext_t"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.crop)))
        return
    print(f"one training step (Adam), crop {args.crop}, batch {args.batch}, CPU, fp32")
    results = {}
    for name in args.models:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--batch", str(args.batch),
                              "--crop", str(args.crop)], capture_output=True, text=True, check=True)
        results[name] = r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:16s} {r['params_m']:6.2f} M params  before step {r['before_mib']:8.0f} MiB  "
              f"peak {r['peak_mib']:8.0f} MiB  step adds {r['step_mib']:8.0f} MiB  "
              f"batch-16 estimate {r['before_mib'] + 16 / args.batch * r['step_mib']:8.0f} MiB")
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        print(f"ratio of the step's added memory {a} / {b}: {ra['step_mib'] / rb['step_mib']:.2f}")


if __name__ == "__main__":
    main()
