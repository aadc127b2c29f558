"""Per-epoch checkpoints: everything needed to continue a run exactly where an epoch ended."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """The state of every random number generator the run touches."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically, so a kill during the write leaves the previous one intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({**payload, "rng": rng_state()}, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (RNG states restored), or None when there is none."""
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=False)
    set_rng_state(payload["rng"])
    return payload
