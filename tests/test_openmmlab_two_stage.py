"""UGS for two-stage detectors (RPN, R-CNN bbox head, RoI head): round trips against mmdet's
own heads, losses and the refinement step recomputed by hand, empty inputs, a tiny Faster
R-CNN end to end."""
import copy
import math
import os

import pytest
import torch
import torch.nn.functional as F

mmdet = pytest.importorskip("mmdet")
from mmdet.models.utils import unpack_gt_instances  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import bbox2roi  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import ugs.openmmlab.runtime  # noqa: E402,F401
from reference_ugs import ref_grid, ref_weighted_terms  # noqa: E402
import ugs.openmmlab.two_stage  # noqa: E402,F401
from ugs.openmmlab.train import shrink_two_stage  # noqa: E402
from ugs.refinement import refine_perturbation  # noqa: E402

register_all_modules()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOCK = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", "_base_", "models",
                     "faster-rcnn_r50_fpn.py")
UGS_CFG = os.path.join(ROOT, "configs", "faster_rcnn", "faster_rcnn_r50_fpn_ugs_1x_visdrone.py")
BASE_CFG = os.path.join(ROOT, "configs", "faster_rcnn", "faster_rcnn_r50_fpn_1x_visdrone.py")
STOCK_MODEL = Config.fromfile(STOCK).model
C = 8                     # channels of the hand-built FPN levels
NUM_CLASSES = 3


# ---- independent helpers (plain Python, no ugs code) ----------------------------------------
def hand_grid(alpha, beta, n):
    """Eq. 9 written out: y_i = -alpha + 2 alpha i / n, p_i = sign(y_i) alpha (e^{beta|y_i|} - 1)
    / (e^{alpha beta} - 1)."""
    out = []
    for i in range(n + 1):
        y = -alpha + 2 * alpha * i / n
        out.append(math.copysign(alpha * math.expm1(beta * abs(y)) / math.expm1(alpha * beta), y))
    return out


def hand_logits(t, values):
    """Log of the interpolating two-hot of t on ``values`` (-30 for empty bins, e^-30 ~ 1e-13)."""
    for i in range(len(values) - 1):
        if values[i] <= t <= values[i + 1]:
            w_r = (t - values[i]) / (values[i + 1] - values[i])
            out = [-30.0] * len(values)
            out[i] = math.log(1 - w_r) if w_r < 1 else -30.0
            out[i + 1] = math.log(w_r) if w_r > 0 else -30.0
            return out
    raise ValueError(t)


def hand_logits_tensor(deltas, values):
    """``(...)`` deltas -> ``(..., n + 1)`` hand two-hot logits."""
    flat = [hand_logits(float(t), values) for t in deltas.reshape(-1)]
    return torch.tensor(flat, dtype=torch.float32).reshape(*deltas.shape, len(values))


def meta(size):
    return dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                pad_shape=(size, size), batch_input_shape=(size, size))


def samples(size=64, seed=0, num_gts=3, lo=16, hi=40):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        d = DetDataSample()
        d.set_metainfo(meta(size))
        wh = lo + torch.rand(num_gts, 2, generator=g) * (hi - lo)
        xy = torch.rand(num_gts, 2, generator=g) * (size - wh)
        d.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                      labels=torch.arange(num_gts) % NUM_CLASSES)
        out.append(d)
    return out


