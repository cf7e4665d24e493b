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

The refinement pass takes one of two routes, with the same result:

* **positives** (used when ``loss_by_feat`` also returns ``ugs_positives``, a
  :class:`UGSPositives`, and the head implements ``ugs_perturbed_terms``): the targets and
  positive locations of the clean pass are reused; only the levels that hold a positive are
  perturbed (the others get a zero perturbation and add exactly zero to L^ur); the regression
  branch runs on those levels and only CE and UM at the positives are computed. No second
  target assignment, no classification or centerness losses that would be discarded.
* **rerun** (any other head): the regression branch on every level and the whole
  ``loss_by_feat`` again, keeping its ``loss_ce`` / ``loss_um``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
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
#: ``refine_every`` (k) is an approximation, off by default (1): the refinement step runs on
#: every k-th training call of the head only, with L^ur weighted by k there ("lazy"
#: regularisation, as StyleGAN2's lazy R1), so its weight per iteration stays gamma on
#: average; the other iterations cost what ``gamma = 0`` costs.
UGS_DENSE_DEFAULTS = dict(alpha=3.0, beta=1.0, n=16, mapping="log", lam=0.5, gamma=0.5,
                          rho=0.5, refine_norm="sample", ur_objective="localization",
                          loss_weight=1.0, refine_every=1)


def grid_terms(grid: IntervalGrid, logits: Tensor, targets: Tensor, weight: Optional[Tensor],
               avg_factor: float):
    """Eq. 10 and Eq. 12 for ``logits (P, 4, n + 1)`` against ``targets (P, 4)`` already on the
    grid's axis, weighted per side, summed and divided by ``avg_factor``; the one place every
    UGS head (point distances, anchor and RoI deltas) computes its two terms."""
    targets = targets.detach()
    ce = localization_ce(logits, targets, grid, weight=weight, avg_factor=avg_factor)
    um = uncertainty_loss(logits, weight=weight, avg_factor=avg_factor)
    return ce, um


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
    k = cfg["refine_every"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"ugs.refine_every must be an integer >= 1, got {k!r}")
    return cfg


@dataclass
class UGSPositives:
    """The positives of a head's clean loss pass, for the refinement pass to reuse.

    ``where`` maps each FPN level that holds at least one positive to ``(image, row, col)``
    long tensors of its positives; ``data`` is whatever the head's ``ugs_perturbed_terms``
    needs to weigh them (targets, weights, normalisers), in the same order.
    """

    where: Dict[int, Tuple[Tensor, Tensor, Tensor]]
    data: dict

    @property
    def levels(self) -> List[int]:
        return sorted(self.where)


