"""From a composed config to the exact settings of a run (what its record and hash hold).

Hydra composes the config groups; a few choices depend on more than one group and are resolved
here, once, before anything is built, so that the record shows what actually ran:

* ``debug=smoke`` (``debug.set``) is applied after the preset and the command line;
* ``optim.per_model[<model>]`` values fill ``optim.hparams`` unless the command line set that key;
* ``schedule=auto`` becomes the preset's ``baseline_schedule`` or ``constant`` (``bench.schedules``);
* a preset's ``optim_protocol`` (what its protocol imposes on whichever optimizer runs: PS Table 4's
  weight decay, the estimated-LR log of the learning-rate-free methods) sets the ``hparams`` an
  optimizer has and ``no_weight_decay``, unless the command line set them;
* every parameter role of the workload gets its optimizer and schedule (``roles``).

What was decided, and why, is noted under ``planned`` (shown in the record, outside the run's hash:
the resolved values themselves are hashed).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

import yaml

from bench import CONF_DIR
from bench.errors import BenchError
from bench.schedules import resolve_schedule


def _set_dotted(config: dict[str, Any], key: str, value: Any) -> bool:
    """Set ``key`` when its parent exists (a smoke setting for a group the run has not is skipped)."""
    *parents, leaf = key.split(".")
    node: Any = config
    for part in parents:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return False
        node = node[part]
    node[leaf] = value
    return True


def apply_debug(cfg: dict[str, Any]) -> None:
    """``debug=smoke``: apply its ``set`` block on top of everything else."""
    debug = cfg.get("debug")
    if not debug:
        return
    applied = {key: value for key, value in debug.get("set", {}).items() if _set_dotted(cfg, key, value)}
    cfg["debug"] = {"name": debug["name"], "set": applied}


def apply_per_model(optim: dict[str, Any], model: str | None, explicit: set[str], prefix: str,
                    notes: dict[str, Any]) -> None:
    """Merge ``optim.per_model[model]`` into ``optim.hparams`` except keys set on the command line."""
    table = optim.pop("per_model", None) or {}
    values = {k: v for k, v in (table.get(model) or {}).items() if f"{prefix}.hparams.{k}" not in explicit}
    optim["hparams"].update(values)
    if values:
        notes[f"{prefix}.hparams"] = f"per_model values for {model}: {values}"


def apply_optim_protocol(optim: dict[str, Any], protocol: dict[str, Any], explicit: set[str], prefix: str,
                         notes: dict[str, Any]) -> None:
    """Set the preset's ``optim_protocol`` on ``optim``: each of its ``hparams`` that the optimizer has,
    and ``no_weight_decay``, except keys set on the command line."""
    values = {k: v for k, v in (protocol.get("hparams") or {}).items()
              if k in optim["hparams"] and f"{prefix}.hparams.{k}" not in explicit}
    optim["hparams"].update(values)
    if protocol.get("no_weight_decay") is not None and f"{prefix}.no_weight_decay" not in explicit:
        optim["no_weight_decay"] = values["no_weight_decay"] = list(protocol["no_weight_decay"])
    if values:
        notes[f"{prefix}.optim_protocol"] = f"the preset's optim_protocol for {optim['name']}: {values}"


def _schedule(schedule: dict[str, Any], baseline: tuple[dict[str, Any], Any], optim: dict[str, Any], key: str,
              notes: dict[str, Any]) -> dict[str, Any]:
    resolved, reason = resolve_schedule(schedule, *baseline, optim)
    if reason:
        notes[key] = reason
    return resolved


@cache
def optim_file(name: str) -> dict[str, Any]:
    """``conf/optim/<name>.yaml`` as written (its same-folder ``defaults`` parents merged in)."""
    path = CONF_DIR / "optim" / f"{name}.yaml"
    if not path.is_file():
        return {}
    own = yaml.safe_load(path.read_text()) or {}
    merged: dict[str, Any] = {}
    for parent in own.pop("defaults", []):
        if isinstance(parent, str) and parent != "_self_":
            base = optim_file(parent)
            merged = {**merged, **base, "hparams": {**merged.get("hparams", {}), **base.get("hparams", {})}}
    return {**merged, **own, "hparams": {**merged.get("hparams", {}), **own.get("hparams", {})}}


def hparam_deviations(optim: dict[str, Any], model: str | None, free: Iterable[str], prefix: str) -> dict[str, list]:
    """Hyper-parameters that differ from the optimizer's paper values (its file and ``per_model``), except
    the ``free`` keys a preset's protocol sweeps: ``{key: [paper, actual]}``."""
    written = optim_file(optim["name"])
    paper = {**written.get("hparams", {}), **(written.get("per_model") or {}).get(model, {})}
    return {f"{prefix}.hparams.{key}": [paper.get(key), value] for key, value in optim["hparams"].items()
            if f"{prefix}.hparams.{key}" not in free and f"optim.hparams.{key}" not in free and paper.get(key) != value}


def plan_roles(cfg: dict[str, Any], roles: Iterable[str], explicit: set[str]) -> None:
    """Fill ``cfg["roles"]`` with one resolved ``{optim, schedule}`` per workload role."""
    roles = list(roles)
    unknown = sorted(set(cfg.get("roles") or {}) - set(roles))
    if unknown:
        raise BenchError(f"workload {cfg['workload']['name']} has no parameter role {unknown[0]!r}; "
                         f"its roles: {', '.join(roles)}")
    model = (cfg.get("model") or {}).get("name")
    notes = cfg.setdefault("planned", {})
    baseline = cfg.pop("baseline_schedule", None) or {"name": "constant"}, cfg.pop("baseline_schedule_for", "all")
    protocol = cfg.pop("optim_protocol", None) or {}
    apply_per_model(cfg["optim"], model, explicit, "optim", notes)
    apply_optim_protocol(cfg["optim"], protocol, explicit, "optim", notes)
    cfg["schedule"] = _schedule(cfg["schedule"], baseline, cfg["optim"], "schedule", notes)
    planned = {}
    for role in roles:
        given = (cfg.get("roles") or {}).get(role) or {}
        optim = copy.deepcopy(given.get("optim") or cfg["optim"])
        if "optim" in given:
            apply_per_model(optim, model, explicit, f"roles.{role}.optim", notes)
            apply_optim_protocol(optim, protocol, explicit, f"roles.{role}.optim", notes)
        schedule = (_schedule(given["schedule"], baseline, optim, f"roles.{role}.schedule", notes)
                    if "schedule" in given else cfg["schedule"])
        optim.pop("sets_own_lr", None)  # used above; the resolved schedule is what the run hash needs
        planned[role] = {"optim": optim, "schedule": schedule}
        free = set((cfg.get("protocol") or {}).get("free") or [])
        prefix = "optim" if "optim" not in given else f"roles.{role}.optim"
        if changed := hparam_deviations(optim, model, free, prefix):
            notes.setdefault("hparam_deviations", {}).update(changed)
    cfg["optim"].pop("sets_own_lr", None)
    cfg["roles"] = planned


def plan(cfg: dict[str, Any], roles: Iterable[str], explicit: Iterable[str] = ()) -> dict[str, Any]:
    """The resolved run config: ``cfg`` (a plain dict from Hydra) with the choices above made."""
    cfg = copy.deepcopy(cfg)
    apply_debug(cfg)
    plan_roles(cfg, roles, {key.lstrip("+~") for key in explicit})
    return cfg


def explicit_keys(overrides: Iterable[str]) -> list[str]:
    """The keys a command line sets (``optim.hparams.lr=0.1`` -> ``optim.hparams.lr``)."""
    return [o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o]