def levels(size=64, seed=0, strides=(4, 8, 16, 32, 64)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, C, size // s, size // s, generator=g).requires_grad_() for s in strides]


# ---- builders --------------------------------------------------------------------------------
def build_rpn(ugs_type=True, seed=0, **ugs):
    cfg = copy.deepcopy(STOCK_MODEL.rpn_head)
    cfg.update(in_channels=C, feat_channels=C, train_cfg=STOCK_MODEL.train_cfg.rpn,
               test_cfg=STOCK_MODEL.train_cfg.rpn_proposal)
    if ugs_type:
        cfg.update(type="UGSRPNHead", ugs=ugs)
        cfg.pop("loss_bbox")
    torch.manual_seed(seed)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def bbox_head_cfg(ugs_type=True, agnostic=False, **ugs):
    cfg = copy.deepcopy(STOCK_MODEL.roi_head.bbox_head)
    cfg.update(in_channels=C, fc_out_channels=16, num_classes=NUM_CLASSES,
               reg_class_agnostic=agnostic)
    if ugs_type:
        cfg.update(type="UGSShared2FCBBoxHead", ugs=ugs)
        cfg.pop("loss_bbox")
    return cfg


def build_bbox_head(ugs_type=True, agnostic=False, seed=0, **ugs):
    torch.manual_seed(seed)
    head = MODELS.build(bbox_head_cfg(ugs_type, agnostic, **ugs))
    head.init_weights()
    return head


def build_roi_head(seed=0, **ugs):
    cfg = copy.deepcopy(STOCK_MODEL.roi_head)
    cfg.type = "UGSStandardRoIHead"
    cfg.bbox_roi_extractor.out_channels = C
    cfg.bbox_head = bbox_head_cfg(**ugs)
    cfg.update(train_cfg=STOCK_MODEL.train_cfg.rcnn, test_cfg=STOCK_MODEL.test_cfg.rcnn)
    torch.manual_seed(seed)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


# ---- encode / decode round trips ---------------------------------------------------------------
def test_hand_grid_and_two_hot_decode_to_the_delta():
    # alpha 2, beta 1, n 10 (RPN): points at u = 0.4 and 0.8 are 2 (e^0.4 - 1) / (e^2 - 1) =
    # 0.153958 and 2 (e^0.8 - 1) / (e^2 - 1) = 0.383638; T = 0.3 lies between them with weights
    # 0.36415 / 0.63585; the expectation over the head's grid gives T back
    head = build_rpn()
    values = hand_grid(2.0, 1.0, 10)
    assert values[6] == pytest.approx(0.153958, abs=1e-6)
    assert values[7] == pytest.approx(0.383638, abs=1e-6)
    torch.testing.assert_close(head.ugs_grid.values, torch.tensor(values), rtol=0, atol=1e-6)
    lg = torch.tensor(hand_logits(0.3, values))
    assert torch.softmax(lg, 0)[7].item() == pytest.approx(0.63585, abs=1e-5)
    assert head.ugs_grid.decode(lg).item() == pytest.approx(0.3, abs=1e-6)


def test_rpn_proposals_equal_the_stock_rpns_for_the_same_deltas():
    ugs = build_rpn().eval()
    ref = build_rpn(ugs_type=False).eval()
    values = hand_grid(2.0, 1.0, 10)
    g = torch.Generator().manual_seed(1)
    cls, deltas, logits = [], [], []
    for s in (16, 8, 4, 2, 1):
        cls.append(torch.randn(1, 3, s, s, generator=g))
        d = (torch.rand(1, 12, s, s, generator=g) - 0.5) * 3.0          # within [-1.5, 1.5]
        deltas.append(d)
        lg = hand_logits_tensor(d, values)                               # (1, 12, s, s, 11)
        logits.append(lg.permute(0, 1, 4, 2, 3).reshape(1, 12 * 11, s, s))
    for back, d in zip(ugs.logits_to_delta_maps(logits), deltas):
        torch.testing.assert_close(back, d, rtol=0, atol=1e-5)
    metas = [meta(64)]
    with torch.no_grad():
        pa = ref.predict_by_feat(cls, deltas, batch_img_metas=metas)[0]
        pb = ugs.predict_by_feat(cls, logits, batch_img_metas=metas)[0]
    assert len(pa) > 10
    torch.testing.assert_close(pb.bboxes, pa.bboxes, rtol=0, atol=1e-3)
    torch.testing.assert_close(pb.scores, pa.scores)


@pytest.mark.parametrize("agnostic", [True, False], ids=["agnostic", "class-specific"])
def test_rcnn_boxes_equal_the_stock_heads_for_the_same_deltas(agnostic):
    ugs = build_bbox_head(agnostic=agnostic).eval()
    ref = build_bbox_head(ugs_type=False, agnostic=agnostic).eval()
    num_reg = 1 if agnostic else NUM_CLASSES
    assert ugs.fc_reg.out_features == num_reg * 4 * 6
    values = hand_grid(5.0, 1.0, 5)
    g = torch.Generator().manual_seed(2)
    xy = torch.rand(6, 2, generator=g) * 60
    roi = torch.cat([torch.zeros(6, 1), xy, xy + 8 + torch.rand(6, 2, generator=g) * 40], 1)
    cls = torch.randn(6, NUM_CLASSES + 1, generator=g)
    deltas = (torch.rand(6, num_reg * 4, generator=g) - 0.5) * 8.0        # within [-4, 4]
    logits = hand_logits_tensor(deltas, values).reshape(6, -1)
    torch.testing.assert_close(ugs.logits_to_deltas(logits), deltas, rtol=0, atol=1e-5)
    test_cfg = ConfigDict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5),
                          max_per_img=100)
    m = meta(128)
    for cfg in (None, test_cfg):
        a = ref._predict_by_feat_single(roi, cls, deltas, m, rcnn_test_cfg=cfg)
        b = ugs._predict_by_feat_single(roi, cls, logits, m, rcnn_test_cfg=cfg)
        torch.testing.assert_close(b.bboxes, a.bboxes, rtol=0, atol=1e-3)
        torch.testing.assert_close(b.scores, a.scores)
    # Cascade's path: regress_by_class with the predicted label
    label = cls[:, :-1].argmax(1)
    torch.testing.assert_close(ugs.regress_by_class(roi[:, 1:], label, logits, m),
                               ref.regress_by_class(roi[:, 1:], label, deltas, m),
                               rtol=0, atol=1e-3)


