"""Models of the five papers, by name: ``create_model("resnet34", num_classes=100)``."""
from models import (  # noqa: F401  (each module registers its models)
    adalip_nets,
    densenet_cifar,
    efficientnet_cifar,
    imagenet,
    mobilenetv2_cifar,
    resnet_cifar,
    resnet_he,
    resnext_cifar,
    segmentation,
    segnext,
    senet_cifar,
    shufflenetv2_cifar,
    small,
    vgg_cifar,
    wide_resnet,
)
from models.registry import available_models, create_model, register_model

__all__ = ["available_models", "create_model", "register_model"]
