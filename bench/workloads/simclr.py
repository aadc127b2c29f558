"""SimCLR (Chen et al. 2020) self-supervised pre-training, scored by a linear probe on the frozen
backbone: the SSL column of the PS paper's Table 3 (STL-10).

Pre-training (the optimizer under test, role ``model``: backbone + projection head): two views of
each image (``dataset.augment=simclr``: lightly's ``SimCLRTransform``), lightly's
``SimCLRProjectionHead`` and ``NTXentLoss``, on ``dataset.train_split`` (STL-10
``train+unlabeled``). Evaluation after every epoch, on the backbone's features (projection head
dropped, the backbone in eval mode, no augmentation) of the labelled ``workload.probe.split`` and
of the test split:

* a kNN monitor (lightly's ``knn_predict`` on L2-normalised features, ``workload.knn``):
  ``test_knn_acc1``;
* a linear probe on the frozen features, with its own fixed optimizer (``workload.probe``, recorded
  in the config; lightly's ``LinearClassifier`` hard-codes SGD + cosine, so the probe is ours). The
  features are computed once per evaluation, which equals training on a frozen backbone without
  augmentation. Every ``probe.every`` epochs and at the last: ``test_probe_acc1`` (primary, max)
  and ``test_probe_loss``.

The optimizer comparison is therefore only about pre-training. ``trainer.train_subset`` caps the
pre-training split and the probe's labelled split alike; ``trainer.test_subset`` the test split.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from bench.data.build import build_loaders
from bench.data.cache import PreparedDataset
from bench.errors import BenchError
from bench.workloads.base import LoopHooks, Metric, TrainState
from bench.workloads.classification import ImageWorkload, find_data, topk_correct
from models import create_model
from optimizers.protocol import Driver

HEADS = ("linear", "fc")  # the classifier attribute of our CIFAR ResNets and of torchvision's


def strip_classifier(model: nn.Module) -> tuple[nn.Module, int]:
    """``model`` with its final linear classifier replaced by the identity, and the feature width."""
    for attr in HEADS:
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Identity())
            return model, head.in_features
    raise BenchError(f"{type(model).__name__} has no final linear layer ({' or '.join(HEADS)}) to drop; "
                     f"pick a ResNet (model=resnet18 or model=tv_resnet18) for workload=simclr")


class SimCLRNet(nn.Module):
    """A backbone and lightly's projection head; ``forward`` gives the projections z."""

    def __init__(self, backbone: nn.Module, width: int, hidden_dim: int, output_dim: int, batch_norm: bool) -> None:
        super().__init__()
        from lightly.models.modules import SimCLRProjectionHead

        self.backbone = backbone
        self.head = SimCLRProjectionHead(width, hidden_dim, output_dim, batch_norm=batch_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


@torch.no_grad()
def features(backbone: nn.Module, batches: Any) -> tuple[Tensor, Tensor]:
    """Float features and labels of every batch in ``batches``."""
    feats, labels = [], []
    for inputs, targets in batches:
        feats.append(backbone(inputs).float())
        labels.append(targets)
    return torch.cat(feats), torch.cat(labels)


def knn_accuracy(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], num_classes: int, k: int,
                 t: float) -> float:
    """Top-1 (%) of lightly's weighted kNN on L2-normalised features (k capped at the bank size)."""
    from lightly.utils.benchmarking import knn_predict

    bank = nn.functional.normalize(train[0], dim=1).t().contiguous()
    query = nn.functional.normalize(test[0], dim=1)
    correct = 0
    for start in range(0, len(query), 512):  # bounded (queries x bank) similarity matrices
        pred = knn_predict(query[start:start + 512], bank, train[1], num_classes, min(k, bank.shape[1]), t)
        correct += int((pred[:, 0] == test[1][start:start + 512]).sum())
    return 100.0 * correct / len(query)