def test_rcnn_targets_are_eq1_deltas_over_the_coder_stds():
    # prior (10, 10, 30, 50): centre (20, 30), size 20 x 40; gt (12, 8, 34, 60): centre (23, 34),
    # size 22 x 52 -> (3/20 / 0.1, 4/40 / 0.1, ln(22/20) / 0.2, ln(52/40) / 0.2)
    head = build_bbox_head()
    prior, gt = torch.tensor([[10.0, 10, 30, 50]]), torch.tensor([[12.0, 8, 34, 60]])
    t = head.bbox_coder.encode(prior, gt)
    torch.testing.assert_close(t, torch.tensor([[1.5, 1.0, 0.476551, 1.311821]]), rtol=0, atol=1e-5)


# ---- losses on hand-built inputs ---------------------------------------------------------------
def rpn_logits_per_anchor(p, bins):
    """``(B, A 4 bins, H, W)`` -> ``(B, H W A, 4, bins)`` in mmdet's anchor order (h, w, a)."""
    b, _, h, w = p.shape
    return p.view(b, 3, 4, bins, h, w).permute(0, 4, 5, 1, 2, 3).reshape(b, h * w * 3, 4, bins)


def hand_rpn_terms(bbox_preds, targets, bins, grid, lam):
    _, _, bbox_targets, bbox_weights, avg_factor = targets
    lg = torch.cat([rpn_logits_per_anchor(p, bins) for p in bbox_preds], 1).reshape(-1, 4, bins)
    t = torch.cat(bbox_targets, 1).reshape(-1, 4)
    w = torch.cat(bbox_weights, 1).reshape(-1, 4)
    pos = w[:, 0] > 0
    # Eq. 10 / 12 from tests/reference_ugs.py (independent of the kit's core), float64
    ref = ref_grid(grid.alpha, grid.beta, grid.n)
    ce, um = ref_weighted_terms(lg[pos], t[pos], w[pos], ref, avg_factor)
    return ce.float(), (lam * um).float(), um.float()


def test_rpn_loss_is_ce_plus_lambda_um_on_eq1_deltas_normalised_like_l1():
    head = build_rpn(lam=0.5, gamma=0.0)
    ref = build_rpn(ugs_type=False)
    ref.load_state_dict({k: v for k, v in head.state_dict().items() if "rpn_reg" not in k},
                        strict=False)
    feats, data = levels(), samples()
    gts, ign, metas = unpack_gt_instances(data)
    outs = head(feats)
    torch.manual_seed(5)
    with head._ugs_step() as state:
        losses = head.loss_by_feat(*outs, gts, metas, ign)
        targets = state["targets"]
    avg_factor = targets[-1]
    assert avg_factor == 2 * 256                  # RandomSampler(num=256) per image
    ce, lum, um = hand_rpn_terms(outs[1], targets, 11, head.ugs_grid, 0.5)
    assert ce.item() > 0
    torch.testing.assert_close(losses["loss_ce"], ce)
    torch.testing.assert_close(losses["loss_um"], lum)
    torch.testing.assert_close(losses["ugs_um_raw"], um)
    torch.manual_seed(5)
    ref_losses = ref.loss_by_feat(*ref(feats), gts, metas, ign)    # same sample, same scores
    torch.testing.assert_close(sum(losses["loss_rpn_cls"]), sum(ref_losses["loss_rpn_cls"]))
    # the targets of the positives are Eq. 1 (stds 1) between prior and assigned gt
    res = head._raw_positive_infos["sampling_results"][0]
    p, gtb = res.pos_priors, res.pos_gt_bboxes
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gw, gh = gtb[:, 2] - gtb[:, 0], gtb[:, 3] - gtb[:, 1]
    eq1 = torch.stack([((gtb[:, 0] + gtb[:, 2]) - (p[:, 0] + p[:, 2])) / 2 / pw,
                       ((gtb[:, 1] + gtb[:, 3]) - (p[:, 1] + p[:, 3])) / 2 / ph,
                       torch.log(gw / pw), torch.log(gh / ph)], 1)
    flat_t = torch.cat(targets[2], 1)[0]
    torch.testing.assert_close(flat_t[res.pos_inds], eq1, rtol=0, atol=1e-5)


