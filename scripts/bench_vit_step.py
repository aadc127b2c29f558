"""Our ViT training step (the DeiT recipe through a preset, the epoch loop and the driver) against a
bare timm loop with the same recipe, in the same process (issue 13: goal <= 1.03x).

Both train the same timm ViT-Tiny from the same weights on the same in-memory batches (data
loading is not timed: both would share the loader): timm ``Mixup`` with DeiT's settings, timm
``SoftTargetCrossEntropy``, AdamW with weight decay 0.05 except on norms, biases and position
embeddings (timm's ``param_groups_weight_decay``), and warm-up + cosine stepped per step. Ours is
``bench.trainer.Trainer``'s epoch over those batches (bf16 autocast on CUDA, as in a run); the bare
loop is the few lines below (same autocast). They alternate in rounds so that both see the same
machine load; the script prints the median seconds per step (CPU: process time, GPU: wall time) and
the ratio.

    python scripts/bench_vit_step.py                       # CPU: vit_tiny_cifar10 (32 px, patch 4)
    python scripts/bench_vit_step.py --preset ps_vit_tiny_imagenet_wd --batch 256   # GPU: 224 px
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages

from bench.optim_factory import build_driver  # noqa: E402
from bench.schedules import warmup_cosine_factor  # noqa: E402
from bench.trainer import Trainer, pick_device  # noqa: E402
from bench.workloads.base import TrainState  # noqa: E402
from bench.workloads.classification import Classification, MixupLoader  # noqa: E402


class Batches:
    """A loader that yields the same in-memory batches every epoch."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches, self.batch_size = batches, len(batches[0][1])
        self.examples_per_epoch = self.batch_size * len(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, targets in self.batches:  # copies: timm's Mixup mixes in place
            yield inputs.clone(), targets


def planned_config(preset: str, batch: int, device: str) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from bench import CONF_DIR
    from bench.plan import plan

    overrides = [f"+experiment={preset}", "optim=adamw", "optim.hparams.weight_decay=0.05",
                 "optim.no_weight_decay=[bn,bias,embed]", "schedule=warmup_cosine", "dataset.stand_in=true",
                 "dataset.download=false", "dataset.workers=0", f"trainer.batch_size={batch}",
                 "trainer.train_subset=64", "trainer.test_subset=16", f"trainer.device={device}",
                 "trainer.progress=false"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    return plan(cfg, ("model",), [o.split("=")[0] for o in overrides])


def bare_timm(cfg: dict[str, Any], state: dict[str, Any], batches: list[Any], steps_per_epoch: int,
              autocast: dict[str, Any]) -> Callable[[], None]:
    """The same recipe as a plain timm loop; returns one epoch over ``batches``."""
    import timm
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy
    from timm.optim import param_groups_weight_decay

    m, optim, schedule = cfg["model"], cfg["roles"]["model"]["optim"], cfg["roles"]["model"]["schedule"]
    model = timm.create_model("vit_tiny_patch16_224", num_classes=cfg["dataset"]["num_classes"],
                              img_size=m["image_size"], patch_size=m["patch_size"],
                              drop_path_rate=m["drop_path_rate"]).to(autocast["device_type"])
    model.load_state_dict(state)
    hp = optim["hparams"]
    groups = param_groups_weight_decay(model, hp["weight_decay"], no_weight_decay_list=model.no_weight_decay())
    optimizer = torch.optim.AdamW(groups, lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"])
    total, warmup = cfg["trainer"]["epochs"] * steps_per_epoch, round(schedule["warmup_epochs"] * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine_factor(s, max(1, warmup), total, schedule["min_factor"]))
    mixup = Mixup(**{"num_classes": cfg["dataset"]["num_classes"], **cfg["workload"]["mixup"]})
    criterion = SoftTargetCrossEntropy()

    def epoch() -> None:
        model.train()
        for inputs, targets in batches:
            inputs, targets = mixup(inputs.clone(), targets)
            with torch.autocast(**autocast):
                loss = criterion(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        loss.item()  # the same one synchronisation as our loop's last loss check

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="vit_tiny_cifar10")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (after one warm-up round)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cfg = planned_config(args.preset, args.batch, str(device))
    size, classes = cfg["dataset"]["image_size"], cfg["dataset"]["num_classes"]
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch, 3, size, size, generator=generator).to(device),
                torch.randint(0, classes, (args.batch,), generator=generator).to(device)) for _ in range(args.steps)]

    workload = Classification(cfg, device)
    workload.train_loader = MixupLoader(Batches(batches), dict(cfg["workload"]["mixup"]), classes)
    driver = build_driver(workload, cfg)
    trainer = Trainer(workload, driver, seed=0, epochs=cfg["trainer"]["epochs"], amp=cfg["trainer"]["amp"],
                      progress=False)
    state = TrainState()
    ours = lambda: trainer._train_epoch(state.epoch + 1, state)  # noqa: E731
    bare = bare_timm(cfg, workload.model.state_dict(), batches, workload.steps_per_epoch, trainer.autocast)
    print(f"{args.preset}: ViT-Tiny {size} px patch {cfg['model']['patch_size']}, batch {args.batch}, "
          f"{args.steps} steps per epoch, on {device}, threads {torch.get_num_threads()}")
    # CPU: process time (less sensitive to other processes on a shared machine; use --threads 1); GPU: wall time
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times: dict[str, list[float]] = {"ours": [], "timm": []}
    for round_ in range(args.rounds + 1):
        for name, epoch in (("ours", ours), ("timm", bare)):
            started = clock()
            epoch()
            if round_:  # round 0 warms up both
                times[name].append((clock() - started) / args.steps)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name:5s} {value * 1e3:9.1f} ms per step  ({args.batch / value:8.1f} images/s)")
    print(f"  ratio ours / timm = {medians['ours'] / medians['timm']:.3f}")


if __name__ == "__main__":
    main()
