"""Build the optimizer a config names: ``optim.class_name`` from ``optimizers`` with ``optim.hparams``.

Parameter groups: ``optim.no_weight_decay`` lists parameter kinds (``bn``, ``bias``, ``embed``) that get
weight decay 0 in a second group; by default every parameter decays (coupled L2, as the AdaS code).
Split groups carry ``param_order`` (each tensor's position in ``model.parameters()``) so that
per-layer-LR optimizers (AdaS, RMSGD) can rebuild the layer order; other optimizers ignore it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

import optimizers
from bench.errors import BenchError
from bench.probes import build_probes
from bench.schedules import build_schedule
from optimizers.protocol import Driver, UnmetRequirement

NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
EXEMPT_KINDS = ("bn", "bias", "embed")  # what optim.no_weight_decay may list (see _kind)


def optimizer_class(name: str, class_name: str) -> type[torch.optim.Optimizer]:
    """The class ``optimizers.<class_name>``, or a clear error if it does not exist yet."""
    cls = getattr(optimizers, class_name, None)
    if cls is None:
        raise BenchError(
            f"optimizer {name} is not available yet (optimizers.{class_name} is not implemented in this "
            f"version); pick another with optim=<name>, e.g. optim=sgd"
        )
    return cls


def _kind(module: nn.Module, param_name: str) -> str:
    """``bn`` (any norm layer), ``embed`` (a name the module's own ``no_weight_decay()`` lists: timm's
    position embeddings and class token), ``bias`` or ``weight``."""
    if isinstance(module, NORM_TYPES):
        return "bn"
    listed = getattr(module, "no_weight_decay", None)
    if callable(listed) and param_name in listed():
        return "embed"
    return "bias" if param_name == "bias" else "weight"


def module_groups(model: nn.Module, no_weight_decay: list[str]) -> list[dict[str, Any]]:
    """One group per module holding trainable parameters (``optim.group_by: module``): per-layer
    optimizers (AdaLip ``granularity: group``) then see one group per layer."""
    groups = []
    for module in model.modules():
        params = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        decay = [p for n, p in params if _kind(module, n) not in no_weight_decay]
        exempt = [p for n, p in params if _kind(module, n) in no_weight_decay]
        groups += [{"params": decay}] if decay else []
        groups += [{"params": exempt, "weight_decay": 0.0}] if exempt else []
    return groups


def parameter_groups(model: nn.Module, no_weight_decay: list[str]) -> list[dict[str, Any]]:
    """One group of all trainable parameters, or two when some kinds are exempt from weight decay."""
    decay, exempt, decay_pos, exempt_pos = [], [], [], []
    position = 0
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad:
                exempted = _kind(module, name) in no_weight_decay
                (exempt if exempted else decay).append(param)
                (exempt_pos if exempted else decay_pos).append(position)
                position += 1
    if not exempt:
        return [{"params": decay}]
    # param_order: positions in model.parameters() order, for per-layer-LR optimizers (AdaS, RMSGD)
    return [{"params": decay, "param_order": decay_pos},
            {"params": exempt, "weight_decay": 0.0, "param_order": exempt_pos}]


def build_optimizer(model: nn.Module, optim_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """Instantiate the configured optimizer on ``model``'s parameters."""
    name = optim_cfg["name"]
    cls = optimizer_class(name, optim_cfg["class_name"])
    exempt = list(optim_cfg.get("no_weight_decay", []))
    groups = module_groups(model, exempt) if optim_cfg.get("group_by") == "module" else parameter_groups(model, exempt)
    try:
        optimizer = cls(groups, **optim_cfg["hparams"])
    except (TypeError, ValueError) as exc:
        raise BenchError(f"optimizer {name}: invalid hyper-parameters for this model ({exc}); "
                         f"see conf/optim/{name}.yaml") from exc
    if callable(bind := getattr(optimizer, "bind_model", None)):
        bind(model)  # e.g. DoG's iterate averager (optimizers.protocol)
    return optimizer


def check_optimizers(cfg: dict[str, Any]) -> None:
    """Every role's optimizer class exists (one clear error before anything is built)."""
    for settings in cfg["roles"].values():
        optimizer_class(settings["optim"]["name"], settings["optim"]["class_name"])


def build_driver(workload: Any, cfg: dict[str, Any]) -> Driver:
    """One optimizer and schedule per workload role (``cfg["roles"]``, planned by ``bench.plan``), and the
    ``probe`` config's probes (``bench.probes``)."""
    trainer = cfg["trainer"]
    modules = workload.role_modules()
    roles = {}
    for role, settings in cfg["roles"].items():
        optimizer = build_optimizer(modules[role], settings["optim"])
        roles[role] = (optimizer, build_schedule(optimizer, trainer["epochs"], workload.steps_per_epoch,
                                                 **settings["schedule"]))
    try:
        return Driver(roles, provides=workload.provides, loop=f"the {workload.name} workload's loop",
                      probes=build_probes(cfg.get("probe"), modules))
    except UnmetRequirement as exc:
        raise BenchError(str(exc)) from exc
