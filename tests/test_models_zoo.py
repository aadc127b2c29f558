"""Every registered model runs forward and backward on CPU; parameter counts equal published values
or values computed here by hand from the architecture; Keras-equivalent init; local checkpoints."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from models import available_models, create_model

# Inputs as small as each network allows, to keep this file fast on a shared CPU: CIFAR networks with
# global pooling run at 16x16; VGG (five 2x2 pools) and the AdaLip networks (a fixed dense layer) at
# their paper sizes; torchvision CNNs at 64x64 and ViT at its 224x224.
torch.set_num_threads(1)  # 2 shared cores: one intra-op thread is ~10x faster here than two competing ones
IMAGENET_SIZE = {"vit_tiny_patch16_224": 224}
INPUT = {"adalip_mnist": (1, 28), "adalip_cifar10": (3, 32), "adalip_cifar100": (3, 32), "small_cnn": (3, 8),
         "vgg16": (3, 32), "vgg16_bn": (3, 32), "vgg19": (3, 32), "vgg19_bn": (3, 32)}
CLASSES = {"adalip_cifar100": 100}


# Segmentation networks give per-pixel logits, not one vector per image (tested in tests/test_segmentation.py).
NOT_IMAGE_CLASSIFIERS = {"segnext_t", "upernet_swin_t"}


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)




@pytest.mark.parametrize("name", sorted(set(available_models()) - NOT_IMAGE_CLASSIFIERS))
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    channels, size = INPUT.get(name, (3, 16))
    batch = 2
    if name.startswith(("tv_", "vit_")):
        size, batch = IMAGENET_SIZE.get(name, 64), 1
    classes = CLASSES.get(name, 10)
    model = create_model(name, num_classes=classes, in_channels=channels)
    if batch == 1:
        model.eval()  # BatchNorm cannot train on one example; gradients still flow
    out = model(torch.randn(batch, channels, size, size))
    assert out.shape == (batch, classes)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), f"{name}: a parameter received no gradient"
    assert all(torch.isfinite(g).all() for g in grads)


# --------------------------------------------------------------------------- published counts
@pytest.mark.parametrize("name, classes, channels, count", [
    ("adalip_mnist", 10, 1, 1_199_658),      # AdaLip Table 6 (notes/adalip.md)
    ("adalip_cifar10", 10, 3, 390_970),      # AdaLip Table 7
    ("adalip_cifar100", 100, 3, 9_540_964),  # AdaLip Table 8
    ("resnet18", 10, 3, 11_173_962),         # kuangliu CIFAR ResNet-18
    ("senet18", 10, 3, 11_260_354),          # kuangliu CIFAR SENet-18
    ("efficientnetb0", 10, 3, 3_599_686 - 32 * 32 - 2 * 32),  # kuangliu's, less its unused 32->32 conv + BN
    ("tv_resnet18", 1000, 3, 11_689_512),    # torchvision model card
    ("tv_resnet34", 1000, 3, 21_797_672),
    ("tv_resnet50", 1000, 3, 25_557_032),
    ("tv_mobilenet_v2", 1000, 3, 3_504_872),
    ("tv_efficientnet_b0", 1000, 3, 5_288_548),
    ("vit_tiny_patch16_224", 1000, 3, 5_717_416),  # timm / DeiT-Ti 5.7M
])
def test_published_parameter_counts(name: str, classes: int, channels: int, count: int) -> None:
    assert trainable(create_model(name, num_classes=classes, in_channels=channels)) == count


def _conv(cin: int, cout: int, k: int = 3, bias: bool = False) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_resnet32_count_by_hand() -> None:
    """He et al. ResNet-32: 0.46M. Option A adds no parameters; option B adds two 1x1 conv + BN."""
    convs = _conv(3, 16) + 10 * _conv(16, 16) + _conv(16, 32) + 9 * _conv(32, 32) + _conv(32, 64) + 9 * _conv(64, 64)
    bns = 2 * (16 + 10 * 16 + 10 * 32 + 10 * 64)
    expected = convs + bns + 64 * 10 + 10
    model = create_model("resnet32", num_classes=10)
    assert trainable(model) == expected
    assert round(expected / 1e6, 2) == 0.46
    projections = _conv(16, 32, 1) + 2 * 32 + _conv(32, 64, 1) + 2 * 64
    assert trainable(create_model("resnet32", num_classes=10, shortcut="B")) == expected + projections


def _wrn_by_hand(depth: int, k: int, classes: int) -> int:
    n, widths = (depth - 4) // 6, [16, 16 * k, 32 * k, 64 * k]
    total, cin = _conv(3, 16, bias=True), 16
    for cout in widths[1:]:
        for i in range(n):
            total += 2 * cin + _conv(cin, cout, bias=True) + 2 * cout + _conv(cout, cout, bias=True)
            if i == 0:
                total += _conv(cin, cout, 1, bias=True)  # projection shortcut (channels or stride change)
            cin = cout
    return total + 2 * cin + cin * classes + classes


@pytest.mark.parametrize("depth, published_millions", [(28, 36.5), (40, 55.8)])  # Zagoruyko & Komodakis Table 1
def test_wide_resnet_counts(depth: int, published_millions: float) -> None:
    model = create_model(f"wrn{depth}_10", num_classes=10)
    assert trainable(model) == _wrn_by_hand(depth, 10, 10)
    # The published counts are for convs without bias; the code AutoDrop used adds conv biases (+0.06M).
    assert abs(trainable(model) / 1e6 - published_millions) < 0.1
    assert model.bn.momentum == 0.9  # the meliketoy quirk AutoDrop's code carried


@pytest.mark.parametrize("depth, bn", [(16, True), (16, False), (19, True), (19, False)])
def test_vgg_counts_by_hand(depth: int, bn: bool) -> None:
    widths = {16: [64, 64, 128, 128] + [256] * 3 + [512] * 6, 19: [64, 64, 128, 128] + [256] * 4 + [512] * 8}[depth]
    total, cin = 0, 3
    for w in widths:
        total += _conv(cin, w, bias=True) + (2 * w if bn else 0)
        cin = w
    total += 512 * 10 + 10
    assert trainable(create_model(f"vgg{depth}{'_bn' if bn else ''}", num_classes=10)) == total


def test_cifar_mobilenetv2_and_densenet_against_torchvision() -> None:
    """The CIFAR variants differ from torchvision's networks by a known set of layers."""
    import torchvision

    tv_mnv2 = trainable(torchvision.models.mobilenet_v2(num_classes=10))
    # kuangliu adds 1x1 conv+BN shortcuts to the stride-1 blocks whose width changes (32->16, 16->24,
    # 64->96, 160->320) and keeps the 1x1 expansion conv+BN of the expansion-1 block (32->32).
    extra = sum(_conv(a, b, 1) + 2 * b for a, b in ((32, 16), (16, 24), (64, 96), (160, 320))) + _conv(32, 32, 1) + 64
    assert trainable(create_model("mobilenetv2", num_classes=10)) == tv_mnv2 + extra
    tv_dense = trainable(torchvision.models.densenet121(num_classes=10))
    # CIFAR stem: a 3x3 conv instead of torchvision's 7x7 conv + BN (+ max-pool, no parameters).
    assert trainable(create_model("densenet121", num_classes=10)) == tv_dense - _conv(3, 64, 7) - 2 * 64 + _conv(3, 64)


