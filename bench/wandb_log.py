"""Optional Weights & Biases logging (offline by default, never required)."""
from __future__ import annotations

from typing import Any


class WandbLogger:
    """Mirrors each epoch row to wandb; the JSON record stays the source of truth."""

    def __init__(self, settings: dict[str, Any], run_id: str, config: dict[str, Any]) -> None:
        import wandb  # imported only when enabled

        self.run = wandb.init(project=settings.get("project", "bench"), mode=settings.get("mode", "offline"),
                              dir=settings.get("dir"), name=run_id, id=run_id, resume="allow", config=config)

    def log(self, row: dict[str, Any]) -> None:
        flat = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        flat.update({f"lr/group{i}": lr for i, lr in enumerate(row.get("lr", []))})
        self.run.log(flat, step=row["epoch"])

    def finish(self, status: str) -> None:
        self.run.summary["status"] = status
        self.run.finish(exit_code=0 if status != "failed" else 1)
