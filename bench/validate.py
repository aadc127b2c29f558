"""Checks on a planned config that Hydra cannot express; each failure is one line naming the fix.

Every value a user types is checked here, before anything is built or written, by a table of rules
(``RULES``: dotted key -> ``Rule``; ``SCHEDULE_RULES`` and ``HPARAM_RULES`` for each role's schedule
and optimizer). A key missing from a config is not checked (a workload without ``dataset``).
Optimizer hyper-parameters also take the type of their default in ``conf/optim/<name>.yaml``
(a boolean stays a boolean). What only the built objects can tell (a model that does not fit the
data, an optimizer with nothing to adapt on the model) is checked while the run is built
(``bench.run``), still before its first step and before anything is written.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bench import CONF_DIR
from bench.data.augment import AUGMENTATIONS
from bench.data.build import LOADERS
from bench.errors import BenchError
from bench.gpu_options import COMPILE_MODES
from bench.identity import get_dotted
from bench.optim_factory import EXEMPT_KINDS
from bench.probes import PROBES
from bench.schedules import SCHEDULES
from models import available_models
from optimizers.lowrank_metrics import SVD_METHODS, TALL_MODES

_MISSING = object()


@dataclass(frozen=True)
class Rule:
    """What one config value may be: ``kind`` (int, number, bool, str, list, folder, path, device),
    inclusive bounds ``low``/``high``, an exclusive lower bound ``above``, ``choices`` (a sequence or a
    function giving one), ``optional`` (None allowed), ``finite`` (no inf), ``item`` (for lists)."""

    kind: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    optional: bool = False
    finite: bool = True
    item: Rule | None = None
    fix: str | None = None  # what ``pass key=...`` suggests (default: <what a valid value is>)

    def expected(self) -> str:
        """What a valid value is, in words."""
        if self.choices is not None:
            shown = (str(c).lower() if isinstance(c, bool) else str(c) for c in self._choices())
            return f"one of {', '.join(shown)}" + (" or null" if self.optional else "")
        words = {"int": "an integer", "number": "a number", "bool": "true or false", "str": "a string",
                 "folder": "a folder path", "path": "an existing file or folder",
                 "device": "auto, cpu or cuda[:n] (with CUDA present)", "list": "a list"}[self.kind]
        if self.kind == "int" and (self.low, self.above) == (1, None):
            words = "a positive integer"
        elif self.kind == "int" and (self.low, self.above) == (0, None):
            words = "a non-negative integer"
        elif self.kind == "number" and (self.low, self.high, self.above) == (0, None, None):
            words = "a non-negative number"
        else:
            bounds = [f">= {self.low:g}" if self.low is not None else "", f"> {self.above:g}" if self.above is not None
                      else "", f"<= {self.high:g}" if self.high is not None else ""]
            words += " " + " and ".join(b for b in bounds if b) if any(bounds) else ""
        if self.item is not None:
            words += f", each item {self.item.expected()}"
        return words + (" or null" if self.optional else "")

    def _choices(self) -> Sequence[Any]:
        return self.choices() if callable(self.choices) else self.choices  # type: ignore[return-value]

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.choices is not None:  # True is no choice of 1, nor 1 of True
            return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in self._choices())
        kind = self.kind
        if kind == "bool":
            return isinstance(value, bool)
        if kind == "str":
            return isinstance(value, str)
        if kind == "list":
            return isinstance(value, list) and (self.item is None or all(self.item.accepts(v) for v in value))
        if kind == "folder":
            return isinstance(value, str) and _folder_problem(Path(value)) is None
        if kind == "path":
            return isinstance(value, str) and Path(value).expanduser().exists()
        if kind == "device":
            return _device_ok(value)
        if isinstance(value, bool) or not isinstance(value, int if kind == "int" else (int, float)):
            return False
        if math.isnan(value) or (self.finite and math.isinf(value)):
            return False
        return ((self.low is None or value >= self.low) and (self.high is None or value <= self.high)
                and (self.above is None or value > self.above))


def _folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder: it, or a parent, is a file."""
    for node in (path, *path.parents):
        if node.exists():
            return None if node.is_dir() else f"{node} is a file"
    return None


