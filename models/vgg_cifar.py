"""CIFAR VGG-16/19 with and without BatchNorm.

With BN (``vgg16_bn``, ``vgg19_bn``): the kuangliu/pytorch-cifar VGG that AdaS and RMSGD used
(notes/adas.md A11): 3x3 convs with bias, BN, ReLU, max-pool after each stage, then a single
``Linear(512, num_classes)``; PyTorch default initialisation.

Without BN (``vgg16``, ``vgg19``): the same network with every BatchNorm removed, as the PS paper's
"VGG-19 with all BatchNorm layers removed" (Table 3). That paper does not state the initialisation; a
19-layer plain ReLU network with PyTorch's default init (variance 1/(3 fan_in)) shrinks activations
by ~6x per layer, so the no-BN configs default to ``init="kaiming"`` (Kaiming-normal fan-out convs,
zero biases, N(0, 0.01) classifier, as torchvision's VGG); ``init="torch"`` keeps PyTorch's default.
"""
from __future__ import annotations

from torch import Tensor, nn

from models.registry import register_model

STAGES = {
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


class VGG(nn.Module):
    """VGG for 32x32 inputs: five conv stages, each followed by 2x2 max-pooling, and one linear layer."""

    def __init__(self, depth: int, batch_norm: bool, num_classes: int = 10, in_channels: int = 3,
                 init: str = "torch") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for stage in STAGES[depth]:
            for width in stage:
                layers.append(nn.Conv2d(in_channels, width, 3, padding=1))
                layers.extend([nn.BatchNorm2d(width), nn.ReLU()] if batch_norm else [nn.ReLU()])
                in_channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)
        if init == "kaiming":
            _kaiming_init(self)
        elif init != "torch":
            raise ValueError(f"init must be 'torch' or 'kaiming', got {init!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def _kaiming_init(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def _register(depth: int, batch_norm: bool) -> None:
    default_init = "torch" if batch_norm else "kaiming"

    @register_model(f"vgg{depth}{'_bn' if batch_norm else ''}")
    def factory(num_classes: int = 10, in_channels: int = 3, init: str = default_init) -> VGG:
        return VGG(depth, batch_norm, num_classes, in_channels, init)

    factory.__doc__ = f"CIFAR VGG-{depth} {'with' if batch_norm else 'without'} BatchNorm."


for _depth in STAGES:
    for _bn in (True, False):
        _register(_depth, _bn)