def linear_probe(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], num_classes: int,
                 probe: dict[str, Any], seed: int) -> dict[str, float]:
    """Train a linear classifier on frozen features with the fixed probe optimizer; its scores (%).

    Initialisation and batch order come from ``seed`` alone (the global RNGs are left untouched)."""
    x, y = train
    device = x.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear = nn.Linear(x.shape[1], num_classes).to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(linear.parameters(), lr=probe["lr"], weight_decay=probe["weight_decay"])
    for _ in range(probe["epochs"]):
        order = torch.randperm(len(y), generator=generator).to(device)
        for start in range(0, len(y), probe["batch_size"]):
            index = order[start:start + probe["batch_size"]]
            loss = nn.functional.cross_entropy(linear(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        logits = linear(test[0])
        return {"probe_acc1": float(topk_correct(logits, test[1], (1,))["acc1"]) / len(test[1]),
                "probe_loss": float(nn.functional.cross_entropy(logits, test[1]))}


class FrozenFeatureEvaluator:
    """One evaluation: test features in ``update``; kNN and (when due) the probe in ``compute``."""

    def __init__(self, workload: SimCLR, probe_now: bool) -> None:
        self.workload, self.probe_now = workload, probe_now
        self.train: tuple[Tensor, Tensor] | None = None
        self.test: list[tuple[Tensor, Tensor]] = []

    def update(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> None:
        if self.train is None:  # the labelled split, through the same (possibly averaged) model
            self.train = features(model.backbone, self.workload.probe_loader.epoch(0))
        self.test.append((model.backbone(inputs).float(), targets))

    def compute(self) -> dict[str, float]:
        assert self.train is not None, "evaluated on an empty test split"
        test = torch.cat([f for f, _ in self.test]), torch.cat([t for _, t in self.test])
        w = self.workload.cfg["workload"]
        classes = self.workload.cfg["dataset"]["num_classes"]
        scores = {"knn_acc1": knn_accuracy(self.train, test, classes, w["knn"]["k"], w["knn"]["t"])}
        if self.probe_now:
            scores.update(linear_probe(self.train, test, classes, w["probe"], self.workload.cfg["seed"]))
        return scores


class SimCLR(ImageWorkload):
    """SimCLR pre-training of ``model``'s backbone on ``dataset``; linear-probe and kNN evaluation."""

    name = "simclr"
    primary = Metric("test_probe_acc1", "max")

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: PreparedDataset | None = None) -> None:
        super().__init__(cfg, device)
        ds, w = cfg["dataset"], cfg["workload"]
        if w["probe"]["optimizer"] != "adam":
            raise BenchError(f"workload.probe.optimizer is fixed to adam (got {w['probe']['optimizer']!r}); "
                             f"the probe is part of the evaluation, not the optimizer under test")
        if ds["augment"]["name"] != "simclr":
            raise BenchError(f"workload=simclr needs two views per image: pass dataset/augment=simclr "
                             f"(got dataset.augment.name={ds['augment']['name']!r})")
        self.data = data or find_data(ds, cfg["data_root"])
        # drop_last: every pre-training batch is full (BatchNorm in the head, NT-Xent negatives)
        self.train_loader, self.test_loader, self.used = build_loaders(cfg, self.data, device, drop_last=True)
        plain = copy.deepcopy(cfg)
        plain["dataset"].update(train_split=w["probe"]["split"], augment={"name": "none"})
        self.probe_loader = build_loaders(plain, self.data, device)[0]
        self.used["probe_examples"] = self.probe_loader.n
        options = {k: v for k, v in cfg["model"].items() if k != "name"}
        backbone, width = strip_classifier(create_model(cfg["model"]["name"], num_classes=ds["num_classes"],
                                                        in_channels=ds["channels"], **options))
        head = w["head"]
        self.model = SimCLRNet(backbone, width, head["hidden_dim"], head["output_dim"], head["batch_norm"]).to(device)
        from lightly.loss import NTXentLoss

        self.criterion = NTXentLoss(temperature=w["temperature"])
        self.epoch = 0  # the epoch being evaluated: evaluator() is called once per epoch

    def loss(self, model: nn.Module, inputs: Any, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        view0, view1 = inputs
        loss = self.criterion(model(view0), model(view1))
        return loss, {"loss": loss.detach().float() * len(targets)}

    def evaluator(self) -> FrozenFeatureEvaluator:
        self.epoch += 1
        every, last = self.cfg["workload"]["probe"]["every"], self.cfg["trainer"]["epochs"]
        return FrozenFeatureEvaluator(self, self.epoch == last or (every > 0 and self.epoch % every == 0))

    def train(self, driver: Driver, state: TrainState, hooks: LoopHooks) -> str:
        self.epoch = state.epoch
        return super().train(driver, state, hooks)
