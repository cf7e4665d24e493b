"""Oriented RepPoints with UGS (``ugs.rotated.reppoints_head``) and its targets, the projection of
a point onto a polygon's boundary (``ugs.polygon_projection``).

The projection is checked against hand-worked cases and a dense sampling of the boundary; the
head is built at a small size and takes a training step on the CPU (mmcv's CUDA-only rotated
ops through ``ugs.rotated.cpu_ops``) with rotated ground truth (le90)."""
import math

import numpy as np
import pytest
import torch

from ugs.polygon_projection import project_to_polygon_boundary, qbox_vertices

SQUARE = torch.tensor([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]], dtype=torch.float64)
R2 = math.sqrt(2.0)
DIAMOND = torch.tensor([[R2, 0.0], [0.0, R2], [-R2, 0.0], [0.0, -R2]], dtype=torch.float64)


@pytest.mark.parametrize("poly, point, want, dist", [
    (SQUARE, (3.0, 1.0), (2.0, 1.0), 1.0),                         # outside, facing an edge
    (SQUARE, (0.5, 1.2), (0.0, 1.2), 0.5),                         # inside: the nearest edge
    (SQUARE, (1.0, 1.7), (1.0, 2.0), 0.3),
    (SQUARE, (3.0, 4.0), (2.0, 2.0), math.sqrt(5.0)),              # corner region: the vertex
    (SQUARE, (-1.0, -0.5), (0.0, 0.0), math.sqrt(1.25)),
    (SQUARE, (1.3, 0.0), (1.3, 0.0), 0.0),                         # on the boundary: unchanged
    (SQUARE, (2.0, 2.0), (2.0, 2.0), 0.0),
    # the square of side 2 turned by 45 degrees: edge x + y = sqrt 2 between (sqrt2, 0), (0, sqrt2)
    (DIAMOND, (2.0, 2.0), (R2 / 2, R2 / 2), 2 * R2 - 1),
    (DIAMOND, (3.0, 0.0), (R2, 0.0), 3 - R2),                      # beyond a vertex
    (DIAMOND, (0.1, 0.3), (0.1 + (R2 - 0.4) / 2, 0.3 + (R2 - 0.4) / 2), (R2 - 0.4) / R2),   # inside
])
def test_projection_hand_worked(poly, point, want, dist):
    proj, d = project_to_polygon_boundary(torch.tensor([[point]], dtype=torch.float64), poly[None])
    assert proj.shape == (1, 1, 2) and d.shape == (1, 1)
    np.testing.assert_allclose(proj[0, 0].numpy(), want, atol=1e-12)
    assert d.item() == pytest.approx(dist, abs=1e-12)


def test_projection_order_of_vertices_and_qbox_layout():
    """Clockwise or counter-clockwise, any starting vertex: the same boundary."""
    pts = torch.tensor([[[3.0, 1.0], [0.5, 1.2], [3.0, 4.0]]], dtype=torch.float64)
    ref, _ = project_to_polygon_boundary(pts, SQUARE[None])
    for poly in (SQUARE.flip(0), SQUARE.roll(1, 0), SQUARE.flip(0).roll(2, 0)):
        got, _ = project_to_polygon_boundary(pts, poly[None])
        torch.testing.assert_close(got, ref)
    torch.testing.assert_close(qbox_vertices(SQUARE.reshape(1, 8)), SQUARE[None])


def _rotated_rectangles(rng, n):
    cx, cy = rng.uniform(-10, 10, (2, n))
    w, h = rng.uniform(0.5, 12, (2, n))
    a = rng.uniform(-math.pi, math.pi, n)
    c, s = np.cos(a), np.sin(a)
    corners = []
    for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        corners.append(np.stack([cx + c * dx * w / 2 - s * dy * h / 2, cy + s * dx * w / 2 + c * dy * h / 2], -1))
    return np.stack(corners, 1)                                   # (n, 4, 2)