@pytest.mark.parametrize("agnostic", [True, False], ids=["agnostic", "class-specific"])
def test_rcnn_loss_is_ce_plus_lambda_um_over_the_sampled_rois(agnostic):
    head = build_bbox_head(agnostic=agnostic, lam=0.5)
    g = torch.Generator().manual_seed(3)
    n, bins = 5, 6
    num_reg = 1 if agnostic else NUM_CLASSES
    cls = torch.randn(n, NUM_CLASSES + 1, generator=g, requires_grad=True)
    logits = torch.randn(n, num_reg * 4 * bins, generator=g, requires_grad=True)
    labels = torch.tensor([0, 2, NUM_CLASSES, 1, NUM_CLASSES])       # 3 positives, 2 negatives
    targets = torch.randn(n, 4, generator=g) * 2
    weights = torch.zeros(n, 4)
    weights[[0, 1, 3]] = 1.0
    losses = head.loss(cls, logits, None, labels, torch.ones(n), targets, weights)
    # hand gather: the logits of each positive's own class (column (c * 4 + k) * bins + j)
    rows = []
    for i in (0, 1, 3):
        c = 0 if agnostic else int(labels[i])
        rows.append(torch.stack([logits[i, (c * 4 + k) * bins:(c * 4 + k + 1) * bins]
                                 for k in range(4)]))
    pos_logits = torch.stack(rows)
    grid = ref_grid(head.ugs_grid.alpha, head.ugs_grid.beta, head.ugs_grid.n)   # independent Eq. 9
    ce, um = ref_weighted_terms(pos_logits, targets[[0, 1, 3]], torch.ones(3, 4), grid, 5)
    torch.testing.assert_close(losses["loss_ce"], ce.float())
    torch.testing.assert_close(losses["loss_um"], 0.5 * um.float())
    torch.testing.assert_close(losses["loss_cls"], F.cross_entropy(cls, labels))
    assert "loss_bbox" not in losses
    (losses["loss_ce"] + losses["loss_um"]).backward()
    assert logits.grad[[2, 4]].abs().sum() == 0 and logits.grad[[0, 1, 3]].abs().sum() > 0


