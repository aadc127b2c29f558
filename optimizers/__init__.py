"""Optimizers of the five papers and their baselines, one class per paper method.

Import any of them as ``from optimizers import <Name>``; all follow ``optimizers.protocol``.
Baselines that PyTorch ships are re-exported unchanged so that configs name every optimizer the
same way (``optim.class_name``).
"""
from torch.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from optimizers.adas import AdaS
from optimizers.protocol import EpochHook, EpochLogger, StepHook, requirements
from optimizers.rmsgd import RMSGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Adagrad",
    "RMSprop",
    "AdaS",
    "RMSGD",
    "EpochHook",
    "EpochLogger",
    "StepHook",
    "requirements",
]
