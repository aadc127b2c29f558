"""Optimizers of the five papers and their baselines, one class per paper method.

Import any of them as ``from optimizers import <Name>``; all follow ``optimizers.protocol``.
Baselines that PyTorch ships are re-exported unchanged so that configs name every optimizer the
same way (``optim.class_name``).
"""
from torch.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from optimizers.adalip import AdaLip, AdaLipU, AdamLip, AdamLipU, RMSLip, RMSLipU
from optimizers.adas import AdaS
from optimizers.autodrop import AutoDrop
from optimizers.lrfree_baselines import COCOB, LDoG, DAdaptAdam, DAdaptSGD, DoG, Prodigy
from optimizers.packaged import AdaBelief, AdaBound, AdamP, SGDP
from optimizers.protocol import EpochHook, EpochLogger, StepHook, requirements
from optimizers.ps_dasgd import PSDASGD
from optimizers.ps_sps import PSSPS
from optimizers.rmsgd import RMSGD
from optimizers.sam import SAM
from optimizers.sls import SLS
from optimizers.sps import SPS

__all__ = [
    # PyTorch baselines
    "SGD", "Adam", "AdamW", "Adagrad", "RMSprop",
    # AdaS and RMSGD (low-rank metrics of conv weights, per-layer LRs once per epoch)
    "AdaS", "RMSGD",
    # AutoDrop (an epoch-level schedule usable with any optimizer)
    "AutoDrop",
    # AdaLip family (per-tensor Lipschitz-scaled LRs)
    "AdaLip", "AdamLip", "RMSLip", "AdaLipU", "AdamLipU", "RMSLipU",
    # learning-rate-free methods of Suh & Seo (PS-SPS, PS-DA-SGD) and their baselines
    "PSSPS", "PSDASGD", "SPS", "DAdaptSGD", "DAdaptAdam", "Prodigy", "DoG", "LDoG", "COCOB",
    # other baselines from their authors' packages or small reimplementations
    "AdaBelief", "AdaBound", "AdamP", "SGDP", "SAM", "SLS",
    # the trainer/optimizer protocol
    "EpochHook", "EpochLogger", "StepHook", "requirements",
]