# ---- the refinement step (Eq. 14-15) -------------------------------------------------------------
def test_rpn_refinement_is_eq14_15_on_the_levels_and_loss_and_predict_serves_the_detector():
    head = build_rpn(lam=0.5, gamma=0.5, rho=0.5).train()
    feats, data = levels(seed=1), samples(seed=1)
    gts, ign, metas = unpack_gt_instances(data)
    torch.manual_seed(7)
    losses = head.loss(feats, data)
    torch.manual_seed(7)
    with head._ugs_step() as state:
        cls, reg = head(feats)
        clean = head.loss_by_feat(cls, reg, gts, metas, ign)
        targets = state["targets"]
    deltas = refine_perturbation(clean["ugs_um_raw"], feats, 0.5, norm="sample")
    norms = torch.cat([d.flatten(1).norm(dim=1) for d in deltas])
    assert bool(((norms - 0.5).abs() < 1e-4).logical_or(norms == 0).all())
    assert (norms > 0).sum() >= 2
    # the regression branch by hand: 3x3 conv, ReLU, 1x1 conv on P_i + eps_i
    reg_p = [F.conv2d(F.relu(F.conv2d(f + d, head.rpn_conv.weight, head.rpn_conv.bias,
                                      padding=1)), head.rpn_reg.weight, head.rpn_reg.bias)
             for f, d in zip(feats, deltas)]
    ce_p, lum_p, _ = hand_rpn_terms(reg_p, targets, 11, head.ugs_grid, 0.5)
    torch.testing.assert_close(losses["loss_ur"], 0.5 * (ce_p + lum_p))
    torch.testing.assert_close(losses["loss_ce"], clean["loss_ce"])
    # loss_and_predict (what TwoStageDetector calls): same losses, proposals of the clean pass
    torch.manual_seed(7)
    l2, proposals = head.loss_and_predict(feats, data, proposal_cfg=head.test_cfg)
    for k in ("loss_ce", "loss_um", "loss_ur"):
        torch.testing.assert_close(l2[k], losses[k])
    with torch.no_grad():
        ref = head.predict_by_feat(*head(feats), batch_img_metas=metas, cfg=head.test_cfg)
    torch.testing.assert_close(proposals[0].bboxes, ref[0].bboxes)
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k)
    total.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def sample_rois(roi_head, feats, data, seed=0):
    gts, ign, _ = unpack_gt_instances(data)
    g = torch.Generator().manual_seed(seed)
    out = []
    torch.manual_seed(seed)
    for i, gt in enumerate(gts):
        jitter = gt.bboxes.repeat(4, 1) + torch.randn(4 * len(gt), 4, generator=g) * 3
        rand_xy = torch.rand(20, 2, generator=g) * 40
        props = torch.cat([jitter, torch.cat([rand_xy, rand_xy + 20], 1)])
        prop = InstanceData(priors=props)
        assign = roi_head.bbox_assigner.assign(prop, gt, ign[i])
        out.append(roi_head.bbox_sampler.sample(assign, prop, gt,
                                                feats=[f[i][None] for f in feats]))
    return out


def test_rcnn_refinement_perturbs_the_levels_through_roialign():
    roi_head = build_roi_head(lam=0.5, gamma=0.5, rho=0.5).train()
    bh = roi_head.bbox_head
    feats, data = levels(seed=2), samples(seed=2)
    res = sample_rois(roi_head, feats, data)
    losses = roi_head.bbox_loss(feats, res)["loss_bbox"]
    assert set(losses) == {"loss_cls", "acc", "loss_ce", "loss_um", "loss_ur"}
    # by hand: clean L_UM -> eps on the 4 levels RoIAlign reads -> RoIAlign + FCs + fc_reg again
    rois = bbox2roi([r.priors for r in res])
    labels, _, t, w = bh.get_targets(res, roi_head.train_cfg)
    lv = feats[:4]
    logits = roi_head._bbox_forward(lv, rois)["bbox_pred"]
    pos = (labels < NUM_CLASSES).nonzero().squeeze(1)
    assert len(pos) >= 4

    def pos_terms(lg):
        lg = lg.view(len(lg), NUM_CLASSES, 4, 6)[pos, labels[pos]]
        grid = ref_grid(bh.ugs_grid.alpha, bh.ugs_grid.beta, bh.ugs_grid.n)   # tests/reference_ugs.py
        ce, um = ref_weighted_terms(lg, t[pos], w[pos], grid, len(labels))
        return ce.float(), um.float()

    ce, um = pos_terms(logits)
    torch.testing.assert_close(losses["loss_ce"], ce)
    torch.testing.assert_close(losses["loss_um"], 0.5 * um)
    deltas = refine_perturbation(um, lv, 0.5, norm="sample")
    norms = torch.cat([d.flatten(1).norm(dim=1) for d in deltas])
    assert bool(((norms - 0.5).abs() < 1e-4).logical_or(norms == 0).all())
    # RoIAlign passed the gradient to every (level, image) that holds a positive RoI
    lvl = roi_head.bbox_roi_extractor.map_roi_levels(rois, 4)
    used = {(int(lvl[i]), int(rois[i, 0])) for i in pos}
    assert len(used) >= 2
    for level, img in used:
        assert deltas[level][img].norm().item() == pytest.approx(0.5, abs=1e-4)
    x = roi_head.bbox_roi_extractor([f + d for f, d in zip(lv, deltas)], rois).flatten(1)
    for fc in bh.shared_fcs:
        x = F.relu(F.linear(x, fc.weight, fc.bias))
    ce_p, um_p = pos_terms(F.linear(x, bh.fc_reg.weight, bh.fc_reg.bias))
    torch.testing.assert_close(losses["loss_ur"], 0.5 * (ce_p + 0.5 * um_p))
    sum(v for k, v in losses.items() if "loss" in k).backward()
    assert all(f.grad is not None for f in lv)
    assert all(lv[level].grad[img].abs().sum() > 0 for level, img in used)
    assert feats[4].grad is None                  # P6 is not read by the RoI extractor
    # gamma = 0 switches it off; refine_every = 2 runs it on every other call, weighted by 2
    off = build_roi_head(gamma=0.0).train()
    assert "loss_ur" not in off.bbox_loss(levels(seed=2), res)["loss_bbox"]
    lazy = build_roi_head(lam=0.5, gamma=0.5, rho=0.5, refine_every=2).train()
    first = lazy.bbox_loss(levels(seed=2), res)["loss_bbox"]
    torch.testing.assert_close(first["loss_ur"], 2 * losses["loss_ur"].detach())
    assert "loss_ur" not in lazy.bbox_loss(levels(seed=2), res)["loss_bbox"]
    assert "loss_ur" in lazy.bbox_loss(levels(seed=2), res)["loss_bbox"]


