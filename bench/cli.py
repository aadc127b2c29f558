"""``python -m bench``: the Hydra application.

Before Hydra takes over, the command line is composed (once, and once more per value of each swept
config group) to turn Hydra's multi-line composition errors (unknown option, unknown preset) into one
``error:`` line naming the fix. Inside the job, ``BenchError`` (bad input) becomes the same one-line
error with exit status 2. In a ``--multirun``, a cell with bad input or a crash is reported on one
line and the sweep goes on; at the end one line lists those cells and the exit status is 1.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from bench import CONF_DIR
from bench.errors import BenchError, report
from bench.plan import explicit_keys

# Hydra flags that take a value (the next argument), and flags that make composition moot.
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp",
                "--config-dir", "-cd", "--info", "-i", "--experimental-rerun"}
_SKIP_CHECK_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc",
                     "--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--experimental-rerun"}


def _split_argv(argv: list[str]) -> tuple[list[str], set[str]]:
    overrides, flags, skip = [], set(), False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            flags.add(flag)
            skip = flag in _VALUE_FLAGS and "=" not in arg
        else:
            overrides.append(arg)
    return overrides, flags


# The cells of this process's sweep that did not finish, and the keys the sweep varies.
_SWEEP_PROBLEMS: list[str] = []
_SWEEP_KEYS: set[str] = set()


def _compositions(overrides: list[str]) -> list[list[str]]:
    """The command lines to compose: each sweep (``a=1,2``) at its first value, then each other value
    of a swept config group (``optim=sgd,adam``) with the rest at their first values."""
    parser = OverridesParser.create()
    first: list[str | None] = []
    values: list[list[str]] = []
    for text, parsed in zip(overrides, parser.parse_overrides(overrides)):
        if not parsed.is_sweep_override():
            first.append(text)
            values.append([])
            continue
        key = parsed.get_key_element()
        try:
            swept = [f"{key}={value}" for value in parsed.sweep_string_iterator()]
        except Exception:  # glob() and ranges of unknown extent: leave their check to Hydra
            swept = []
        first.append(swept[0] if swept else None)
        values.append(swept[1:] if _group_options(key.lstrip("+~").split("@")[0]) else [])
    base = [text for text in first if text is not None]
    variants = [base]
    for i, others in enumerate(values):
        for value in others:
            variants.append([value if j == i else text for j, text in enumerate(first) if text is not None])
    return variants


def _sweep_keys(overrides: list[str]) -> set[str]:
    """The keys a ``--multirun`` command line sweeps (``seed=0,1`` -> ``seed``)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # syntax errors are reported by check_composition
        return set()
    return {p.get_key_element().lstrip("+~") for p in parsed if p.is_sweep_override()}


def _group_options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _explain(exc: Exception, overrides: list[str]) -> str:
    """A one-line explanation of a composition failure, with the fix."""
    text = str(exc)
    if isinstance(exc, MissingConfigException) or "Could not find" in text or "Could not load" in text:
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            options = _group_options(key)
            if options and value not in options:
                return f"unknown {key} '{value}'; available: {', '.join(options)} (see conf/{key}/)"
        return text.splitlines()[0]
    cause = exc.__cause__ or exc
    if isinstance(cause, ConfigKeyError) or "not in struct" in text or "Could not override" in text:
        keys = [o.lstrip("+~").split("=")[0] for o in overrides]
        key = next((k for k in keys if f"'{k}'" in text), None) or (text.split("'")[1] if "'" in text else "?")
        return (f"unknown config option '{key}'; list the valid keys with `python -m bench --cfg job` "
                f"(or add a new key deliberately with ++{key}=...)")
    return " ".join(text.split())


def check_launcher(cfg: DictConfig) -> None:
    """A Slurm sweep the cluster would refuse (or without Slurm commands): one line, before Hydra starts."""
    if str(OmegaConf.select(cfg, "hydra.launcher._target_") or "").endswith("SlurmLauncher"):
        from bench.slurm import check_sweep
        check_sweep(OmegaConf.to_container(cfg.hydra.launcher, resolve=True))


