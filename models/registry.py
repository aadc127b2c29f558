"""Model registry (timm-style): ``@register_model("name")`` and ``create_model(name, **kwargs)``."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelFactory = Callable[..., nn.Module]
_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory(num_classes=..., in_channels=..., **options)`` under ``name``."""

    def decorate(factory: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = factory
        return factory

    return decorate


def available_models() -> list[str]:
    """Names of all registered models."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model registered as ``name``; ``KeyError`` lists the known names."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _MODELS[name](**kwargs)