# ---- empty inputs ---------------------------------------------------------------------------
def no_gt_samples(size=64):
    data = samples(size)
    for d in data:
        d.gt_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
    return data


def test_no_objects_and_no_proposals_give_zero_losses_with_gradients():
    head = build_rpn().train()
    feats = levels()
    losses, props = head.loss_and_predict(feats, no_gt_samples(), proposal_cfg=head.test_cfg)
    for k in ("loss_ce", "loss_um", "loss_ur"):
        assert losses[k].item() == 0.0 and losses[k].requires_grad
    sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k).backward()
    roi_head = build_roi_head().train()
    for props in ([InstanceData(bboxes=torch.zeros(0, 4))] * 2,                    # no proposals
                  [InstanceData(bboxes=torch.tensor([[2.0, 2, 30, 30]]))] * 2):   # no positives
        feats = levels()
        losses = roi_head.loss(feats, [p.clone() for p in props], no_gt_samples())
        for k in ("loss_ce", "loss_um", "loss_ur"):
            assert losses[k].item() == 0.0 and losses[k].requires_grad
        sum(v for k, v in losses.items() if "loss" in k).backward()
    # the bbox head alone, every RoI background
    bh = build_bbox_head()
    logits = torch.randn(4, NUM_CLASSES * 24, requires_grad=True)
    losses = bh.loss(torch.randn(4, NUM_CLASSES + 1), logits, None,
                     torch.full((4,), NUM_CLASSES), torch.ones(4), torch.zeros(4, 4),
                     torch.zeros(4, 4))
    assert losses["loss_ce"].item() == 0.0 and losses["loss_um"].item() == 0.0
    (losses["loss_ce"] + losses["loss_um"]).backward()
    assert logits.grad.abs().sum() == 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="mapping"):
        build_rpn(mapping="log")
    with pytest.raises(ValueError, match="unknown ugs option"):
        build_bbox_head(alpah=5.0)
    cfg = bbox_head_cfg()
    cfg.loss_bbox = dict(type="L1Loss")
    with pytest.raises(ValueError, match="loss_bbox"):
        MODELS.build(cfg)
    cfg = bbox_head_cfg()
    cfg.reg_decoded_bbox = True
    with pytest.raises(ValueError, match="reg_decoded_bbox"):
        MODELS.build(cfg)
    assert build_rpn().ugs_cfg["alpha"] == 2.0 and build_rpn().rpn_reg.out_channels == 3 * 4 * 11
    assert build_bbox_head().ugs_cfg["alpha"] == 5.0 and build_bbox_head().ugs_grid.n == 5


