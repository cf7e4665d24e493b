"""UGS for DINO (DETR-style box heads): ``UGSDINOHead`` and the ``UGSDINO`` detector, registered
in mmdet's MODELS.

**The regression branch.** DINO refines boxes as ``sigmoid(reg_branch(h) + inverse_sigmoid(ref))``
at every decoder layer (the decoder's iterative refinement, the head's outputs), in the
encoder's two-stage proposals (``ref`` = the proposal in logit space) and for the denoising
queries (``ref`` = the noised ground truth). ``UGSRegBranch`` keeps mmdet's MLP but its last
Linear gives ``4 (n + 1)`` logits, one distribution over the UGS grid per coordinate
(cx, cy, w, h); called like mmdet's branch it returns the 4-d **expectation** over the grid
(Sec. 3.2.1). So the decoder's refinement, ``pre_decoder``'s proposals, the Hungarian matcher
and inference see ordinary 4-d offsets and are unchanged; the logits are kept for the loss.

**The target** of a query with reference ``r`` (cx, cy, w, h in [0, 1]) and ground truth ``g``
is the offset that makes the decoded box exact, ``inverse_sigmoid(g) - inverse_sigmoid(r)``
(logit units, the head's eps 1e-5; for the encoder's proposals ``inverse_sigmoid(r)`` is the
proposal itself), clamped to [-alpha, alpha] by the grid. Defaults: alpha = 4, beta = 1.0,
n = 16. A logit offset of 4 is a factor e^4 = 55 in a small box's width and far more than any
refinement step of a matched or denoising query needs; beta = 1.0 (Table 7's best) makes the
grid dense near 0, where the later decoder layers' offsets live (spacing 0.048 logit units
next to 0, i.e. about 5 % of a small box's width, versus 0.5 on the uniform grid); n = 16 gives
GFL V1's 17 bins per coordinate.

**The loss** per term (matched queries of every decoder layer, the encoder's top-k proposals,
the positive denoising queries of every decoder layer): Eq. 10 (``loss_ce``) + lambda Eq. 12
(``loss_um``) per coordinate, weighted by mmdet's ``bbox_weights`` and divided by mmdet's
normaliser for the L1 term (the number of positives, averaged over GPUs). They **replace
DINO's L1 term** (``loss_bbox`` keys are not returned: the L1 term on the normalised box and
Eq. 10 on the grid target are two regression losses on the same quantity); the **GIoU term
is kept** on the decoded boxes (as GFL V1 w/ UGS keeps its GIoU), and the matcher's costs
(focal, L1, GIoU on the decoded boxes) are mmdet's. Keys: ``loss_ce`` / ``loss_um`` (last
layer), ``d{i}.loss_ce`` ..., ``enc_loss_ce`` ..., ``dn_loss_ce``, ``d{i}.dn_loss_ce`` ...

**The refinement step** (Eq. 14-15, ``UGSDINO.loss``): the multi-scale encoder inputs (the
neck's levels) are perturbed along the normalised gradient of the summed L_UM of all those
terms (:func:`ugs.refinement.refine_perturbation`, per image and level), the transformer and
the head run again on the perturbed levels (new top-k proposals, new Hungarian matching, new
denoising queries: the targets are the ground truth, so each pass is consistent on its own)
and ``loss_ur = gamma * L^ur`` adds the UGS terms (``CE + lambda UM``, or ``UM`` with
``ur_objective="entropy"``) of that pass. ``refine_every`` as for the dense heads.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads.dino_head import DINOHead
from mmdet.models.detectors.dino import DINO
from mmdet.models.layers import inverse_sigmoid
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean
from torch import Tensor, nn

from ugs.grid import IntervalGrid
from ugs.refinement import refine_perturbation

from .dense_ugs import grid_terms
from .rpn_head import resolve_delta_ugs_cfg

#: DINO's grid (see the module docstring for the reasons).
UGS_DINO_DEFAULTS = dict(alpha=4.0, beta=1.0, n=16)
#: the eps of ``inverse_sigmoid`` in mmdet's ``DeformableDETRHead.forward``
HEAD_EPS = 1e-5


class UGSRegBranch(nn.Sequential):
    """mmdet's regression MLP with a ``4 (n + 1)``-wide last Linear. ``forward`` returns the
    expectation over the grid ``(..., 4)`` (what mmdet's branch returns), ``logits`` the
    distributions ``(..., 4, n + 1)``. Indexing (``branch[-1]``) is the Sequential's."""

    def __init__(self, layers: List[nn.Module], grid: IntervalGrid) -> None:
        super().__init__(*layers)
        # a plain reference: the grid is the head's submodule (its buffer moves with the head)
        object.__setattr__(self, "_ugs_grid", grid)

    def logits(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        return out.unflatten(-1, (4, self._ugs_grid.num_bins))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D401
        return self._ugs_grid.decode(self.logits(x))


def logit_offset_targets(gt_cxcywh: Tensor, ref_unact: Tensor, alpha: float) -> Tensor:
    """``inverse_sigmoid(gt) - ref_unact`` (the offset that decodes to ``gt`` exactly), clamped
    to [-alpha, alpha]; non-finite values (mmdet's +inf for invalid encoder positions) go to the
    nearest end."""
    t = inverse_sigmoid(gt_cxcywh, eps=HEAD_EPS) - ref_unact
    return torch.nan_to_num(t, nan=0.0, posinf=alpha, neginf=-alpha).clamp(-alpha, alpha)


@MODELS.register_module()
class UGSDINOHead(DINOHead):
    """DINO's head with UGS localization (see the module docstring).

    Args:
        ugs: alpha, beta, n (defaults :data:`UGS_DINO_DEFAULTS`), lam, gamma, rho,
            refine_norm, ur_objective, loss_weight, refine_every (defaults as
            :data:`ugs.openmmlab.dense_ugs.UGS_DENSE_DEFAULTS`); gamma / rho / refine_norm /
            ur_objective / refine_every are read by :class:`UGSDINO`.
        Other arguments: as ``DINOHead`` (``loss_bbox``, the L1 term, is built but its value
        is replaced by Eq. 10 + 12; ``loss_iou`` is kept).
    """

    def __init__(self, *args, ugs: Optional[dict] = None, **kwargs) -> None:
        cfg = resolve_delta_ugs_cfg(ugs, UGS_DINO_DEFAULTS)
        self.ugs_cfg = cfg  # read by _init_layers, which DINOHead's __init__ calls
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        cfg = self.ugs_cfg
        self.ugs_grid = IntervalGrid(cfg["alpha"], cfg["beta"], cfg["n"])
        bins = self.ugs_grid.num_bins

        def widen(branch: nn.Sequential) -> UGSRegBranch:
            layers = list(branch)
            last = layers[-1]
            layers[-1] = type(last)(last.in_features, 4 * bins)
            return UGSRegBranch(layers, self.ugs_grid)

        if self.share_pred_layer:
            shared = widen(self.reg_branches[0])
            self.reg_branches = nn.ModuleList([shared for _ in range(self.num_pred_layer)])
        else:
            self.reg_branches = nn.ModuleList([widen(b) for b in self.reg_branches])

    def init_weights(self) -> None:
        super().init_weights()
        # zero last layer: uniform distributions, expectation 0 (mmdet's zero offset); mmdet's
        # -2 bias on w, h of the first branch (single-stage only) has no meaning on the logits
        for m in self.reg_branches:
            nn.init.zeros_(m[-1].weight)
            nn.init.zeros_(m[-1].bias)

    # ------------------------------------------------------------------ forward
    def forward_ugs(self, hidden_states: Tensor, references: List[Tensor]
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """As ``forward`` plus the logits ``(L, B, Q, 4, n + 1)`` and the references in logit
        space ``(L, B, Q, 4)`` the outputs were decoded against."""
        classes, coords, logits, refs = [], [], [], []
        for lid in range(hidden_states.shape[0]):
            ref = inverse_sigmoid(references[lid], eps=HEAD_EPS)
            if ref.shape[-1] != 4:
                raise ValueError("UGSDINOHead needs 4-d references (as_two_stage or "
                                 "with_box_refine); got (cx, cy) references")
            h = hidden_states[lid]
            lg = self.reg_branches[lid].logits(h)
            classes.append(self.cls_branches[lid](h))
            coords.append((self.ugs_grid.decode(lg) + ref).sigmoid())
            logits.append(lg)
            refs.append(ref)
        return (torch.stack(classes), torch.stack(coords), torch.stack(logits),
                torch.stack(refs))

    def forward(self, hidden_states: Tensor, references: List[Tensor]) -> Tuple[Tensor, Tensor]:
        return self.forward_ugs(hidden_states, references)[:2]

    # ------------------------------------------------------------------ targets capture
    def get_targets(self, *args, **kwargs):
        out = super().get_targets(*args, **kwargs)
        if getattr(self, "_ugs_record", None) is not None:
            self._ugs_record.append(("match", out))
        return out

    def get_dn_targets(self, *args, **kwargs):
        out = super().get_dn_targets(*args, **kwargs)
        if getattr(self, "_ugs_record", None) is not None:
            self._ugs_record.append(("dn", out))
        return out

    # ------------------------------------------------------------------ loss
    def loss(self, hidden_states: Tensor, references: List[Tensor], enc_outputs_class: Tensor,
             enc_outputs_coord: Tensor, batch_data_samples, dn_meta: Dict[str, int],
             enc_outputs_ugs: Optional[dict] = None) -> dict:
        """DINO's losses with the L1 terms replaced by Eq. 10 + 12 (module docstring); also
        returns ``ugs_um_raw``, the unweighted sum of L_UM over all terms (for Eq. 15)."""
        gts = [s.gt_instances for s in batch_data_samples]
        metas = [s.metainfo for s in batch_data_samples]
        cls, coords, logits, refs = self.forward_ugs(hidden_states, references)
        if enc_outputs_class is not None and enc_outputs_ugs is None:
            raise ValueError("UGSDINOHead: the encoder's proposals need their logits; use the "
                             "UGSDINO detector (type='UGSDINO'), which passes enc_outputs_ugs")
        self._ugs_record = []
        try:
            losses = self.loss_by_feat(cls, coords, enc_outputs_class, enc_outputs_coord, gts,
                                       metas, dn_meta)
            record = self._ugs_record
        finally:
            self._ugs_record = None
        return self._replace_l1(losses, record, logits, refs, dn_meta, enc_outputs_ugs, metas)

    def _replace_l1(self, losses, record, logits, refs, dn_meta, enc, metas) -> dict:
        num_layers = logits.shape[0]
        has_enc = enc is not None
        has_dn = dn_meta is not None and dn_meta.get("num_denoising_queries", 0) > 0
        kinds = [k for k, _ in record]
        expected = ["match"] * (num_layers + has_enc) + ["dn"] * (num_layers if has_dn else 0)
        if kinds != expected:
            raise RuntimeError(f"UGSDINOHead: mmdet called the target functions as {kinds}, "
                               f"expected {expected} (mmdet's DINOHead.loss_by_feat changed?)")
        n_dn = dn_meta["num_denoising_queries"] if has_dn else 0
        names = [f"d{i}." for i in range(num_layers - 1)] + [""]
        jobs = []  # (key prefix, logits (B, Q, 4, n+1), ref_unact (B, Q, 4), targets)
        for lid in range(num_layers):
            jobs.append((names[lid], logits[lid, :, n_dn:], refs[lid, :, n_dn:], record[lid][1]))
        if has_enc:
            jobs.append(("enc_", enc["logits"], enc["reference_unact"], record[num_layers][1]))
        if has_dn:
            for lid in range(num_layers):
                jobs.append((names[lid] + "dn_", logits[lid, :, :n_dn], refs[lid, :, :n_dn],
                             record[num_layers + has_enc + lid][1]))
        for key in [k for k in losses if k.endswith("loss_bbox")]:
            del losses[key]  # the L1 terms: replaced (module docstring)
        um_raw = logits.new_zeros(())
        w, lam = self.ugs_cfg["loss_weight"], self.ugs_cfg["lam"]
        for prefix, lg, ref, targets in jobs:
            ce, um = self.ugs_terms(lg, ref, targets)
            losses[f"{prefix}loss_ce"] = w * ce
            losses[f"{prefix}loss_um"] = w * lam * um
            um_raw = um_raw + um
        losses["ugs_um_raw"] = um_raw
        return losses

    def ugs_terms(self, logits: Tensor, ref_unact: Tensor, targets: tuple):
        """Eq. 10 and Eq. 12 of one term from mmdet's targets tuple
        ``(labels, label_weights, bbox_targets, bbox_weights, num_pos, num_neg)`` (lists per
        image, as ``get_targets`` / ``get_dn_targets`` return), normalised like mmdet's L1."""
        bbox_targets = torch.cat(targets[2], 0)
        bbox_weights = torch.cat(targets[3], 0)
        num_pos = logits.new_tensor([float(targets[4])])
        num_pos = torch.clamp(reduce_mean(num_pos), min=1).item()
        lg = logits.reshape(-1, 4, self.ugs_grid.num_bins)
        ref = ref_unact.reshape(-1, 4)
        pos = bbox_weights.sum(-1) > 0
        t = logit_offset_targets(bbox_targets[pos], ref[pos].detach(), self.ugs_grid.alpha)
        return grid_terms(self.ugs_grid, lg[pos], t, bbox_weights[pos], num_pos)


@MODELS.register_module()
class UGSDINO(DINO):
    """DINO with a :class:`UGSDINOHead`: passes the encoder proposals' logits to the head and
    adds the refinement step of Eq. 14-15 on the multi-scale encoder inputs (module
    docstring)."""

    def gen_encoder_output_proposals(self, memory, memory_mask, spatial_shapes):
        output_memory, output_proposals = super().gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        self._ugs_enc = (output_memory, output_proposals)
        return output_memory, output_proposals

    def pre_decoder(self, memory, memory_mask, spatial_shapes, batch_data_samples=None):
        self._ugs_enc = None
        dec_in, head_in = super().pre_decoder(memory, memory_mask, spatial_shapes,
                                              batch_data_samples=batch_data_samples)
        if self.training:
            output_memory, output_proposals = self._ugs_enc
            lid = self.decoder.num_layers
            # the same top-k as DINO's pre_decoder (same scores, same call), gathered
            scores = self.bbox_head.cls_branches[lid](output_memory)
            topk = torch.topk(scores.max(-1)[0], k=self.num_queries, dim=1)[1]
            rows = torch.gather(output_memory, 1,
                                topk[..., None].expand(-1, -1, output_memory.shape[-1]))
            ref = torch.gather(output_proposals, 1, topk[..., None].expand(-1, -1, 4))
            head_in["enc_outputs_ugs"] = dict(
                logits=self.bbox_head.reg_branches[lid].logits(rows), reference_unact=ref)
        self._ugs_enc = None
        return dec_in, head_in

    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict:
        feats = self.extract_feat(batch_inputs)
        losses = self._ugs_pass(feats, batch_data_samples)
        um_raw = losses.pop("ugs_um_raw")
        cfg = self.bbox_head.ugs_cfg
        if cfg["gamma"] > 0 and self.training and um_raw.requires_grad:
            k = cfg["refine_every"]
            self._ugs_calls = getattr(self, "_ugs_calls", 0) + 1
            if (self._ugs_calls - 1) % k == 0:
                losses["loss_ur"] = (cfg["gamma"] * k) * self.refinement_loss(
                    um_raw, feats, batch_data_samples)
        return losses

    def _ugs_pass(self, feats, batch_data_samples) -> dict:
        head_in = self.forward_transformer(feats, batch_data_samples)
        return self.bbox_head.loss(**head_in, batch_data_samples=batch_data_samples)

    def refinement_loss(self, um_raw: Tensor, feats, batch_data_samples) -> Tensor:
        """L^ur (unweighted by gamma): the UGS terms of a pass on the levels perturbed by
        Eq. 15."""
        cfg = self.bbox_head.ugs_cfg
        feats = list(feats)
        deltas = refine_perturbation(um_raw, feats, cfg["rho"], norm=cfg["refine_norm"])
        losses_p = self._ugs_pass([f + d for f, d in zip(feats, deltas)], batch_data_samples)
        if cfg["ur_objective"] == "entropy":
            return losses_p["ugs_um_raw"]
        return sum(v for k, v in losses_p.items()
                   if k.endswith("loss_ce") or k.endswith("loss_um"))
