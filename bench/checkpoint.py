"""Per-epoch checkpoints: everything needed to continue a run exactly where an epoch ended.

``<run_dir>/checkpoint.pt`` holds the last epoch and ``checkpoint.prev.pt`` the one before, so that a
checkpoint that cannot be read (truncated by a full disk, corrupted) is set aside as
``<name>.corrupt`` with a one-line warning and the run resumes from the previous one, or restarts.
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

KEYS = ("config_hash", "workload", "driver", "epoch", "step", "history", "rng")


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


def previous(path: Path) -> Path:
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file + rename), keeping the one before as ``previous``:
    a kill at any point leaves an intact checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({**payload, "rng": rng_state()}, tmp)
    if path.exists():
        os.replace(path, previous(path))
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any]:
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or not set(KEYS) <= set(payload):
        raise ValueError("not a bench checkpoint (keys missing)")
    return payload


def load(path: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint at ``path`` or its previous one (RNG states restored), or None.

    An unreadable one is renamed ``<name>.corrupt`` (kept for inspection) with a warning on stderr.
    """
    for candidate in (path, previous(path)):
        if not candidate.is_file():
            continue
        try:
            payload = _read(candidate)
        except Exception as exc:  # truncated zip, unpickling errors, wrong content: all mean unusable
            aside = candidate.with_name(f"{candidate.name}.corrupt")
            os.replace(candidate, aside)
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            print(f"warning: checkpoint {candidate} is unreadable ({reason}); moved to {aside.name}",
                  file=sys.stderr, flush=True)
            continue
        set_rng_state(payload["rng"])
        return payload
    return None


def clean_temporaries(path: Path) -> None:
    """Remove temporary files a killed save left next to ``path`` (call with the run's lock held)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        tmp.unlink(missing_ok=True)


def remove(path: Path) -> None:
    """Delete the checkpoint and its previous one (a run that ended needs neither)."""
    for candidate in (path, previous(path)):
        candidate.unlink(missing_ok=True)
