"""Models of the five papers, by name: ``create_model("resnet34", num_classes=100)``."""
from models import nqm, resnet_cifar, small  # noqa: F401  (registers the models)
from models.registry import available_models, create_model, register_model

__all__ = ["available_models", "create_model", "register_model"]