def split_flat_positives(pos_inds: Tensor, featmap_sizes, num_imgs: int
                         ) -> Dict[int, Tuple[Tensor, Tensor, Tensor]]:
    """Indices into the concatenation over levels of ``(B, H_l, W_l)`` maps flattened
    image-major (mmdet's FCOS layout) -> ``{level: (image, row, col)}`` for the levels that
    hold any. Sorted ``pos_inds`` (as ``nonzero`` gives) keep their order level by level."""
    out, start = {}, 0
    for level, (h, w) in enumerate(featmap_sizes):
        h, w = int(h), int(w)
        end = start + num_imgs * h * w
        sel = pos_inds[(pos_inds >= start) & (pos_inds < end)] - start
        if sel.numel():
            out[level] = (sel // (h * w), (sel % (h * w)) // w, sel % w)
        start = end
    return out


def conv2d_at(conv: nn.Conv2d, x: Tensor, image: Tensor, row: Tensor, col: Tensor) -> Tensor:
    """``conv(x)[image, :, row, col]`` -> ``(P, out_channels)``, computed at those points only
    (a gather of the kernel windows and one matrix product). Stride 1, no dilation, one
    group, zero padding: the predictor convs of dense heads. The same numbers as the full
    convolution up to float rounding (another summation order)."""
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 \
            or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("conv2d_at: only stride 1, dilation 1, groups 1, numeric zero padding")
    kh, kw = conv.kernel_size
    ph, pw = conv.padding
    xp = F.pad(x, (pw, pw, ph, ph))
    dy = torch.arange(kh, device=x.device)
    dx = torch.arange(kw, device=x.device)
    # (P, kh, kw, C): advanced indices around a slice put the point dimensions first
    win = xp[image[:, None, None], :, (row[:, None] + dy)[:, :, None],
             (col[:, None] + dx)[:, None, :]]
    weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.out_channels, -1)
    out = win.reshape(win.shape[0], -1) @ weight.t()
    return out + conv.bias if conv.bias is not None else out


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
        return grid_terms(self.ugs_grid, logits, self.ugs_coder.to_grid(distances.detach()),
                          weight, avg_factor)

    def ugs_loss_dict(self, ce: Tensor, um: Tensor) -> Dict[str, Tensor]:
        w = self.ugs_cfg["loss_weight"]
        return dict(loss_ce=w * ce, loss_um=w * self.ugs_cfg["lam"] * um, ugs_um_raw=um)

    def loss(self, x: Sequence[Tensor], batch_data_samples) -> dict:
        """The head's losses plus, when ``gamma > 0``, Eq. 14-16: perturb the levels ``x``
        along the normalised gradient of L_UM (Eq. 15), run only the regression branch again
        on them, and add ``loss_ur = gamma * L^ur`` (``CE + lambda UM`` there, or ``UM`` with
        ``ur_objective="entropy"``). The positives and targets are those of the clean pass
        (the assignment does not depend on the regression output for FCOS and ATSS); see the
        module docstring for the two routes."""
        from mmdet.models.utils import unpack_gt_instances

        gts, gts_ignore, metas = unpack_gt_instances(batch_data_samples)
        return self.ugs_loss(x, gts, metas, gts_ignore)

    def ugs_loss(self, x: Sequence[Tensor], gts, metas, gts_ignore=None) -> dict:
        """:meth:`loss` on unpacked ground truth (a framework whose batches come in another form,
        as mmyolo's fast collate, calls this with its own ``gts`` and ``metas``)."""
        outs = self(x)
        losses = self.loss_by_feat(*outs, gts, metas, gts_ignore)
        um_raw = losses.pop("ugs_um_raw")
        positives = losses.pop("ugs_positives", None)
        cfg = self.ugs_cfg
        if cfg["gamma"] > 0 and self.training and um_raw.requires_grad:
            k = cfg["refine_every"]
            self._ugs_calls = getattr(self, "_ugs_calls", 0) + 1
            if (self._ugs_calls - 1) % k == 0:
                if positives is not None and hasattr(self, "ugs_perturbed_terms"):
                    ur = self._ugs_ur_positives(x, um_raw, positives)
                else:
                    ur = self._ugs_ur_rerun(x, um_raw, outs, gts, metas, gts_ignore)
                losses["loss_ur"] = (cfg["gamma"] * k) * ur
        return losses

    def _ugs_ur(self, ce: Tensor, um: Tensor) -> Tensor:
        """L^ur from CE and UM on the perturbed levels (``ur_objective``)."""
        if self.ugs_cfg["ur_objective"] == "entropy":
            return um
        d = self.ugs_loss_dict(ce, um)
        return d["loss_ce"] + d["loss_um"]

    def _ugs_ur_positives(self, x: Sequence[Tensor], um_raw: Tensor,
                          positives: UGSPositives) -> Tensor:
        """L^ur through the clean pass's positives: only levels holding one are perturbed."""
        cfg = self.ugs_cfg
        levels = positives.levels
        if not levels:          # no positive anywhere: L^ur is an empty sum
            return um_raw * 0
        feats = [x[i] for i in levels]
        deltas = refine_perturbation(um_raw, feats, cfg["rho"], norm=cfg["refine_norm"])
        perturbed = {i: f + d for i, f, d in zip(levels, feats, deltas)}
        return self._ugs_ur(*self.ugs_perturbed_terms(perturbed, positives))

    def _ugs_ur_rerun(self, x: Sequence[Tensor], um_raw: Tensor, outs, gts, metas,
                      gts_ignore) -> Tensor:
        """L^ur by re-running the regression branch on every level and ``loss_by_feat``."""
        cfg = self.ugs_cfg
        levels = list(x)
        deltas = refine_perturbation(um_raw, levels, cfg["rho"], norm=cfg["refine_norm"])
        reg_maps = [self.forward_reg(f + d, i) for i, (f, d) in enumerate(zip(levels, deltas))]
        losses_p = self.loss_by_feat(*self._swap_reg_outputs(outs, reg_maps), gts, metas,
                                     gts_ignore)
        if cfg["ur_objective"] == "entropy":
            return losses_p["ugs_um_raw"]
        return losses_p["loss_ce"] + losses_p["loss_um"]

    def logits_to_distance_maps(self, bbox_preds: List[Tensor]) -> List[Tensor]:
        """Per level ``(B, 4 (n + 1), H, W)`` logits -> ``(B, 4, H, W)`` distances in strides."""
        out = []
        for p in bbox_preds:
            b, _, h, w = p.shape
            logits = p.reshape(b, 4, self.ugs_grid.num_bins, h, w).permute(0, 1, 3, 4, 2)
            out.append(self.ugs_coder.from_grid(self.ugs_grid.decode(logits)))
        return out

