"""The AdaLip paper's networks (Appendix B, Tables 6-8; layer order as its Keras code `run_models.py`,
notes/adalip.md "Architectures"), with Keras-equivalent initialisation: Glorot-uniform kernels
(PyTorch's ``xavier_uniform_`` uses the same fans for conv kernels), zero biases, and no bias where
the Keras code has none (every layer but the output in Tables 6 and 7). Keras BatchNorm defaults map
to ``eps=1e-3, momentum=0.01`` (PyTorch convention). Flattening is in Keras's channels-last order, so
Keras weights would load one to one. The softmax of the Keras output layer is in the loss
(cross-entropy on logits).

Trainable parameters: ``adalip_mnist`` 1,199,658 (28x28x1), ``adalip_cifar10`` 390,970 (32x32x3),
``adalip_cifar100`` 9,540,964 (32x32x3, 100 classes).
"""
from __future__ import annotations

from torch import Tensor, nn

from models.registry import register_model


class KerasFlatten(nn.Module):
    """Flatten NCHW activations in Keras's NHWC order."""

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


def keras_init(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every conv and dense layer."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def _conv(cin: int, cout: int, padding: int, bias: bool) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=padding, bias=bias), nn.ReLU()]


@register_model("adalip_mnist")
def adalip_mnist(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> nn.Module:
    """Table 6: conv32-conv64 (valid) - maxpool - dense128 - dense(classes)."""
    side = (image_size - 4) // 2
    return keras_init(nn.Sequential(
        *_conv(in_channels, 32, 0, False), *_conv(32, 64, 0, False), nn.MaxPool2d(2), KerasFlatten(),
        nn.Linear(side * side * 64, 128, bias=False), nn.ReLU(), nn.Linear(128, num_classes),
    ))


@register_model("adalip_cifar10")
def adalip_cifar10(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """Table 7: 2x conv32 (valid), pool, 2x conv64 (valid), pool, 2x conv128 (same), pool, dense200, dense."""
    side = (((image_size - 4) // 2 - 4) // 2) // 2
    return keras_init(nn.Sequential(
        *_conv(in_channels, 32, 0, False), *_conv(32, 32, 0, False), nn.MaxPool2d(2),
        *_conv(32, 64, 0, False), *_conv(64, 64, 0, False), nn.MaxPool2d(2),
        *_conv(64, 128, 1, False), *_conv(128, 128, 1, False), nn.MaxPool2d(2), KerasFlatten(),
        nn.Linear(side * side * 128, 200, bias=False), nn.ReLU(), nn.Linear(200, num_classes),
    ))


def _keras_bn(channels: int, dims: int = 2) -> nn.Module:
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, eps=1e-3, momentum=0.01)


@register_model("adalip_cifar100")
def adalip_cifar100(num_classes: int = 100, in_channels: int = 3, image_size: int = 32,
                    dropout: float = 0.5) -> nn.Module:
    """Table 8: VGG-style stages of conv(ReLU)-BN with max-pooling, dense512-BN-dropout, dense."""
    layers: list[nn.Module] = []
    for stage in ([64], [128], [256, 256], [512, 512], [512, 512]):
        for width in stage:
            layers += [*_conv(in_channels, width, 1, True), _keras_bn(width)]
            in_channels = width
        layers.append(nn.MaxPool2d(2))
    side = image_size // 32
    return keras_init(nn.Sequential(
        *layers, KerasFlatten(), nn.Linear(side * side * 512, 512), nn.ReLU(), _keras_bn(512, dims=1),
        nn.Dropout(dropout), nn.Linear(512, num_classes),
    ))