def _device_ok(value: Any) -> bool:
    import torch

    if value in ("auto", "cpu"):
        return True
    if not isinstance(value, str) or not (value == "cuda" or value.startswith("cuda:")):
        return False
    index = value.partition(":")[2]
    if index and not index.isdigit():
        return False
    return torch.cuda.is_available() and int(index or 0) < torch.cuda.device_count()


POSITIVE = Rule("int", low=1)
COUNT = Rule("int", low=1, optional=True)
BOOL = Rule("bool")
FRACTION = Rule("number", low=0, high=1)
NON_NEGATIVE = Rule("number", low=0)

RULES: dict[str, Rule] = {
    "seed": Rule("int", low=0),
    "force": BOOL,
    "results_dir": Rule("folder"),
    "work_dir": Rule("folder"),
    "data_root": Rule("folder"),
    "experiment": Rule("str"),
    "trainer.epochs": POSITIVE,
    "trainer.batch_size": POSITIVE,
    "trainer.eval_batch_size": POSITIVE,
    "trainer.steps_per_epoch": COUNT,
    "trainer.threads": COUNT,
    "trainer.train_subset": COUNT,
    "trainer.test_subset": COUNT,
    "trainer.device": Rule("device", fix="auto (or cpu)"),
    "trainer.amp": BOOL,
    "trainer.channels_last": BOOL,
    "trainer.compile": Rule("bool", choices=(False, True, *COMPILE_MODES)),
    "trainer.deterministic": BOOL,
    "trainer.progress": BOOL,
    "trainer.divergence_check_every": POSITIVE,
    "trainer.keep_checkpoint": BOOL,
    "trainer.early_stop.metric": Rule("str"),
    "trainer.early_stop.patience": POSITIVE,
    "trainer.early_stop.threshold": NON_NEGATIVE,
    "trainer.time_budget_s": Rule("number", above=0, optional=True,
                                  fix="<seconds: time.train_s of the SGD run of the same cell> (or null)"),
    "dataset.root": Rule("folder", optional=True),
    "dataset.source": Rule("path", optional=True),
    "dataset.download": BOOL,
    "dataset.allow_incomplete": BOOL,
    "dataset.stand_in": BOOL,
    "dataset.multi_label": BOOL,
    "dataset.loader": Rule("str", choices=LOADERS),
    "dataset.workers": Rule("int", low=0),
    "dataset.augment.name": Rule("str", choices=lambda: sorted(AUGMENTATIONS)),
    "dataset.num_classes": POSITIVE,
    "dataset.channels": POSITIVE,
    "dataset.image_size": POSITIVE,
    "dataset.mean": Rule("list", item=Rule("number")),
    "dataset.std": Rule("list", item=Rule("number", above=0)),
    "model.name": Rule("str", choices=available_models),
    "workload.dim": POSITIVE,
    "workload.x0": Rule("number"),
    "workload.noise": Rule("str", choices=("identity", "inverse_curvature")),
    "workload.noise_scale": NON_NEGATIVE,
    "workload.steps_per_epoch": POSITIVE,
    "workload.auc": BOOL,
    "probe.name": Rule("str", choices=lambda: sorted(PROBES)),
    "probe.p": Rule("int", choices=(1, 2)),
    "probe.linear": BOOL,
    "probe.tall": Rule("str", choices=TALL_MODES),
    "probe.svd": Rule("str", choices=SVD_METHODS),
    "logger.wandb.enabled": BOOL,
    "logger.wandb.mode": Rule("str", choices=("offline", "online", "disabled")),
    "logger.wandb.project": Rule("str"),
    "logger.wandb.dir": Rule("folder", optional=True),
}

SCHEDULE_RULES: dict[str, Rule] = {
    "name": Rule("str", choices=lambda: sorted(SCHEDULES)),
    "step_size": POSITIVE,
    "gamma": Rule("number", above=0),
    "milestones": Rule("list", item=POSITIVE),
    "eta_min": NON_NEGATIVE,
    "warmup_epochs": NON_NEGATIVE,
    "min_factor": FRACTION,
    "power": Rule("number", above=0),
    "warmup_steps": Rule("int", low=0),
    "warmup_ratio": FRACTION,
}