# --------------------------------------------------------------------------- AdaLip init
def test_adalip_keras_initialisation() -> None:
    torch.manual_seed(0)
    model = create_model("adalip_cifar100", num_classes=100)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            w = module.weight.detach()
            fan_in = w.shape[1] * w[0, 0].numel()
            fan_out = w.shape[0] * w[0, 0].numel()
            bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform
            assert float(w.abs().max()) <= bound
            assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
            assert module.bias is not None and float(module.bias.abs().max()) == 0.0
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert (module.eps, module.momentum) == (1e-3, 0.01)  # Keras BN defaults
    biases = [m.bias for m in create_model("adalip_cifar10").modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [b is not None for b in biases] == [False] * 7 + [True]  # only the output layer has a bias


# --------------------------------------------------------------------------- local checkpoints
def test_pretrained_path_loads_local_checkpoint(tmp_path) -> None:
    torch.manual_seed(0)
    source = create_model("tv_resnet18", num_classes=10)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    torch.manual_seed(1)
    loaded = create_model("tv_resnet18", num_classes=10, pretrained_path=str(tmp_path / "ckpt.pt"))
    for (k, a), b in zip(source.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(BenchError, match="does not exist"):
        create_model("tv_resnet18", num_classes=10, pretrained_path=str(tmp_path / "missing.pt"))
    with pytest.raises(BenchError, match="does not fit"):
        create_model("tv_resnet18", num_classes=100, pretrained_path=str(tmp_path / "ckpt.pt"))


def test_imagenet_models_take_other_input_channels() -> None:
    model = create_model("tv_resnet18", num_classes=10, in_channels=1).eval()
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 10)
