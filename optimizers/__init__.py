"""Optimizers of the five papers and their baselines, one class per paper method.

Import any of them as ``from optimizers import <Name>``; all follow ``optimizers.protocol``.
Baselines that PyTorch ships are re-exported unchanged so that configs name every optimizer the
same way (``optim.class_name``).
"""
from torch.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from optimizers.packaged import AdaBelief, AdaBound, AdamP, SGDP
from optimizers.adalip import AdaLip, AdaLipU, AdamLip, AdamLipU, RMSLip, RMSLipU
from optimizers.autodrop import AutoDrop
from optimizers.protocol import EpochHook, EpochLogger, StepHook, requirements
from optimizers.sam import SAM
from optimizers.sls import SLS
from optimizers.lrfree_baselines import COCOB, LDoG, DAdaptAdam, DAdaptSGD, DoG, Prodigy
from optimizers.ps_dasgd import PSDASGD
from optimizers.ps_sps import PSSPS
from optimizers.sps import SPS

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Adagrad",
    "RMSprop",
    "AdaBelief",
    "AdaBound",
    "AdamP",
    "SGDP",
    "SAM",
    "SLS",
    # learning-rate-free methods of Suh & Seo (PS-SPS, PS-DA-SGD) and their baselines
    "PSSPS",
    "PSDASGD",
    "SPS",
    "DAdaptSGD",
    "DAdaptAdam",
    "Prodigy",
    "DoG",
    "LDoG",
    "COCOB",
    "AdaLip",
    "AdaLipU",
    "AdamLip",
    "AdamLipU",
    "RMSLip",
    "RMSLipU",
    "AutoDrop",
    "EpochHook",
    "EpochLogger",
    "StepHook",
    "requirements",
]