def test_projection_against_dense_boundary_sampling():
    rng = np.random.default_rng(0)
    n, k, m = 100, 9, 1001
    polys = _rotated_rectangles(rng, n)
    polys[1::2] = polys[1::2, ::-1]                               # half of them the other way round
    pts = polys.mean(1, keepdims=True) + rng.uniform(-12, 12, (n, k, 2))
    pts[:, 0] = polys[:, 0] + rng.uniform(-0.5, 0.5, (n, 2))      # some near a corner
    t = np.linspace(0, 1, m)
    dense = np.concatenate([polys[:, i, None] + t[None, :, None] * (polys[:, (i + 1) % 4, None] - polys[:, i, None])
                            for i in range(4)], 1)                # (n, 4 m, 2)
    dist = np.linalg.norm(pts[:, :, None] - dense[:, None], axis=-1)      # (n, k, 4 m)
    want_d = dist.min(-1)
    want_p = np.take_along_axis(dense[:, None], dist.argmin(-1)[..., None, None], 2)[:, :, 0]
    proj, d = project_to_polygon_boundary(torch.tensor(pts), torch.tensor(polys))
    step = np.linalg.norm(polys - np.roll(polys, -1, 1), axis=-1).max(1) / (m - 1)   # sampling step
    tol = step[:, None] / 2 + 1e-9
    assert (np.abs(d.numpy() - want_d) <= tol).all()
    # the projection is unique for these points (no ties): the sampled nearest point is next to it
    assert (np.linalg.norm(proj.numpy() - want_p, axis=-1) <= 2 * tol + 1e-6).mean() > 0.99
    # and it lies on the boundary: distance to the densely sampled boundary is at most half a step
    on = np.linalg.norm(proj.numpy()[:, :, None] - dense[:, None], axis=-1).min(-1)
    assert (on <= tol).all()


# ---- the head ------------------------------------------------------------------------------
mmrotate = pytest.importorskip("mmrotate")
import ugs.openmmlab.compat  # noqa: E402,F401  (mmrotate on Python >= 3.10)

STRIDES = [8, 16, 32, 64, 128]
SIZE = 128


def head_cfg(**options):
    from mmengine.config import ConfigDict

    norm = dict(type="GN", num_groups=16, requires_grad=True)
    return dict(
        type="UGSOrientedRepPointsHead", num_classes=9, in_channels=32, feat_channels=32,
        point_feat_channels=32, stacked_convs=1, num_points=9, gradient_mul=0.3,
        point_strides=STRIDES, point_base_scale=2, norm_cfg=norm,
        loss_cls=dict(type="mmdet.FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox_init=dict(type="ConvexGIoULoss", loss_weight=0.375),
        loss_bbox_refine=dict(type="ConvexGIoULoss", loss_weight=1.0),
        loss_spatial_init=dict(type="SpatialBorderLoss", loss_weight=0.05),
        loss_spatial_refine=dict(type="SpatialBorderLoss", loss_weight=0.1),
        init_qua_weight=0.2, top_ratio=0.4, ugs=options,
        train_cfg=ConfigDict(
            init=dict(assigner=dict(type="ConvexAssigner", scale=4, pos_num=1), allowed_border=-1,
                      pos_weight=-1, debug=False),
            refine=dict(assigner=dict(type="MaxConvexIoUAssigner", pos_iou_thr=0.1, neg_iou_thr=0.1,
                                      min_pos_iou=0, ignore_iof_thr=-1),
                        allowed_border=-1, pos_weight=-1, debug=False)),
        test_cfg=ConfigDict(nms_pre=2000, min_bbox_size=0, score_thr=0.05,
                            nms=dict(type="nms_rotated", iou_threshold=0.4), max_per_img=2000))


def build(**options):
    import logging

    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    from mmrotate.registry import MODELS
    from mmrotate.utils import register_all_modules

    import ugs.rotated.reppoints_head  # noqa: F401  (registers the head)
    from ugs.rotated.cpu_ops import install

    install()
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmrotate"):      # only while building
        head = MODELS.build(head_cfg(**options))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        head.init_weights()
    finally:
        logger.setLevel(level)
    return head.train()


# two images; le90 rotated boxes (cx, cy, w, h, angle) of SODA-A-like sizes
GT = [[[40.0, 50.0, 30.0, 12.0, 0.4], [90.0, 80.0, 16.0, 10.0, -0.7], [30.0, 100.0, 20.0, 20.0, 0.0]],
      [[64.0, 64.0, 40.0, 14.0, 1.2], [100.0, 30.0, 12.0, 8.0, 0.2]]]


def batch(gts=GT, seed=0):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmrotate.structures.bbox import RotatedBoxes

    g = torch.Generator().manual_seed(seed)
    x = [torch.randn(len(gts), 32, SIZE // s, SIZE // s, generator=g).requires_grad_(True) for s in STRIDES]
    samples = []
    for i, boxes in enumerate(gts):
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE),
                                             batch_input_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                                             scale_factor=(1.0, 1.0)))
        inst = InstanceData()
        inst.bboxes = RotatedBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5))
        inst.labels = torch.arange(len(boxes), dtype=torch.long) + i
        sample.gt_instances = inst
        samples.append(sample)
    return x, samples


