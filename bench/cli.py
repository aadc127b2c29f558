"""``python -m bench``: the Hydra application.

Before Hydra takes over, the command line is composed once to turn Hydra's multi-line composition
errors (unknown option, unknown preset) into one ``error:`` line naming the fix. Inside the job,
``BenchError`` (bad input) becomes the same one-line error with exit status 2.
"""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from bench import CONF_DIR
from bench.errors import BenchError, report

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


def _first_values(overrides: list[str]) -> list[str]:
    """Each override with a sweep (``a=1,2``, ``glob(*)``) replaced by its first value."""
    parser = OverridesParser.create()
    result = []
    for text, parsed in zip(overrides, parser.parse_overrides(overrides)):
        if not parsed.is_sweep_override():
            result.append(text)
            continue
        try:
            first = next(iter(parsed.sweep_string_iterator()))
        except Exception:  # glob() and ranges of unknown extent: leave their check to Hydra
            continue
        result.append(f"{parsed.get_key_element()}={first}")
    return result


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

    try:
        first = _first_values(overrides)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=first, return_hydra_config=True)
    except (ConfigCompositionException, MissingConfigException) as exc:
        raise BenchError(_explain(exc, overrides)) from exc
    except Exception as exc:  # override syntax errors and the like
        raise BenchError(" ".join(str(exc).split())) from exc
    if flags & {"--multirun", "-m"}:
        check_launcher(cfg)
    return cfg


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _job(cfg: DictConfig) -> float | None:
    from bench.run import execute

    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    plain = OmegaConf.to_container(cfg, resolve=True)
    try:
        outcome = execute(plain, sweep=sweep)
    except BenchError as error:
        report(error)
        sys.exit(error.exit_code)
    record = outcome.record or {}
    final = record.get("final") or {}
    reduced = (record.get("protocol") or {}).get("reduced")
    if outcome.status != "skipped":
        acc = final.get("test_acc1")
        loss = final.get("test_loss")
        summary = (f"test_acc1 {acc:.2f}%" if acc is not None else
                   f"test_loss {loss:.4g}" if loss is not None else "no completed epoch")
        print(f"{outcome.status}: {outcome.run_id}  {summary}  "
              f"({'REDUCED protocol' if reduced else 'full protocol'}; data {record.get('data', {}).get('provenance')})")
        print(f"record: {outcome.record_path}")
    return final.get("test_acc1")


def main() -> None:
    try:
        check_composition(sys.argv[1:])
    except BenchError as error:
        report(error)
        sys.exit(error.exit_code)
    _job()
