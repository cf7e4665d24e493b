"""Cascade R-CNN w/ UGS (``UGSCascadeRoIHead``): every stage's encode / decode round trip on
its own target stds, every stage's refinement loss recomputed by hand (Eq. 14-15 through
RoIAlign) with its gradient to the FPN levels, the boxes passed between stages recomputed from
the expectation over the grid, and a tiny training run through the training tool."""
import copy
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("mmdet")
from mmdet.models.utils import unpack_gt_instances  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import ugs.openmmlab.two_stage  # noqa: E402,F401
from ugs.localization import localization_ce  # noqa: E402
from ugs.refinement import refine_perturbation  # noqa: E402
from ugs.uncertainty import uncertainty_loss  # noqa: E402

# the plain-Python grid / two-hot helpers and the hand-built inputs of the Faster R-CNN tests
from test_openmmlab_two_stage import (C, NUM_CLASSES, STOCK, hand_grid,  # noqa: E402
                                      hand_logits_tensor, levels, meta, samples)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASCADE = Config.fromfile(os.path.join(os.path.dirname(STOCK), "cascade-rcnn_r50_fpn.py")).model
UGS_CFG = os.path.join(ROOT, "configs", "cascade_rcnn", "cascade_rcnn_r50_fpn_ugs_1x_visdrone.py")
BASE_CFG = os.path.join(ROOT, "configs", "cascade_rcnn", "cascade_rcnn_r50_fpn_1x_visdrone.py")
STDS = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
GRID = hand_grid(5.0, 1.0, 5)              # Table 7's R-CNN grid, every stage
BINS = 6


def build_cascade(agnostic=True, ugs_type=True, seed=0, **ugs):
    cfg = copy.deepcopy(CASCADE.roi_head)
    cfg.bbox_roi_extractor.out_channels = C
    for h in cfg.bbox_head:
        h.update(in_channels=C, fc_out_channels=16, num_classes=NUM_CLASSES,
                 reg_class_agnostic=agnostic)
        if ugs_type:
            h.update(type="UGSShared2FCBBoxHead", ugs={**dict(lam=0.5, gamma=0.5, rho=0.5), **ugs})
            h.pop("loss_bbox")
    if ugs_type:
        cfg.type = "UGSCascadeRoIHead"
    cfg.update(train_cfg=CASCADE.train_cfg.rcnn, test_cfg=CASCADE.test_cfg.rcnn)
    torch.manual_seed(seed)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def proposals(data, seed=0):
    """Jittered ground truths and random boxes, per image (enough positives in all stages)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for d in data:
        gt = d.gt_instances.bboxes
        jitter = gt.repeat(6, 1) + torch.randn(6 * len(gt), 4, generator=g) * 2
        xy = torch.rand(20, 2, generator=g) * 40
        out.append(InstanceData(bboxes=torch.cat([jitter, torch.cat([xy, xy + 20], 1)])))
    return out


# ---- by hand: expectation over the grid, Eq. 1 inverted, clamped to the image ---------------
def hand_expectation(logits):
    """``(..., n + 1)`` logits -> sum_j softmax_j p_j with the hand grid."""
    values = torch.tensor(GRID, dtype=logits.dtype)
    return (torch.softmax(logits, -1) * values).sum(-1)


def hand_decode(priors, deltas, stds, size):
    """``x = x_a + dx s_x w_a``, ``w = w_a exp(dw s_w)`` (and y, h); corners clamped to the image."""
    w_a, h_a = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    cx, cy = priors[:, 0] + 0.5 * w_a, priors[:, 1] + 0.5 * h_a
    cx = cx + deltas[:, 0] * stds[0] * w_a
    cy = cy + deltas[:, 1] * stds[1] * h_a
    w = w_a * torch.exp(deltas[:, 2] * stds[2])
    h = h_a * torch.exp(deltas[:, 3] * stds[3])
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    return boxes.clamp(0, size)


def stage_logits(bbox_pred, labels, agnostic):
    """``(N, num_reg 4 bins)`` -> the ``(N, 4, bins)`` distributions of ``labels``' class."""
    lg = bbox_pred.reshape(len(bbox_pred), -1, 4, BINS)
    idx = torch.zeros_like(labels) if agnostic else labels
    return lg[torch.arange(len(lg)), idx]