STOCK_KEYS = {"loss_cls", "loss_pts_init", "loss_pts_refine", "loss_spatial_init", "loss_spatial_refine"}


def total(losses):
    return sum(v.sum() if torch.is_tensor(v) else sum(t.sum() for t in v) for v in losses.values())


def finite(losses):
    return all(bool(torch.isfinite(v).all()) if torch.is_tensor(v) else all(bool(torch.isfinite(t).all()) for t in v)
               for v in losses.values())


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    return build()


def test_training_step_losses_backward_and_refine_logits_gradient(head):
    head.zero_grad()
    x, samples = batch()
    losses = head.loss(x, samples)
    assert set(losses) == STOCK_KEYS | {"loss_ce", "loss_um", "loss_ur"}
    assert finite(losses)
    assert losses["loss_ce"].item() > 0 and losses["loss_um"].item() > 0 and losses["loss_ur"].item() > 0
    weight = head.reppoints_pts_refine_out.weight
    assert weight.shape[0] == 2 * 9 * 17                         # 2 K (n + 1) logits
    g_ur, = torch.autograd.grad(losses["loss_ur"], weight, retain_graph=True)
    assert torch.isfinite(g_ur).all() and g_ur.abs().sum() > 0
    total(losses).backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
    assert all(f.grad is not None and torch.isfinite(f.grad).all() for f in x)


def test_refine_logits_get_gradient_from_ce_and_from_the_stock_giou(head):
    """The logits map itself: Eq. 10 and the stock ConvexGIoU (through the expectation) both
    reach it."""
    x, samples = batch()
    outs = head(x)
    logits = outs[4]
    gts = [s.gt_instances for s in samples]
    metas = [s.metainfo for s in samples]
    losses = head.loss_by_feat(*outs, gts, metas)
    for key in ("loss_ce", "loss_pts_refine"):
        grads = torch.autograd.grad(losses[key], logits, retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), key


def test_targets_put_every_point_on_its_ground_truth_boundary(head):
    """Decoding a positive's targets as refine offsets puts each of its nine points on the
    boundary of a ground-truth polygon of its image (checked by dense sampling of the polygons,
    not by the projection helper)."""
    from mmrotate.structures.bbox import RotatedBoxes

    x, samples = batch()
    outs = head(x)
    losses = head.loss_by_feat(*outs, [s.gt_instances for s in samples], [s.metainfo for s in samples])
    pos = losses["ugs_positives"]
    targets = pos.data["targets"]
    assert targets.shape[1] == 18 and targets.shape[0] > 0
    t = np.linspace(0, 1, 2001)
    start = 0
    for level in pos.levels:
        img, row, col = pos.where[level]
        stride = STRIDES[level]
        init = pos.data["init"][level][img, :, row, col]                  # (P, 18), y x per point
        off = (targets[start:start + len(img)] + init).reshape(-1, 9, 2)
        pts = torch.stack([col[:, None] * stride + stride * off[..., 1],
                           row[:, None] * stride + stride * off[..., 0]], -1).numpy()
        start += len(img)
        for p, i in zip(pts, img.tolist()):
            q = RotatedBoxes(samples[i].gt_instances.bboxes.tensor).convert_to("qbox").tensor.numpy().reshape(-1, 4, 2)
            dense = np.concatenate([q[:, j, None] + t[None, :, None] * (q[:, (j + 1) % 4, None] - q[:, j, None])
                                    for j in range(4)], 1)                # (G, 4 m, 2)
            d = np.linalg.norm(p[:, None, None] - dense[None], axis=-1).min(-1).min(-1)   # (9,)
            assert (d < 0.03).all(), d
    assert start == targets.shape[0]


def test_no_refinement_without_gamma_and_the_parametrisation_control():
    torch.manual_seed(0)
    x, samples = batch()
    losses = build(gamma=0.0).loss(x, samples)
    assert set(losses) == STOCK_KEYS | {"loss_ce", "loss_um"} and finite(losses)
    control = build(loss_weight=0.0, gamma=0.0).loss(x, samples)
    assert set(control) == STOCK_KEYS | {"loss_ce", "loss_um"}
    assert control["loss_ce"].item() == 0 and control["loss_um"].item() == 0


