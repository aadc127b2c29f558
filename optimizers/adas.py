"""AdaS: Adaptive Scheduling of Stochastic Gradients (Hosseini & Plataniotis, 2020).

Paper (ICLR 2021 submission; notes/adas.md): per conv block l and epoch t,
``eta(t, l) <- beta eta(t-1, l) + zeta [G(t, l) - G(t-1, l)]`` (Eq. 8), ``G = (G_3^1 + G_4^1) / 2``
the knowledge gain (Eq. 3, p = 1) of the EVBMF low-rank part of the mode-3/4 unfoldings
(Algorithm 1, Phase II), inside momentum SGD (Phase I, alpha = 0.9); ``eta <- max(eta, 0)``
(Algorithm 1 step 5); zeta = 1 in all experiments; G(0) = 0.

``variant`` (every paper-versus-code difference of notes/adas.md and reference-implementations.md):

``"paper_code"`` (default: the 2020 repository ``mahdihosseini/AdaS`` that produced Table 1)
    first velocity ``lr`` from eta = 0, so the first two epochs run at ``lr`` and the first
    difference is G_1 - G_0 (A2); floor ``min_lr = 1e-20`` (A3); PyTorch momentum form, lr outside
    the buffer (A4); parameters from the first 2-D weight (the classifier) on get one extra LR driven
    by the **last conv's output-channel gain** (A6); parameters before the first conv keep ``lr``;
    tall unfoldings are not transposed and a failed factorisation reuses the previous epoch's value
    and is then overwritten by the previous layer's (notes §1.3); ``p`` is honoured (A7).
``"pypi"`` (the ``adas`` 1.1.3 wheel)
    velocity from 0, first delta ``lr``; layers whose gain is still 0 are held at ``lr`` (with the
    wheel's skip-while-removing quirk); floor 0; every non-conv parameter, the classifier included,
    takes the LR of the parameter before it (``linear=True``: 2-D weights get their own gain); tall
    unfoldings transposed; ``zeta_decay_gamma``/``zeta_decay_step`` decay zeta (the wheel's
    ``gamma``/``step_size``; off by default there and here).
``"paper_text"``
    Eq. (8) literally: eta starts at ``lr``, ``G(0) = 0`` so after epoch 1 ``eta = beta lr + zeta
    G_1``; floor 0; the paper's momentum form ``v = alpha v - eta g`` (A4); classifier as the code.
"""
from __future__ import annotations

from typing import Any

from optimizers.lowrank_sgd import LowRankSGD, Semantics, check_choice

VARIANTS: dict[str, Semantics] = {
    "paper_code": Semantics(init_velocity="zero", first_delta="lr", floor=1e-20, fc_rule="last_conv_out",
                            tall="reference", fallback="previous_layer"),
    "pypi": Semantics(init_velocity="zero", first_delta="lr", hold_not_ready=True, floor=0.0),
    "paper_text": Semantics(init_velocity="lr", first_delta="gain", floor=0.0, fc_rule="last_conv_out",
                            momentum_form="sutskever"),
}


class AdaS(LowRankSGD):
    """AdaS (see module docstring). Call ``end_epoch(epoch)`` after every training epoch.

    Args:
        params: parameters or groups (several groups need ``param_order``, see ``LowRankSGD``).
        lr: initial learning rate of every layer (paper: 3e-2 for ResNets, 5e-3 for VGG16).
        beta: gain factor in [0, 1) (paper sweeps 0.8, 0.85, 0.9, 0.95, 0.975).
        zeta: gain of the knowledge-gain change (1 in the paper).
        p: knowledge-gain exponent (1 in Algorithm 1; 2 optional).
        momentum, dampening, weight_decay, nesterov: of the inner SGD (coupled L2 on all params).
        variant: "paper_code" | "pypi" | "paper_text" (module docstring).
        min_lr: floor of the LRs; None takes the variant's (1e-20 paper_code, else 0).
        zeta_decay_gamma, zeta_decay_step: multiply zeta by gamma every step epochs (the wheel's
            ``gamma``/``step_size``); None takes the variant's (off in every variant).
        linear: analyse 2-D weights too ("pypi" semantics).
        tall: "transpose" | "reference" for tall unfoldings; None takes the variant's.
        scale_invariant: scale-invariant EVBMF search (``lowrank_metrics``); False = reference.
        svd: "gram" (fast) | "gram64" (exact) | "svd" (the references' numerical route, bit-equal gains);
            see ``lowrank_metrics.singular_values``.
    """

    def __init__(self, params: Any, lr: float = 0.03, beta: float = 0.8, zeta: float = 1.0, p: int = 1,
                 momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, variant: str = "paper_code", min_lr: float | None = None,
                 zeta_decay_gamma: float | None = None, zeta_decay_step: int | None = None, linear: bool = False,
                 tall: str | None = None, scale_invariant: bool = False, svd: str = "gram") -> None:
        check_choice("variant", variant, VARIANTS)
        semantics = VARIANTS[variant].override(floor=min_lr, tall=tall, zeta_decay_gamma=zeta_decay_gamma,
                                               zeta_decay_step=zeta_decay_step)
        if linear and semantics.fc_rule == "last_conv_out":
            raise ValueError("linear=True (own gain for 2-D weights) belongs to variant 'pypi'")
        super().__init__(params, semantics, lr, beta, zeta,
                         p, momentum, dampening, weight_decay, nesterov, linear, scale_invariant, svd)
        self.variant = variant
