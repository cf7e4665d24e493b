"""Oriented RepPoints with UGS: ``UGSOrientedRepPointsHead``, registered in mmrotate's MODELS.

Oriented RepPoints (mmrotate 1.0.0rc1's ``OrientedRepPointsHead``) has no per-point regression
targets: a point set is trained by ConvexGIoU against its ground-truth polygon (init and
refine stages) and a spatial-border loss. UGS needs a target per predicted scalar, so the kit
changes the head as follows (and nothing else):

* **Refine offsets as distributions.** ``reppoints_pts_refine_out`` outputs
  ``2 * num_points * (n + 1)`` logits per location instead of ``2 * num_points`` offsets: one
  distribution over the UGS interval grid (Eq. 9) per coordinate of each point, channel
  ``c * (n + 1) + j`` = stock channel ``c`` (mmdet's ``y, x`` order per point), grid point
  ``j``. The offsets are the expectation over the grid (Sec. 3.2.1), decoded inside the
  forward pass, so everything downstream (the refine ConvexGIoU loss, the spatial-border loss,
  the quality assessment, prediction) sees the decoded offsets exactly where the stock head
  used its raw ones. A refine offset is in the head's own units, **feature-map cells of its
  level** (``offset_to_pts`` multiplies by the stride), and is the residual added to the
  (detached) init point: signed and centred on 0 (0 = keep the init point). It goes on the
  symmetric grid unmapped, as the RPN's anchor deltas (:func:`resolve_delta_ugs_cfg`). The
  decoded refine offset is bounded by ``alpha`` cells (the stock one is unbounded).
* **Targets for Eq. 10.** At each positive of the refine stage (the stock refine assigner's
  positives after the stock quality assessment and dynamic top-k selection) and for each
  point k, the target is the detached projection of the predicted (decoded) refine point onto
  the boundary of its assigned ground-truth polygon (the qbox's four corners,
  :func:`ugs.polygon_projection.project_to_polygon_boundary`), written as the refine offset
  that would put the point there: ``(projection - location) / stride - init offset``. A point
  already on the boundary keeps its place and CE only sharpens its distribution there. The
  projection, not a fixed assignment of points to corners or to sampled boundary points,
  because a RepPoints set has no point order: the nine points are learnt freely and any of
  them may end up on any side, so the only target that does not impose an order is the
  nearest boundary point of each.
* **Losses.** This head **adds** terms to the stock loss, unlike the kit's other UGS heads,
  which replace their box loss: the stock init-stage losses are unchanged, the refine stage
  keeps the stock ConvexGIoU and spatial-border losses (on the decoded points) and gains
  ``loss_ce`` (``loss_weight`` x Eq. 10) and ``loss_um`` (``loss_weight x lambda`` x Eq. 12),
  averaged over the ``2 * num_points`` coordinates of the positives (the stock refine
  ConvexGIoU is a mean over the positive point sets, per GPU). ConvexGIoU must stay: the
  projection targets only pull each point onto the nearest edge, so without a set-level loss
  every point could collapse onto one edge (or one corner) and still have zero CE; the GIoU of
  the set's hull is what keeps the set spread over the whole object. Plus ``loss_ur = gamma x
  L^ur`` (Eq. 14-16, :class:`ugs.openmmlab.dense_ugs.UGSDenseHeadMixin`, "positives" route):
  the FPN levels holding a positive are perturbed along the normalised gradient of the
  unweighted L_UM (:func:`ugs.refinement.refine_perturbation`), the refine regression branch
  (``reg_convs``, the refine deformable conv, ``reppoints_pts_refine_out``) runs again on the
  perturbed levels, and CE + lambda UM (UM alone with ``ur_objective="entropy"``) is computed
  at the same positives with the same targets. In that pass the deformable conv samples at the
  clean pass's init points (detached): the refine offset is a residual on the clean init point,
  so the clean targets keep their meaning; the perturbation reaches the refine logits through
  the features the branch reads.
* ``ugs=dict(loss_weight=0.0, gamma=0.0)`` is the **parametrisation control**: distribution
  offsets decoded by expectation, trained by the stock losses only (``loss_ce`` and
  ``loss_um`` are logged as zeros, there is no ``loss_ur``).
* Ground truth may come as ``RotatedBoxes`` (the kit's SODA-A pipeline converts to rbox) or
  ``QuadriBoxes``; it is handed to the stock code as plain ``(N, 8)`` qbox tensors, the only
  form mmrotate 1.0.0rc1's ``ConvexAssigner`` can index (``gt[:, 0::2]`` on a box object fails
  mmdet's ``BaseBoxes.__getitem__`` check).

Classification, the init stage, both assigners, the quality assessment (APAA) and the
post-processing are the stock head's, including two of its quirks that decide which
locations are refine positives (kept, not fixed, so that the comparison with the stock head
is like for like): the point sets handed to the refine assigner are the init sets with each
point's x and y offsets swapped (``loss_by_feat`` adds the raw ``y, x`` offsets to ``x, y``
centres), and with the config's ``min_pos_iou=0`` a ground truth that no init set overlaps
(every set early in training, degenerate at its location) is matched to every location
whose convex IoU is its maximum, 0, i.e. to all of them, before APAA keeps the best few.
On the CPU, call :func:`ugs.rotated.cpu_ops.install` before training (mmcv's convex ops are
CUDA-only). The grid defaults (:data:`UGS_REPPOINTS_DEFAULTS`) and
how ``alpha`` was chosen are stated there.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from mmrotate.models.dense_heads.oriented_reppoints_head import OrientedRepPointsHead
from mmrotate.registry import MODELS
from torch import Tensor, nn

from ugs.grid import IntervalGrid
from ugs.openmmlab.dense_ugs import UGSDenseHeadMixin, UGSPositives, grid_terms
from ugs.openmmlab.rpn_head import resolve_delta_ugs_cfg
from ugs.polygon_projection import project_to_polygon_boundary, qbox_vertices

__all__ = ["UGSOrientedRepPointsHead", "UGS_REPPOINTS_DEFAULTS", "gt_as_qbox_tensors"]

#: Grid of the refine offsets, in feature-map cells: alpha = 6, beta = 1.0, n = 16.
#:
#: alpha is the largest refine offset the head can decode, so it must cover what Eq. 10's
#: targets ask for: ``|(projection of the refined point) - (init point)| / stride`` per
#: coordinate at the refine positives. Measured with the *stock* head (raw offsets) in a tiny
#: RepPoints detector (ResNet-18 at 16 base channels, FPN 32 channels, P3-P7, this head's stock
#: losses and assigners) trained on the CPU with AdamW (lr 1e-3, batch 4) on synthetic
#: 256 x 256 images of filled rotated rectangles with SODA-A's size law at the official 1.5x
#: resize (side log-normal around 21 px, sigma 0.5, aspect 1-3.5, any angle), 4 fresh batches
#: (about 10^4 coordinates) per measurement:
#:
#: ======  ======  =====  =====  =====  ======  =========  =========
#: step    median  p90    p95    p99    p99.9   share > 4  share > 6
#: ======  ======  =====  =====  =====  ======  =========  =========
#: 100     0.79    2.16   2.67   3.68   5.09    0.6 %      0.03 %
#: 200     0.95    2.61   3.26   4.45   5.87    1.9 %      0.06 %
#: 300     0.81    2.39   3.13   4.63   6.49    1.9 %      0.20 %
#: 400     0.79    2.52   3.20   4.41   5.93    1.9 %      0.08 %
#: ======  ======  =====  =====  =====  ======  =========  =========
#:
#: (at step 0 the init point sets are degenerate, every convex IoU is 0 and the positives are
#: the assigner's fallback matches, so the numbers say nothing). Once the init stage has
#: learnt a little the distribution is stable: alpha = 4 would clip about 2 % of the targets
#: (p99 4.4-4.6 cells from step 200 on), alpha = 6 at most 0.2 %. The wider range costs little resolution
#: where most targets lie: with beta = 1 the grid's positive points in the 0.25-3 cell band
#: are 0.26, 0.48, 0.84, 1.42, 2.40 for alpha 4 and 0.29, 0.62, 1.33, 2.83 for alpha 6; what
#: changes is mostly the spacing near 0 (finer) and the outermost interval (2.83 to 6).
#: beta = 1.0 is Table 7's best beta; n = 16 gives 17 points, as the kit's point heads. The
#: measurement: ``python benchmarks/reppoints_refine_offsets.py 400`` (a 400-step CPU training,
#: about 30 min; its output is ``benchmarks/results/reppoints_refine_offsets.log``).
UGS_REPPOINTS_DEFAULTS = dict(alpha=6.0, beta=1.0, n=16)


def gt_as_qbox_tensors(instances: Optional[InstanceData]) -> Optional[InstanceData]:
    """A shallow copy of ``instances`` whose ``bboxes`` are a plain ``(N, 8)`` qbox tensor
    (from ``QuadriBoxes``, ``RotatedBoxes`` or an ``(N, 5)`` / ``(N, 8)`` tensor)."""
    if instances is None or "bboxes" not in instances:
        return instances
    from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes

    boxes = instances.bboxes
    if isinstance(boxes, QuadriBoxes):
        boxes = boxes.tensor
    elif isinstance(boxes, RotatedBoxes):
        boxes = boxes.convert_to("qbox").tensor
    elif isinstance(boxes, Tensor) and boxes.dim() == 2 and boxes.shape[-1] == 5:
        boxes = RotatedBoxes(boxes).convert_to("qbox").tensor
    elif not (isinstance(boxes, Tensor) and boxes.dim() == 2 and boxes.shape[-1] == 8):
        raise ValueError(f"gt bboxes must be QuadriBoxes, RotatedBoxes or an (N, 8) / (N, 5) "
                         f"tensor, got {type(boxes).__name__} {tuple(getattr(boxes, 'shape', ()))}")
    out = instances.new()          # same metainfo and fields, the caller's object untouched
    out.bboxes = boxes
    return out


@MODELS.register_module()
class UGSOrientedRepPointsHead(UGSDenseHeadMixin, OrientedRepPointsHead):
    """Oriented RepPoints head with UGS on the refine stage (see the module docstring).

    Args:
        ugs: UGS options: alpha, beta, n (defaults :data:`UGS_REPPOINTS_DEFAULTS`; alpha in
            feature-map cells), lam, gamma, rho, refine_norm, ur_objective, loss_weight,
            refine_every (defaults :data:`ugs.openmmlab.dense_ugs.UGS_DENSE_DEFAULTS`).
            ``mapping`` is not accepted (the offsets are signed and go on the grid unmapped).
        Other arguments: as ``OrientedRepPointsHead``; ``use_grid_points`` must stay False
        (that mode regresses 4 box deltas, not point offsets).
    """

    def __init__(self, *args, ugs: Optional[dict] = None, **kwargs) -> None:
        cfg = resolve_delta_ugs_cfg(ugs, UGS_REPPOINTS_DEFAULTS)
        if kwargs.get("use_grid_points", False):
            raise ValueError("UGSOrientedRepPointsHead: use_grid_points=True regresses box "
                             "deltas, not point offsets; UGS here needs point offsets")
        self.ugs_num_bins = cfg["n"] + 1          # read by _init_layers inside super()
        super().__init__(*args, **kwargs)
        self.ugs_cfg = cfg
        self.ugs_grid = IntervalGrid(cfg["alpha"], cfg["beta"], cfg["n"])
        self._ugs_capture: Optional[dict] = None

    # ---- layers and forward ---------------------------------------------------------------
    def _init_layers(self) -> None:
        super()._init_layers()
        self.reppoints_pts_refine_out = nn.Conv2d(
            self.point_feat_channels, 2 * self.num_points * self.ugs_num_bins, 1, 1, 0)

    def decode_refine_offsets(self, logits: Tensor) -> Tensor:
        """``(B, 2 K (n + 1), H, W)`` logits -> ``(B, 2 K, H, W)`` expected refine offsets in
        feature-map cells (the stock ``y, x`` channel order)."""
        b, c, h, w = logits.shape
        bins = self.ugs_grid.num_bins
        per = logits.reshape(b, c // bins, bins, h, w).permute(0, 1, 3, 4, 2)
        return self.ugs_grid.decode(per)

    def _refine_dcn_input(self, pts_feat: Tensor, dcn_offset: Tensor) -> Tensor:
        """The refine branch up to ``reppoints_pts_refine_out``'s input."""
        return self.relu(self.reppoints_pts_refine_conv(pts_feat, dcn_offset))

    def forward_single(self, x: Tensor) -> Tuple[Tensor, ...]:
        """The stock forward of one level, except that the refine predictor gives logits whose
        expectation is the refine offset. Training: ``(cls_out, pts_init, pts_refine, x,
        refine_logits)``; test: ``(cls_out, pts_refine)``, as the stock head."""
        dcn_base = self.dcn_base_offset.type_as(x)
        if self.center_init:
            points_init = 0
        else:                           # the stock head's fixed square of point_base_scale
            points_init = dcn_base / dcn_base.max() * (self.point_base_scale / 2)
        cls_feat, pts_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            pts_feat = conv(pts_feat)
        pts_init = self.reppoints_pts_init_out(
            self.relu(self.reppoints_pts_init_conv(pts_feat))) + points_init
        # gradient_mul scales the gradient the DCN offsets send back to the init stage
        init_scaled = self.gradient_mul * pts_init + (1 - self.gradient_mul) * pts_init.detach()
        dcn_offset = init_scaled - dcn_base
        cls_out = self.reppoints_cls_out(
            self.relu(self.reppoints_cls_conv(cls_feat, dcn_offset)))
        refine_logits = self.reppoints_pts_refine_out(
            self._refine_dcn_input(pts_feat, dcn_offset)).float()
        pts_refine = self.decode_refine_offsets(refine_logits).type_as(pts_init) \
            + pts_init.detach()
        if self.training:
            return cls_out, pts_init, pts_refine, x, refine_logits
        return cls_out, pts_refine

    # ---- capture of the stock refine-stage targets -----------------------------------------
    def get_targets(self, *args, stage: str = "init", **kwargs):
        """The stock targets; the refine stage's per-image gt polygons are kept for Eq. 10."""
        res = super().get_targets(*args, stage=stage, **kwargs)
        if stage == "refine" and self._ugs_capture is not None:
            self._ugs_capture["bbox_gt"] = res[2]
        return res

    def dynamic_pointset_samples_selection(self, *args, **kwargs):
        """The stock APAA selection; its labels (the final refine positives) are kept."""
        res = super().dynamic_pointset_samples_selection(*args, **kwargs)
        if self._ugs_capture is not None:
            self._ugs_capture.setdefault("labels", []).append(res[0])
        return res

    # ---- losses ---------------------------------------------------------------------------
    def loss_by_feat(self, cls_scores: List[Tensor], pts_preds_init: List[Tensor],
                     pts_preds_refine: List[Tensor], base_feat: List[Tensor],
                     refine_logits: List[Tensor], batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """The stock losses on the decoded points plus Eq. 10 / 12 at the refine positives
        (module docstring); also ``ugs_um_raw`` and ``ugs_positives`` for the mixin."""
        gts = [gt_as_qbox_tensors(g) for g in batch_gt_instances]
        ignores = None if batch_gt_instances_ignore is None else \
            [gt_as_qbox_tensors(g) for g in batch_gt_instances_ignore]
        capture: dict = {}
        self._ugs_capture = capture
        try:
            losses = super().loss_by_feat(cls_scores, pts_preds_init, pts_preds_refine,
                                          base_feat, gts, batch_img_metas, ignores)
        finally:
            self._ugs_capture = None
        where, logits, targets = self._refine_positive_targets(
            capture["labels"], capture["bbox_gt"], pts_preds_init, refine_logits)
        avg_factor = 2 * self.num_points * max(targets.shape[0], 1)
        ce, um = grid_terms(self.ugs_grid, logits, targets, None, avg_factor)
        losses.update(self.ugs_loss_dict(ce, um))
        losses["ugs_positives"] = UGSPositives(
            where=where, data=dict(targets=targets, avg_factor=avg_factor,
                                   init={i: pts_preds_init[i].detach() for i in where}))
        return losses

    def _refine_positive_targets(self, labels: List[Tensor], bbox_gt: List[Tensor],
                                 pts_preds_init: List[Tensor], refine_logits: List[Tensor]):
        """The refine positives level by level: ``{level: (image, row, col)}``, their logits
        ``(P, 2 K, n + 1)`` and targets ``(P, 2 K)`` (refine offsets in cells, ``y, x``)."""
        bins, k2 = self.ugs_grid.num_bins, 2 * self.num_points
        sizes = [tuple(p.shape[-2:]) for p in refine_logits]
        counts = [h * w for h, w in sizes]
        starts = torch.tensor([0] + counts).cumsum(0).tolist()
        device = refine_logits[0].device
        priors = self.prior_generator.grid_priors(sizes, device=device)    # (H W, 2): x, y
        # per image: the final refine positives, indices into its levels concatenated (stock layout)
        pos = [((lab >= 0) & (lab < self.num_classes)).nonzero().reshape(-1) for lab in labels]
        where, logits, targets = {}, [], []
        for level, (h, w) in enumerate(sizes):
            img, loc, gt = [], [], []
            for i, (p, polys) in enumerate(zip(pos, bbox_gt)):
                p = p[(p >= starts[level]) & (p < starts[level + 1])]
                img.append(torch.full_like(p, i))
                loc.append(p - starts[level])
                gt.append(polys[p])
            img, loc, gt = torch.cat(img), torch.cat(loc), torch.cat(gt)
            if img.numel() == 0:
                continue
            row, col = loc // w, loc % w
            where[level] = (img, row, col)
            lg = refine_logits[level][img, :, row, col].reshape(-1, k2, bins)
            init = pts_preds_init[level].detach()[img, :, row, col].float()      # (P, 2K) y, x
            stride = float(self.point_strides[level])
            center = priors[level][loc, :2].float()                                # (P, 2) x, y
            offset = self.ugs_grid.decode(lg.detach()) + init                      # point - location
            pts_xy = center[:, None, :] + stride * offset.reshape(-1, self.num_points, 2).flip(-1)
            proj, _ = project_to_polygon_boundary(pts_xy, qbox_vertices(gt.float()))
            target = ((proj - center[:, None, :]) / stride).flip(-1).reshape(-1, k2) - init
            logits.append(lg)
            targets.append(target.detach())
        if not logits:          # no positive: empty terms that keep the graph
            empty = refine_logits[0].reshape(-1)[:0]
            return where, empty.reshape(0, k2, bins), empty.new_zeros(0, k2)
        return where, torch.cat(logits), torch.cat(targets)

    def ugs_perturbed_terms(self, levels: Dict[int, Tensor], positives: UGSPositives):
        """CE and UM (Eq. 10, 12) of the refine branch on the perturbed ``levels`` at the clean
        pass's positives, with its targets and normaliser; the deformable conv samples at the
        clean init points (detached), see the module docstring."""
        d = positives.data
        k2, bins = 2 * self.num_points, self.ugs_grid.num_bins
        out = []
        for level, feat in sorted(levels.items()):
            pts_feat = feat
            for conv in self.reg_convs:
                pts_feat = conv(pts_feat)
            dcn_offset = d["init"][level] - self.dcn_base_offset.type_as(pts_feat)
            hidden = self._refine_dcn_input(pts_feat, dcn_offset)
            img, row, col = positives.where[level]
            pred = self.reppoints_pts_refine_out
            lg = F.linear(hidden[img, :, row, col], pred.weight.flatten(1), pred.bias)
            out.append(lg.float().reshape(-1, k2, bins))
        return grid_terms(self.ugs_grid, torch.cat(out), d["targets"], None, d["avg_factor"])