# ---- encode / decode round trip, per stage ----------------------------------------------------
@pytest.mark.parametrize("agnostic", [True, False], ids=["agnostic", "class-specific"])
def test_each_stage_encodes_on_its_stds_and_decodes_the_expectation_back(agnostic):
    head = build_cascade(agnostic=agnostic)
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(8, 2, generator=g) * 60
    wh = 16 + torch.rand(8, 2, generator=g) * 40
    priors = torch.cat([xy, xy + wh], 1)
    # ground truths a little off the priors: centre shifts up to 0.12 of the size, log-sizes up
    # to 0.25, so even the last stage's normalised deltas (0.12 / 0.033, 0.25 / 0.067) stay
    # inside the grid's [-5, 5]
    shift = (torch.rand(8, 2, generator=g) - 0.5) * 0.24 * wh
    scale = torch.exp((torch.rand(8, 2, generator=g) - 0.5) * 0.5)
    ctr, size = xy + wh / 2 + shift, wh * scale
    gts = torch.cat([ctr - size / 2, ctr + size / 2], 1)
    labels = torch.arange(8) % NUM_CLASSES
    m = meta(256)
    for s, bh in enumerate(head.bbox_head):
        assert list(bh.bbox_coder.stds) == STDS[s] and bh.ugs_grid.n == 5
        torch.testing.assert_close(bh.ugs_grid.values, torch.tensor(GRID), rtol=0, atol=1e-6)
        t = bh.bbox_coder.encode(priors, gts)
        eq1 = torch.stack([shift[:, 0] / wh[:, 0], shift[:, 1] / wh[:, 1],
                           torch.log(scale[:, 0]), torch.log(scale[:, 1])], 1)
        torch.testing.assert_close(t, eq1 / torch.tensor(STDS[s]), rtol=0, atol=1e-4)
        assert t.abs().max() < 5.0
        # two-hot of each target on the hand grid (for every class slot when class-specific)
        num_reg = 1 if agnostic else NUM_CLASSES
        logits = hand_logits_tensor(t.repeat(1, num_reg), GRID).reshape(8, -1)
        torch.testing.assert_close(bh.logits_to_deltas(logits), t.repeat(1, num_reg),
                                   rtol=0, atol=1e-5)
        back = bh.regress_by_class(priors, labels, logits, m)
        torch.testing.assert_close(back, gts, rtol=0, atol=1e-3)


# ---- the losses of every stage, refinement included ---------------------------------------------
def spy_stages(head):
    """Record, per stage, the sampling results and the bbox results of the loss pass."""
    seen = {}
    original = head.bbox_loss

    def bbox_loss(stage, x, sampling_results):
        out = original(stage, x, sampling_results)
        seen[stage] = dict(sampling_results=sampling_results, results=out)
        return out

    head.bbox_loss = bbox_loss
    return seen


@pytest.mark.parametrize("agnostic", [True, False], ids=["agnostic", "class-specific"])
def test_every_stage_has_its_refinement_loss_through_roialign(agnostic):
    head = build_cascade(agnostic=agnostic).train()
    seen = spy_stages(head)
    feats, data = levels(seed=3), samples(seed=3, num_gts=3, lo=14, hi=36)
    torch.manual_seed(0)
    losses = head.loss(feats, proposals(data), data)
    lv = feats[:4]
    for s, weight in enumerate((1.0, 0.5, 0.25)):
        assert {f"s{s}.loss_cls", f"s{s}.loss_ce", f"s{s}.loss_um", f"s{s}.loss_ur"} <= set(losses)
        ur = losses[f"s{s}.loss_ur"]
        assert torch.isfinite(ur) and ur.item() > 0
        # by hand: clean L_UM of the stage's positives -> eps (Eq. 15) -> RoIAlign + FCs +
        # fc_reg on P_i + eps_i -> gamma (CE + lambda UM), times the stage's loss weight
        bh, ext = head.bbox_head[s], head.bbox_roi_extractor[s]
        res = seen[s]["sampling_results"]
        rois = seen[s]["results"]["rois"]
        labels, _, t, w = bh.get_targets(res, head.train_cfg[s])
        pos = (labels < NUM_CLASSES).nonzero().squeeze(1)
        assert len(pos) >= 3

        def terms(bbox_pred):
            lg = stage_logits(bbox_pred[pos], labels[pos], agnostic)
            ce = localization_ce(lg, t[pos], bh.ugs_grid, weight=w[pos], avg_factor=len(labels))
            return ce, uncertainty_loss(lg, weight=w[pos], avg_factor=len(labels))

        def reg(feats_):
            x = ext(feats_, rois).flatten(1)
            for fc in bh.shared_fcs:
                x = F.relu(F.linear(x, fc.weight, fc.bias))
            return F.linear(x, bh.fc_reg.weight, bh.fc_reg.bias)

        ce, um = terms(reg(lv))
        torch.testing.assert_close(losses[f"s{s}.loss_ce"], weight * ce)
        torch.testing.assert_close(losses[f"s{s}.loss_um"], weight * 0.5 * um)
        eps = refine_perturbation(um, lv, 0.5, norm="sample")
        ce_p, um_p = terms(reg([f + e for f, e in zip(lv, eps)]))
        torch.testing.assert_close(ur, weight * 0.5 * (ce_p + 0.5 * um_p))
        # the stage's loss_ur reaches the FPN levels through RoIAlign (P6 is not read)
        grads = torch.autograd.grad(ur, feats, retain_graph=True, allow_unused=True)
        assert grads[4] is None
        assert sum(g.abs().sum().item() for g in grads[:4]) > 0
        lvl = ext.map_roi_levels(rois[pos], 4)
        for level, img in {(int(a), int(b)) for a, b in zip(lvl, rois[pos, 0])}:
            assert grads[level][img].abs().sum() > 0
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    assert all(head.bbox_head[s].fc_reg.weight.grad.abs().sum() > 0 for s in range(3))