# Optimizer hyper-parameters that mean the same in every optimizer (others: their constructor checks).
HPARAM_RULES: dict[str, Rule] = {
    "lr": NON_NEGATIVE,
    "momentum": FRACTION,
    "dampening": FRACTION,
    "weight_decay": NON_NEGATIVE,
    "eps": NON_NEGATIVE,
    "betas": Rule("list", item=Rule("number", low=0, high=1)),
}

OPTIM_RULES: dict[str, Rule] = {
    "no_weight_decay": Rule("list", item=Rule("str", choices=EXEMPT_KINDS)),
    "group_by": Rule("str", choices=("module",), optional=True),
}


def _fail(key: str, rule: Rule, value: Any) -> BenchError:
    shown = repr(value)
    if rule.kind == "folder" and isinstance(value, str) and (problem := _folder_problem(Path(value))):
        shown += f" ({problem})"
    elif rule.kind == "path" and isinstance(value, str):
        shown += " (it does not exist)"
    elif rule.kind == "device" and str(value).startswith("cuda"):
        import torch

        shown += f" (this machine has {torch.cuda.device_count()} CUDA devices)"
    return BenchError(f"{key} must be {rule.expected()}, got {shown}; pass {key}={rule.fix or f'<{rule.expected()}>'}")


def check(config: dict[str, Any], rules: dict[str, Rule], prefix: str = "") -> None:
    """Raise ``BenchError`` for the first value of ``config`` that breaks its rule in ``rules``."""
    for key, rule in rules.items():
        value = get_dotted(config, key, _MISSING)
        if value is not _MISSING and not rule.accepts(value):
            raise _fail(prefix + key, rule, value)


@cache
def _optim_defaults(name: str) -> dict[str, Any]:
    """The ``hparams`` of ``conf/optim/<name>.yaml`` (empty for an optimizer without a file)."""
    from omegaconf import OmegaConf

    path = CONF_DIR / "optim" / f"{name}.yaml"
    if not path.is_file():
        return {}
    return OmegaConf.to_container(OmegaConf.load(path)).get("hparams") or {}  # type: ignore[union-attr]


def _default_rule(default: Any) -> Rule | None:
    """A value must keep the type of its default: a boolean, a number (NaN never), a string, a list."""
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, (int, float)):
        return Rule("number", finite=math.isfinite(default))
    if isinstance(default, str):
        return Rule("str")
    return Rule("list") if isinstance(default, list) else None


def check_optim(optim: dict[str, Any], prefix: str) -> None:
    """One role's optimizer: shared hyper-parameter rules, the types of its defaults, no NaN anywhere."""
    check(optim, OPTIM_RULES, f"{prefix}.")
    hparams = optim.get("hparams") or {}
    defaults = _optim_defaults(optim["name"])
    for name, value in hparams.items():
        rule = HPARAM_RULES.get(name) or (NON_NEGATIVE if name.endswith("_lr") else None)
        rule = rule or _default_rule(defaults.get(name))
        if rule is None and isinstance(value, float):
            rule = Rule("number", finite=False)  # no NaN
        if rule is not None and not rule.accepts(value):
            raise _fail(f"{prefix}.hparams.{name}", rule, value)


def validate(cfg: dict[str, Any]) -> None:
    """Raise ``BenchError`` for the first invalid setting in the planned config ``cfg`` (``bench.plan``)."""
    check(cfg, RULES)
    for role, settings in cfg["roles"].items():
        shared = settings["optim"] == cfg["optim"]
        check_optim(settings["optim"], "optim" if shared else f"roles.{role}.optim")
        check(settings, {"lr_mult": Rule("number", above=0)}, f"roles.{role}.")
        check(settings["schedule"], SCHEDULE_RULES,
              "schedule." if settings["schedule"] == cfg["schedule"] else f"roles.{role}.schedule.")