def check_composition(argv: list[str]) -> DictConfig | None:
    """Compose the command line once; raise ``BenchError`` with a one-line fix if Hydra cannot."""
    overrides, flags = _split_argv(argv)
    if flags & _SKIP_CHECK_FLAGS:
        return None
    from hydra import compose, initialize_config_dir

    variant = overrides
    try:
        for variant in _compositions(overrides):
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose(config_name="config", overrides=variant, return_hydra_config=True)
    except (ConfigCompositionException, MissingConfigException) as exc:
        raise BenchError(_explain(exc, variant)) from exc
    except Exception as exc:  # override syntax errors and the like
        raise BenchError(" ".join(str(exc).split())) from exc
    if flags & {"--multirun", "-m"}:
        check_launcher(cfg)
    return cfg


def _cell(hydra_cfg: Any) -> str:
    """A sweep cell by its swept values (``seed=-2``), or by its job number."""
    swept = [o for o in hydra_cfg.overrides.task if o.split("=")[0].lstrip("+~") in _SWEEP_KEYS]
    return " ".join(swept) or f"#{hydra_cfg.job.num}"


def thread_budget(hydra_cfg: Any) -> int | None:
    """CPU threads per run when a launcher runs several at once on this machine (``hydra/launcher=parallel``):
    the cores divided among ``n_jobs`` (at least one); None (PyTorch's default) otherwise."""
    launcher = hydra_cfg.launcher
    if "joblib" not in str(launcher.get("_target_", "")).lower():
        return None
    jobs = int(launcher.get("n_jobs") or 1)
    cores = os.cpu_count() or 1
    return max(1, cores // (cores if jobs < 1 else jobs))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _job(cfg: DictConfig) -> float | None:
    from bench.run import execute

    hydra_cfg = HydraConfig.get()
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["trainer"]["threads"] = plain["trainer"].get("threads") or thread_budget(hydra_cfg)
    cell = _cell(hydra_cfg) if sweep else ""
    try:
        outcome = execute(plain, sweep=sweep, explicit=explicit_keys(hydra_cfg.overrides.task))
    except BenchError as error:
        if not sweep:
            report(error)
            sys.exit(error.exit_code)
        report(BenchError(f"sweep cell {cell}: {error}"))
        _SWEEP_PROBLEMS.append(f"{cell} (bad input)")
        return None
    if outcome.status == "failed":
        _SWEEP_PROBLEMS.append(f"{cell} (failed: {outcome.record_path})")
    record = outcome.record or {}
    final = record.get("final") or {}
    reduced = (record.get("protocol") or {}).get("reduced")
    if outcome.status != "skipped":
        print(f"{outcome.status}: {outcome.run_id}  {describe(final)}  "
              f"({'REDUCED protocol' if reduced else 'full protocol'}; data {record.get('data', {}).get('provenance')})")
        print(f"record: {outcome.record_path}")
    return final.get("value")


def describe(final: dict[str, Any]) -> str:
    """``test_acc1 42.16%`` / ``test_loss 0.01234``: the primary metric of a record's ``final``."""
    if not final:
        return "no completed evaluation"
    unit = "%" if "acc" in final["metric"] else ""
    return f"{final['metric']} {final['value']:.2f}{unit}" if unit else f"{final['metric']} {final['value']:.4g}"


def main() -> None:
    try:
        check_composition(sys.argv[1:])
    except BenchError as error:
        report(error)
        sys.exit(error.exit_code)
    _SWEEP_KEYS.update(_sweep_keys(_split_argv(sys.argv[1:])[0]))
    _job()
    if _SWEEP_PROBLEMS:
        problems = "; ".join(_SWEEP_PROBLEMS)
        report(BenchError(f"{len(_SWEEP_PROBLEMS)} cell(s) of the sweep did not finish: {problems}; the other "
                          "cells ran; fix these and rerun the sweep (finished cells are skipped)"))
        sys.exit(1)