def test_refinement_with_rho_0_repeats_the_clean_terms():
    """With rho = 0 the perturbed pass sees the clean levels: its CE + lambda UM (computed at
    the positives only, with the clean init points as DCN offsets) equals the clean pass's."""
    torch.manual_seed(0)
    x, samples = batch()
    h = build(rho=0.0, gamma=1.0, lam=0.5)
    losses = h.loss(x, samples)
    assert losses["loss_ur"].item() == pytest.approx((losses["loss_ce"] + losses["loss_um"]).item(), rel=1e-4)


def test_losses_finite_without_ground_truth(head):
    head.zero_grad()
    x, samples = batch(gts=[[], []])
    losses = head.loss(x, samples)
    assert {"loss_ce", "loss_um"} <= set(losses) and finite(losses)
    total(losses).backward()
    assert torch.isfinite(head.reppoints_pts_refine_out.weight.grad).all()


def test_one_image_without_ground_truth_in_the_batch(head):
    x, samples = batch(gts=[GT[0], []])
    losses = head.loss(x, samples)
    assert finite(losses) and losses["loss_ce"].item() > 0


def test_decode_of_a_two_hot_is_its_value(head):
    """Logits whose softmax is the two-hot of v on the grid (built here from the grid's points by
    linear interpolation) decode to v, channel by channel (2 K channels, stock y, x order)."""
    grid = head.ugs_grid.values.double().numpy()
    bins = len(grid)
    assert bins == 17 and grid[0] == -head.ugs_cfg["alpha"] and grid[-1] == head.ugs_cfg["alpha"]
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.uniform(grid[0], grid[-1], 14), [grid[0], grid[-1], grid[5], 0.0]])   # 18 channels
    p = np.zeros((18, bins))
    for c, val in enumerate(v):
        r = min(max(np.searchsorted(grid, val, side="right"), 1), bins - 1)
        w = (val - grid[r - 1]) / (grid[r] - grid[r - 1])
        p[c, r - 1], p[c, r] = 1 - w, w
    with np.errstate(divide="ignore"):
        logits = torch.tensor(np.log(p), dtype=torch.float32).reshape(1, 18 * bins, 1, 1)
    got = head.decode_refine_offsets(logits.expand(2, -1, 3, 2))
    assert got.shape == (2, 18, 3, 2)
    np.testing.assert_allclose(got[1, :, 2, 1].numpy(), v, atol=1e-5)


def test_forward_decodes_the_refine_points_in_both_modes(head):
    x, _ = batch()
    with torch.no_grad():
        cls, init, refine, _, logits = [o[0] for o in head(x)]
        head.eval()
        try:
            cls_eval, refine_eval = [o[0] for o in head(x)]
        finally:
            head.train()
    assert logits.shape[1] == 18 * 17 and refine.shape[1] == 18
    torch.testing.assert_close(refine, head.decode_refine_offsets(logits) + init)
    torch.testing.assert_close(refine_eval, refine)
    torch.testing.assert_close(cls_eval, cls)


def test_predict_returns_rotated_boxes(head):
    from mmengine.config import ConfigDict
    from mmrotate.structures.bbox import RotatedBoxes

    x, samples = batch()
    head.eval()
    try:
        with torch.no_grad():
            outs = head(x)
            cfg = ConfigDict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                             nms=dict(type="nms_rotated", iou_threshold=0.4), max_per_img=50)
            results = head.predict_by_feat(*outs, batch_img_metas=[s.metainfo for s in samples], cfg=cfg)
    finally:
        head.train()
    assert len(results) == 2
    for r in results:
        assert isinstance(r.bboxes, RotatedBoxes) and r.bboxes.tensor.shape[1] == 5
        assert 0 < len(r.bboxes) <= 50 and torch.isfinite(r.bboxes.tensor).all()
        assert len(r.scores) == len(r.labels) == len(r.bboxes)


def test_options_are_checked():
    with pytest.raises(ValueError, match="mapping"):
        build(mapping="log")
    with pytest.raises(ValueError, match="unknown"):
        build(alhpa=3.0)
    from mmengine.registry import DefaultScope
    from mmrotate.registry import MODELS

    cfg = head_cfg()
    cfg["use_grid_points"] = True
    with DefaultScope.overwrite_default_scope("mmrotate"), pytest.raises(ValueError, match="use_grid_points"):
        MODELS.build(cfg)

