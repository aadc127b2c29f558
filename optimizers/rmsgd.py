"""RMSGD: Exploiting Explainable Metrics for Augmented SGD (Hosseini, Tuli & Plataniotis, CVPR 2022).

Paper (notes/rmsgd.md): per layer l and epoch t, rule (i) ``eta_l(t) <- beta eta_l(t-1) +
zeta [s(W_l^t) - s(W_l^{t-1})]`` with s the stable rank (Eq. 2; the code's p = 1 "knowledge gain",
mode-3/4 averaged) of the EVBMF low-rank part (Eq. 1), inside momentum SGD (rules (ii)-(iii),
alpha = 0.9); beta = 0.98, zeta = 1, eta_l(0) = 0.03, s^0 = 0 (Algorithm 1). The explainability
metrics (condition Eq. 3, q Eq. 4, Q Eq. 5) are logged; they do not drive the LR.

``variant`` (notes/rmsgd.md §1.8, reference-implementations.md §2):

``"paper_branch"`` (default: branch ``paper`` of ``mahdihosseini/RMSGD``, the CVPR numbers)
    velocity from 0, first delta ``lr`` (epochs 0 and 1 run at ``lr``; no s^0 = 0); layers whose
    gain is still 0 are held at ``lr``; floor 1e-10; **1x1 convs are not analysed** and inherit the
    previous parameter's LR, like every non-conv parameter (BN, biases, the classifier); zeta decays
    x0.98 every epoch (the branch's released ``configs/rmsgd.yaml``: ``gamma: 0.98, step_size: 1``;
    the velocity itself is not decayed).
``"pypi"`` (``rmsgd`` 1.0.2 = branch ``main``)
    velocity starts at ``lr`` (so ``(1 + beta) lr`` after epoch 0); the hold divides by zeta; a
    decay multiplies velocity and zeta, off by default (the package's ``gamma=1, step_size=None``);
    floor 0; 1x1 convs analysed; frozen weights not analysed.
``"paper_text"``
    Algorithm 1 literally: eta starts at ``lr``, ``s^0 = 0``, no hold, floor 0, the paper's momentum
    form ``v = alpha v - eta g``, and no zeta decay (§4.2: zeta = 1, "no learning rate decay").

The zeta decay (notes/rmsgd.md, contradiction C) is ``zeta_decay_gamma``/``zeta_decay_step`` (the
packages' ``gamma``/``step_size``); left at None each takes its variant's value above, so choosing
``paper_text`` never keeps the code's decay; ``zeta_decay_gamma=1`` switches any decay off. The
values in force are in every ``epoch_log`` (``zeta_decay``), next to ``zeta`` itself.
"""
from __future__ import annotations

from typing import Any

from optimizers.lowrank_sgd import LowRankSGD, Semantics, check_choice

VARIANTS: dict[str, Semantics] = {
    "paper_branch": Semantics(init_velocity="zero", first_delta="lr", hold_not_ready=True, floor=1e-10,
                              mask_1x1=True, zeta_decay_gamma=0.98, zeta_decay_step=1),
    "pypi": Semantics(init_velocity="lr", first_delta="lr", hold_not_ready=True, not_ready_over_zeta=True,
                      decay_velocity=True, floor=0.0, mask_frozen=True),
    "paper_text": Semantics(init_velocity="lr", first_delta="gain", floor=0.0, momentum_form="sutskever"),
}


class RMSGD(LowRankSGD):
    """RMSGD (see module docstring). Call ``end_epoch(epoch)`` after every training epoch.

    Args:
        params: parameters or groups (several groups need ``param_order``, see ``LowRankSGD``).
        lr: initial learning rate of every layer (0.03 in all image experiments).
        beta: learning momentum in [0, 1) (0.98; 0.9 PTB LSTM; 0.95 WGAN).
        zeta: initial gain of the stable-rank change (1).
        zeta_decay_gamma, zeta_decay_step: zeta (and for "pypi" the velocity) times gamma every step
            epochs; None takes the variant's (paper_branch 0.98 / 1, the others off); gamma 1 is off.
        momentum, dampening, weight_decay, nesterov: of the inner SGD (coupled L2 on all params).
        variant: "paper_branch" | "pypi" | "paper_text" (module docstring).
        mask_1x1: override whether 1x1 convs are analysed (None: the variant's).
        min_lr: floor of the LRs (None: the variant's).
        linear: analyse 2-D weights (the LSTM appendix task; False in the image experiments).
        p: stable-rank exponent (1 as the code; 2 is Eq. 2's right-hand form).
        tall, scale_invariant: EVBMF edge-case switches (``lowrank_metrics``).
        svd: "gram" (fast) | "gram64" (exact) | "svd" (the references' numerical route, bit-equal gains);
            see ``lowrank_metrics.singular_values``.
    """

    def __init__(self, params: Any, lr: float = 0.03, beta: float = 0.98, zeta: float = 1.0,
                 zeta_decay_gamma: float | None = None, zeta_decay_step: int | None = None, momentum: float = 0.9,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 variant: str = "paper_branch", mask_1x1: bool | None = None, min_lr: float | None = None,
                 linear: bool = False, p: int = 1, tall: str | None = None,
                 scale_invariant: bool = False, svd: str = "gram") -> None:
        check_choice("variant", variant, VARIANTS)
        semantics = VARIANTS[variant].override(floor=min_lr, tall=tall, mask_1x1=mask_1x1,
                                               zeta_decay_gamma=zeta_decay_gamma, zeta_decay_step=zeta_decay_step)
        super().__init__(params, semantics, lr, beta, zeta,
                         p, momentum, dampening, weight_decay, nesterov, linear, scale_invariant, svd)
        self.variant = variant