def test_gamma_zero_and_stock_heads_train_without_the_refinement_step():
    feats, data = levels(seed=3), samples(seed=3)
    torch.manual_seed(0)
    losses = build_cascade(gamma=0.0).train().loss(feats, proposals(data), data)
    assert not any("loss_ur" in k for k in losses) and "s2.loss_ce" in losses
    torch.manual_seed(0)
    stock = build_cascade(ugs_type=False).train().loss(levels(seed=3), proposals(data), data)
    assert "s2.loss_bbox" in stock and not any("loss_ce" in k for k in stock)


# ---- boxes between stages: the expectation over the grid, decoded ------------------------------
@pytest.mark.parametrize("agnostic", [True, False], ids=["agnostic", "class-specific"])
def test_boxes_passed_between_stages_are_the_decoded_expectations(agnostic):
    head = build_cascade(agnostic=agnostic).train()
    seen = spy_stages(head)
    priors_seen = {}
    for s in (1, 2):
        assigner = head.bbox_assigner[s]

        def assign(pred, gt, ignore=None, _orig=assigner.assign, _s=s, **kw):
            priors_seen.setdefault(_s, []).append(pred.priors.clone())
            return _orig(pred, gt, ignore, **kw)

        assigner.assign = assign
    feats, data = levels(seed=4), samples(seed=4, num_gts=3, lo=14, hi=36)
    size = data[0].metainfo["img_shape"][0]
    torch.manual_seed(0)
    head.loss(feats, proposals(data, seed=4), data)
    # training (refine_bboxes): stage s + 1 is assigned the boxes decoded from stage s's
    # expected deltas on its sampled RoIs, the ground truths the sampler added left out
    for s in (0, 1):
        res, out = seen[s]["sampling_results"], seen[s]["results"]
        rois, labels = out["rois"], out["bbox_targets"][0]
        # refine_bboxes regresses negatives with the predicted class, positives with their own
        pred = out["cls_score"][:, :-1].argmax(1)
        cls = torch.where(labels == NUM_CLASSES, pred, labels)
        deltas = hand_expectation(stage_logits(out["bbox_pred"].detach(), cls, agnostic))
        boxes = hand_decode(rois[:, 1:], deltas, STDS[s], size)
        for i, r in enumerate(res):
            keep = torch.ones(len(r.priors), dtype=torch.bool)
            keep[:len(r.pos_is_gt)] = ~r.pos_is_gt.bool()
            assert r.pos_is_gt.sum() > 0                  # ground truths were added and dropped
            expected = boxes[rois[:, 0] == i][keep]
            torch.testing.assert_close(priors_seen[s + 1][i], expected, rtol=0, atol=1e-3)
    # inference (_refine_roi): the RoIs each stage reads
    rois_seen = []
    original = head._bbox_forward

    def bbox_forward(stage, x, rois):
        out = original(stage, x, rois)
        rois_seen.append((rois.clone(), out))
        return out

    head._bbox_forward = bbox_forward
    head.eval()
    props = proposals(data, seed=5)
    with torch.no_grad():
        head.predict(feats, props, data)
    assert len(rois_seen) == 3
    for s in (0, 1):
        rois, out = rois_seen[s]
        pred = out["cls_score"][:, :-1].argmax(1)
        deltas = hand_expectation(stage_logits(out["bbox_pred"], pred, agnostic))
        expected = hand_decode(rois[:, 1:], deltas, STDS[s], size)
        torch.testing.assert_close(rois_seen[s + 1][0][:, 1:], expected, rtol=0, atol=1e-3)
        torch.testing.assert_close(rois_seen[s + 1][0][:, 0], rois[:, 0])


