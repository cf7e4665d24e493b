"""What every UGS dense head shares: the grid, the distance coding, Eq. 10/12 terms and the
refinement step of Eq. 14-16 on the FPN levels the head reads.

The math is the ``ugs`` core; this mixin only wires it into mmdet's dense-head protocol
(``loss(x, batch_data_samples)`` -> ``loss_by_feat(*outs, ...)``). A head using it must:

* call :meth:`_init_ugs` after its own ``__init__``;
* implement ``forward_reg(x, level)`` (the regression branch alone on one level, returning the
  same logits map as ``forward``) and ``_swap_reg_outputs(outs, reg_maps)`` (the forward
  outputs with the regression maps replaced);
* return from ``loss_by_feat`` the keys ``loss_ce`` and ``loss_um`` (weighted) and
  ``ugs_um_raw`` (the unweighted L_UM, the loss whose feature gradient gives Eq. 15).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from torch import Tensor, nn

from ugs.distance_coding import DistanceCoder
from ugs.grid import IntervalGrid
from ugs.localization import localization_ce
from ugs.objective import UR_OBJECTIVES
from ugs.refinement import NORMS, refine_perturbation
from ugs.uncertainty import uncertainty_loss

#: Defaults for point-based heads (FCOS, GFL V1). The paper gives grid parameters only for
#: Faster R-CNN (Table 7); alpha = 3 with the log mapping covers 0.05-20 strides, beta = 1.0
#: is Table 7's best beta for both stages, n = 16 gives GFL V1's 17 bins per side;
#: lam / gamma / rho are Table 6's best row.
UGS_DENSE_DEFAULTS = dict(alpha=3.0, beta=1.0, n=16, mapping="log", lam=0.5, gamma=0.5,
                          rho=0.5, refine_norm="sample", ur_objective="localization",
                          loss_weight=1.0)


def resolve_ugs_cfg(ugs: Optional[dict]) -> dict:
    """Defaults merged with ``ugs``; unknown keys raise ValueError naming them."""
    cfg = dict(UGS_DENSE_DEFAULTS)
    unknown = sorted(set(ugs or {}) - set(cfg))
    if unknown:
        raise ValueError(f"unknown ugs option(s) {unknown}; known: {sorted(cfg)}")
    cfg.update(ugs or {})
    if cfg["refine_norm"] not in NORMS:
        raise ValueError(f"ugs.refine_norm must be one of {NORMS}, got {cfg['refine_norm']!r}")
    if cfg["ur_objective"] not in UR_OBJECTIVES:
        raise ValueError(f"ugs.ur_objective must be one of {UR_OBJECTIVES}, "
                         f"got {cfg['ur_objective']!r}")
    for key in ("lam", "gamma", "rho", "loss_weight"):
        if not cfg[key] >= 0:
            raise ValueError(f"ugs.{key} must be >= 0, got {cfg[key]!r}")
    return cfg


class UGSIntegral(nn.Module):
    """Logits ``(..., 4 * (n + 1))`` -> distances in stride units ``(-1, 4)``: the expectation
    over the UGS grid (Sec. 3.2.1), mapped back by the :class:`DistanceCoder`. Drop-in for
    GFL V1's ``Integral``."""

    def __init__(self, grid: IntervalGrid, coder: DistanceCoder) -> None:
        super().__init__()
        self.grid, self.coder = grid, coder

    def forward(self, x: Tensor) -> Tensor:
        t = self.grid.decode(x.reshape(-1, self.grid.num_bins))
        return self.coder.from_grid(t).reshape(-1, 4)


class UGSDenseHeadMixin:
    """Eq. 10, 12 and 14-16 for an mmdet dense head (see the module docstring)."""

    def _init_ugs(self, cfg: dict) -> None:
        self.ugs_cfg = cfg
        self.ugs_grid = IntervalGrid(cfg["alpha"], cfg["beta"], cfg["n"])
        self.ugs_coder = DistanceCoder(cfg["alpha"], cfg["mapping"])
        self.ugs_integral = UGSIntegral(self.ugs_grid, self.ugs_coder)

    def ugs_terms(self, logits: Tensor, distances: Tensor, weight: Optional[Tensor],
                  avg_factor: float):
        """CE (Eq. 10) and entropy (Eq. 12) of ``logits (P, 4, n + 1)`` against ``distances
        (P, 4)`` in stride units, weighted per side and divided by ``avg_factor``."""
        t = self.ugs_coder.to_grid(distances.detach())
        ce = localization_ce(logits, t, self.ugs_grid, weight=weight, avg_factor=avg_factor)
        um = uncertainty_loss(logits, weight=weight, avg_factor=avg_factor)
        return ce, um

    def ugs_loss_dict(self, ce: Tensor, um: Tensor) -> Dict[str, Tensor]:
        w = self.ugs_cfg["loss_weight"]
        return dict(loss_ce=w * ce, loss_um=w * self.ugs_cfg["lam"] * um, ugs_um_raw=um)

    def loss(self, x: Sequence[Tensor], batch_data_samples) -> dict:
        """The head's losses plus, when ``gamma > 0``, Eq. 14-16: perturb the levels ``x``
        along the normalised gradient of L_UM (Eq. 15), run only the regression branch again
        on them, and add ``loss_ur = gamma * L^ur`` (``CE + lambda UM`` there, or ``UM`` with
        ``ur_objective="entropy"``). Targets are assigned again for the second pass (the
        assignment does not depend on the regression output for FCOS and ATSS)."""
        from mmdet.models.utils import unpack_gt_instances

        outs = self(x)
        gts, gts_ignore, metas = unpack_gt_instances(batch_data_samples)
        losses = self.loss_by_feat(*outs, gts, metas, gts_ignore)
        um_raw = losses.pop("ugs_um_raw")
        cfg = self.ugs_cfg
        if cfg["gamma"] > 0 and self.training and um_raw.requires_grad:
            levels = list(x)
            deltas = refine_perturbation(um_raw, levels, cfg["rho"], norm=cfg["refine_norm"])
            reg_maps = [self.forward_reg(f + d, i) for i, (f, d) in enumerate(zip(levels, deltas))]
            losses_p = self.loss_by_feat(*self._swap_reg_outputs(outs, reg_maps), gts, metas,
                                         gts_ignore)
            if cfg["ur_objective"] == "entropy":
                ur = losses_p["ugs_um_raw"]
            else:
                ur = losses_p["loss_ce"] + losses_p["loss_um"]
            losses["loss_ur"] = cfg["gamma"] * ur
        return losses

    def logits_to_distance_maps(self, bbox_preds: List[Tensor]) -> List[Tensor]:
        """Per level ``(B, 4 (n + 1), H, W)`` logits -> ``(B, 4, H, W)`` distances in strides."""
        out = []
        for p in bbox_preds:
            b, _, h, w = p.shape
            logits = p.reshape(b, 4, self.ugs_grid.num_bins, h, w).permute(0, 1, 3, 4, 2)
            out.append(self.ugs_coder.from_grid(self.ugs_grid.decode(logits)))
        return out