# ---- configs and a tiny Faster R-CNN w/ UGS end to end -----------------------------------------
def test_configs_are_the_papers_faster_rcnn_settings():
    base, ugs = Config.fromfile(BASE_CFG), Config.fromfile(UGS_CFG)
    assert base.model.rpn_head.type == "RPNHead"
    assert base.model.roi_head.bbox_head.type == "Shared2FCBBoxHead"
    assert base.model.roi_head.bbox_head.num_classes == 10
    assert ugs.model.rpn_head.type == "UGSRPNHead" and "loss_bbox" not in ugs.model.rpn_head
    assert ugs.model.roi_head.type == "UGSStandardRoIHead"
    bh = ugs.model.roi_head.bbox_head
    assert bh.type == "UGSShared2FCBBoxHead" and bh.num_classes == 10 and "loss_bbox" not in bh
    assert ugs.model.rpn_head.ugs == dict(alpha=2.0, beta=1.0, n=10, lam=0.5, gamma=0.5, rho=0.5)
    assert bh.ugs == dict(alpha=5.0, beta=1.0, n=5, lam=0.5, gamma=0.5, rho=0.5)
    for c in (base, ugs):
        assert c.model.test_cfg.rcnn.max_per_img == 500
        assert c.optim_wrapper.type == "NonFiniteGuardOptimWrapper"
        assert c.optim_wrapper.optimizer.lr == 0.02
        assert c.optim_wrapper.optimizer.weight_decay == 1e-4
        assert "ugs.openmmlab.runtime" in c.custom_imports.imports
        assert c.train_dataloader.dataset.metainfo.classes[0] == "pedestrian"


def test_tiny_faster_rcnn_with_ugs_trains_and_predicts():
    cfg = Config.fromfile(UGS_CFG).model
    cfg.backbone = dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                        frozen_stages=-1, norm_cfg=dict(type="BN", requires_grad=True),
                        norm_eval=False, style="pytorch", init_cfg=None)
    cfg.neck.update(in_channels=[64, 128, 256, 512], out_channels=64)
    shrink_two_stage(cfg, channels=64, fc_channels=64)
    cfg.test_cfg.rcnn.max_per_img = 50
    cfg.test_cfg.rcnn.score_thr = 0.0   # an untrained head scores low: keep every box, so the
    torch.manual_seed(0)                # checks below always have predictions to look at
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    data = samples(size=128, seed=4, num_gts=4, lo=10, hi=50)
    for d in data:
        d.gt_instances.labels = torch.tensor([0, 3, 9, 5])
    inputs = torch.randn(2, 3, 128, 128)
    losses = model.loss(inputs, data)
    for k in ("loss_rpn_cls", "rpn_loss_ce", "rpn_loss_um", "rpn_loss_ur",
              "loss_cls", "loss_ce", "loss_um", "loss_ur"):
        assert k in losses, k
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.rpn_head.rpn_reg.weight.grad.abs().sum() > 0
    assert model.roi_head.bbox_head.fc_reg.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model.predict(inputs, data)
    pred = out[0].pred_instances
    assert pred.bboxes.shape == (50, 4)          # max_per_img boxes once nothing is thresholded
    assert bool((pred.labels >= 0).all() and (pred.labels < 10).all())
    assert bool((pred.bboxes >= 0).all() and (pred.bboxes <= 128).all())   # clipped to the image


def test_stock_cascade_rcnn_trains_and_predicts_with_ugs_bbox_heads():
    # refine_bboxes / _refine_roi / predict_by_feat of mmdet's CascadeRoIHead decode the UGS
    # logits through regress_by_class and _predict_by_feat_single (expected deltas): the UGS
    # bbox heads work inside a stock CascadeRoIHead too, without the refinement step (that is
    # UGSCascadeRoIHead's, tested in test_openmmlab_cascade.py)
    cfg = Config.fromfile(os.path.join(os.path.dirname(STOCK), "cascade-rcnn_r50_fpn.py")).model
    cfg.backbone = dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                        init_cfg=None)
    cfg.neck.update(in_channels=[64, 128, 256, 512], out_channels=32)
    cfg.rpn_head.type = "UGSRPNHead"
    cfg.rpn_head.pop("loss_bbox")
    for h in cfg.roi_head.bbox_head:
        h.update(type="UGSShared2FCBBoxHead", num_classes=10, ugs=dict(gamma=0.0))
        h.pop("loss_bbox")
    cfg.test_cfg.rcnn.score_thr = 0.0
    shrink_two_stage(cfg, channels=32, fc_channels=32)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    data = samples(size=96, seed=5, num_gts=3, lo=12, hi=40)
    inputs = torch.randn(2, 3, 96, 96)
    losses = model.train().loss(inputs, data)
    assert "s2.loss_ce" in losses and "s0.loss_um" in losses
    sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k).backward()
    with torch.no_grad():
        pred = model.eval().predict(inputs, data)[0].pred_instances
    assert len(pred) > 0 and bool((pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all())
