"""bench: reproduce five adaptive-learning-rate papers under one protocol.

Entry points: ``python -m bench`` (train one configuration, Hydra), ``python -m bench.tables``
(regenerate tables from ``results/``), ``python -m bench.data prepare`` (datasets).
"""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