# ---- configs and a tiny training run through the training tool -----------------------------------
def test_configs_are_stock_cascade_rcnn_with_and_without_ugs():
    base, ugs = Config.fromfile(BASE_CFG), Config.fromfile(UGS_CFG)
    assert base.model.roi_head.type == "CascadeRoIHead" and base.model.rpn_head.type == "RPNHead"
    assert ugs.model.roi_head.type == "UGSCascadeRoIHead" and ugs.model.rpn_head.type == "UGSRPNHead"
    assert ugs.model.rpn_head.ugs == dict(alpha=2.0, beta=1.0, n=10, lam=0.5, gamma=0.5, rho=0.5)
    for c, kind in ((base, "Shared2FCBBoxHead"), (ugs, "UGSShared2FCBBoxHead")):
        assert c.model.roi_head.stage_loss_weights == [1, 0.5, 0.25]
        assert [h.type for h in c.model.roi_head.bbox_head] == [kind] * 3
        assert [h.bbox_coder.target_stds for h in c.model.roi_head.bbox_head] == list(STDS)
        assert all(h.reg_class_agnostic and h.num_classes == 10 for h in c.model.roi_head.bbox_head)
        assert [r.assigner.pos_iou_thr for r in c.model.train_cfg.rcnn] == [0.5, 0.6, 0.7]
        assert c.model.test_cfg.rcnn.max_per_img == 500
        assert c.optim_wrapper.type == "NonFiniteGuardOptimWrapper"
        assert c.optim_wrapper.optimizer.lr == 0.02 and c.optim_wrapper.optimizer.weight_decay == 1e-4
        assert c.train_dataloader.dataset.metainfo.classes[0] == "pedestrian"
    for h in ugs.model.roi_head.bbox_head:
        assert "loss_bbox" not in h
        assert h.ugs == dict(alpha=5.0, beta=1.0, n=5, lam=0.5, gamma=0.5, rho=0.5)
    for h in base.model.roi_head.bbox_head:
        assert h.loss_bbox.type == "SmoothL1Loss"


def test_quick_profile_of_cascade_shrinks_every_stage():
    from ugs.openmmlab.train import build_config

    cfg = build_config(UGS_CFG, profile="quick", work_dir="/tmp/w", epochs=1)
    assert all(h.in_channels == 64 and h.fc_out_channels == 256 and h.type == "UGSShared2FCBBoxHead"
               for h in cfg.model.roi_head.bbox_head)
    assert cfg.model.roi_head.bbox_roi_extractor.out_channels == 64
    assert cfg.model.rpn_head.feat_channels == 64


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from ugs.data import make_synthetic_set

    root = tmp_path_factory.mktemp("tiny_synth_cascade")
    make_synthetic_set(root, num_train=8, num_val=4, image_size=96, seed=3)
    return root


def test_tiny_cascade_rcnn_with_ugs_trains_through_the_tool(tiny_set, tmp_path):
    # quick profile, 8 images of 96 px, 4 per step, 1 epoch: 2 optimizer steps, then validation
    cmd = [sys.executable, "-m", "ugs.openmmlab.train", UGS_CFG, "--profile", "quick",
           "--image-size", "96", "--data-root", str(tiny_set), "--work-dir", str(tmp_path),
           "--epochs", "1", "--max-per-img", "100", "--cfg-options",
           "default_hooks.logger.interval=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["AP"] <= 1.0
    logs = list(tmp_path.glob("*/vis_data/scalars.json"))
    steps = [json.loads(line) for line in logs[0].read_text().splitlines() if '"loss"' in line]
    assert len(steps) == 2
    for e in steps:
        for k in ("rpn_loss_ur", "s0.loss_ur", "s1.loss_ur", "s2.loss_ur", "s2.loss_ce"):
            assert math.isfinite(e[k]) and e[k] > 0, (k, e)
