"""The config tree composes as documented: presets, optimizer precedence, launcher."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench import CONF_DIR

PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
OPTIMS = sorted(p.stem for p in (CONF_DIR / "optim").glob("*.yaml"))


def _compose(*overrides: str, hydra: bool = False) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)
    return OmegaConf.to_container(cfg, resolve=False)


def test_default_is_a_reduced_cpu_demo_on_cifar10() -> None:
    cfg = _compose()
    assert cfg["experiment"] == "default" and cfg["dataset"]["name"] == "cifar10"
    assert cfg["protocol"]["reduced"] is True and cfg["trainer"]["train_subset"] == 10000
    assert cfg["model"] == {"name": "resnet18", "width": 16}


def test_card_example_composes_with_the_preset_and_the_chosen_optimizer() -> None:
    cfg = _compose("+experiment=cifar100_resnet34", "optim=adas")
    assert cfg["experiment"] == "cifar100_resnet34"
    assert (cfg["dataset"]["name"], cfg["model"]["name"], cfg["optim"]["name"]) == ("cifar100", "resnet34", "adas")
    assert cfg["protocol"]["reduced"] is False and cfg["trainer"]["epochs"] == 250


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("optim", OPTIMS)
def test_presets_never_change_an_optimizers_settings(preset: str, optim: str) -> None:
    """optim=X on the command line wins over the preset, and X keeps its own hyper-parameters."""
    alone = _compose(f"optim={optim}", "model=resnet34")["optim"]
    with_preset = _compose(f"+experiment={preset}", f"optim={optim}", "model=resnet34")["optim"]
    assert with_preset == alone


def test_command_line_values_win_over_everything() -> None:
    cfg = _compose("+experiment=cifar100_resnet34", "optim=adam", "optim.hparams.lr=0.5", "trainer.epochs=7")
    assert cfg["optim"]["hparams"]["lr"] == 0.5 and cfg["trainer"]["epochs"] == 7


def test_slurm_launcher_has_partition_gpus_time_limit_and_requeue_keys() -> None:
    launcher = _compose("hydra/launcher=slurm", hydra=True)["hydra"]["launcher"]
    assert "submitit" in launcher["_target_"].lower()
    for key in ("partition", "gpus_per_node", "timeout_min", "max_num_timeout", "signal_delay_s"):
        assert key in launcher
