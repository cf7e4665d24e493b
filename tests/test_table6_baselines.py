"""Table 6 (component ablation, Faster R-CNN): the baseline losses against independently worked
out values, gradient clipping on a model whose gradient is known, the Gaussian head's decode,
and every row's config built and run once on a tiny input."""
import copy
import math
import os

import pytest
import torch
import torch.nn.functional as F

from ugs.ablation import TABLE6_CONFIGS, table6_config
from ugs.baselines import gaussian_nll, split_mean_log_var
from ugs.papers import load_table

mmdet = pytest.importorskip("mmdet")
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import ugs.openmmlab.runtime  # noqa: E402,F401
from ugs.openmmlab.train import shrink_two_stage  # noqa: E402

register_all_modules()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cfg_of(row):
    return Config.fromfile(table6_config(row, ROOT))


# ---- Gaussian NLL (Bayesian YOLO) ----------------------------------------------------------
def test_gaussian_nll_by_hand():
    # mu = 1, s = log 4 (sigma^2 = 4), x = 3: 1/2 log 4 + 1/2 * 4 / 4 = log 2 + 1/2
    # mu = 0, s = 0, x = -1: 0 + 1/2
    mean = torch.tensor([1.0, 0.0])
    log_var = torch.tensor([math.log(4.0), 0.0])
    x = torch.tensor([3.0, -1.0])
    per = gaussian_nll(mean, log_var, x, reduction="none")
    assert per.tolist() == pytest.approx([math.log(2) + 0.5, 0.5], abs=1e-6)
    assert gaussian_nll(mean, log_var, x).item() == pytest.approx((math.log(2) + 1.0) / 2, abs=1e-6)
    assert gaussian_nll(mean, log_var, x, reduction="sum").item() == pytest.approx(math.log(2) + 1.0,
                                                                                  abs=1e-6)
    # weights and avg_factor: (w1 l1 + w2 l2) / avg
    got = gaussian_nll(mean, log_var, x, weight=torch.tensor([2.0, 0.0]), avg_factor=4.0)
    assert got.item() == pytest.approx(2 * (math.log(2) + 0.5) / 4, abs=1e-6)


def test_gaussian_nll_matches_torch_and_the_normal_density():
    g = torch.Generator().manual_seed(0)
    mean, log_var, x = (torch.randn(64, 4, generator=g, dtype=torch.float64) for _ in range(3))
    # torch's takes the variance and drops the constant by default
    ref = F.gaussian_nll_loss(mean, x, log_var.exp(), full=False, eps=1e-300, reduction="mean")
    assert gaussian_nll(mean, log_var, x).item() == pytest.approx(ref.item(), rel=1e-12)
    # full=True is -log N(x | mu, sigma^2) exactly
    nll = -torch.distributions.Normal(mean, (0.5 * log_var).exp()).log_prob(x)
    torch.testing.assert_close(gaussian_nll(mean, log_var, x, reduction="none", full=True), nll)


def test_gaussian_nll_gradient_is_the_closed_form():
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(10, 4, generator=g, dtype=torch.float64).requires_grad_()
    log_var = torch.randn(10, 4, generator=g, dtype=torch.float64).requires_grad_()
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    gaussian_nll(mean, log_var, x, reduction="sum").backward()
    err = (x - mean).detach()
    s = log_var.detach()
    torch.testing.assert_close(mean.grad, -err * torch.exp(-s))            # L2 gradient / sigma^2
    torch.testing.assert_close(log_var.grad, 0.5 * (1 - err ** 2 * torch.exp(-s)))
    # at the optimum of s (sigma^2 = err^2) the log-variance gradient vanishes
    s_opt = torch.log(err ** 2).requires_grad_()
    gaussian_nll(mean.detach(), s_opt, x, reduction="sum").backward()
    assert s_opt.grad.abs().max().item() < 1e-9


def test_gaussian_nll_input_checks():
    with pytest.raises(ValueError, match="one shape"):
        gaussian_nll(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="reduction"):
        gaussian_nll(torch.zeros(2), torch.zeros(2), torch.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match="8 values"):
        split_mean_log_var(torch.zeros(2, 4))
    m, s = split_mean_log_var(torch.arange(8.0).reshape(1, 8))
    assert m.tolist() == [[0, 1, 2, 3]] and s.tolist() == [[4, 5, 6, 7]]


# ---- the stock losses as the row configs build them ------------------------------------------
PRED = torch.tensor([[0.5, -2.0, 0.05, 0.0]])
TARGET = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
WEIGHT = torch.tensor([[1.0, 1.0, 1.0, 0.0]])      # the 4th delta weighted out


def test_l2_baseline_is_squared_error_in_both_stages():
    m = cfg_of("l2_baseline").model
    for loss_cfg in (m.rpn_head.loss_bbox, m.roi_head.bbox_head.loss_bbox):
        loss = MODELS.build(loss_cfg)
        # (0.25 + 4 + 0.0025 + 0) / avg_factor 2
        got = loss(PRED, TARGET, WEIGHT, avg_factor=2.0)
        assert got.item() == pytest.approx((0.25 + 4.0 + 0.0025) / 2, abs=1e-6)


def test_smooth_l1_by_hand_with_each_stages_beta():
    m = cfg_of("smooth_l1").model

    def hand(d, beta):      # 0.5 d^2 / beta below beta, |d| - beta / 2 above
        d = abs(d)
        return 0.5 * d * d / beta if d < beta else d - beta / 2

    for loss_cfg, beta in ((m.rpn_head.loss_bbox, 1 / 9), (m.roi_head.bbox_head.loss_bbox, 1.0)):
        loss = MODELS.build(loss_cfg)
        want = (hand(0.5, beta) + hand(-2.0, beta) + hand(0.05, beta)) / 2
        assert loss(PRED, TARGET, WEIGHT, avg_factor=2.0).item() == pytest.approx(want, abs=1e-6)
    # the values differ between the stages only through beta: 0.5 -> 0.5 - 1/18 (RPN), 0.125
    assert hand(0.5, 1 / 9) == pytest.approx(0.5 - 1 / 18)


def test_iou_loss_is_minus_log_iou_on_decoded_boxes():
    m = cfg_of("iou_loss").model
    assert m.rpn_head.reg_decoded_bbox and m.roi_head.bbox_head.reg_decoded_bbox
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    target = torch.tensor([[5.0, 5.0, 15.0, 15.0]])
    iou = 25.0 / (100 + 100 - 25)      # overlap 5 x 5, union 175: IoU = 1/7
    for loss_cfg, w in ((m.rpn_head.loss_bbox, 1.0), (m.roi_head.bbox_head.loss_bbox, 10.0)):
        loss = MODELS.build(loss_cfg)
        assert loss(pred, target).item() == pytest.approx(-w * math.log(iou), rel=1e-5)


# ---- gradient clipping ------------------------------------------------------------------------
@pytest.mark.parametrize("scale,clipped", [(1.0, True), (0.01, False)])
def test_gradient_clipping_scales_the_global_norm_to_one(scale, clipped):
    cfg = cfg_of("gradient_clipping")
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=1.0, norm_type=2)
    assert "clip_grad" not in cfg_of("l2_baseline").optim_wrapper
    ow_cfg = copy.deepcopy(cfg.optim_wrapper)
    ow_cfg.optimizer = dict(type="SGD", lr=1.0, momentum=0.0, weight_decay=0.0)
    # two parameter tensors; loss = <a, w1> + <b, w2>: the gradient is (a, b), norm 13 * scale
    model = torch.nn.Module()
    model.w1 = torch.nn.Parameter(torch.zeros(2))
    model.w2 = torch.nn.Parameter(torch.zeros(1))
    a, b = torch.tensor([3.0, 4.0]) * scale, torch.tensor([12.0]) * scale
    wrapper = build_optim_wrapper(model, ow_cfg)
    loss = (a * model.w1).sum() + (b * model.w2).sum()
    wrapper.update_params(loss)
    step = -torch.cat([model.w1.detach(), model.w2.detach()])    # lr 1: the update is the gradient
    grad = torch.cat([a, b])
    if clipped:
        assert step.norm().item() == pytest.approx(1.0, rel=1e-5)
        torch.testing.assert_close(step, grad / 13.0, rtol=1e-5, atol=0)   # same direction
    else:
        torch.testing.assert_close(step, grad)                              # untouched


# ---- the Gaussian R-CNN head ------------------------------------------------------------------
def gaussian_head(agnostic=False, num_classes=3):
    m = cfg_of("bayesian_yolo").model
    cfg = copy.deepcopy(m.roi_head.bbox_head)
    cfg.update(in_channels=4, fc_out_channels=8, num_classes=num_classes, reg_class_agnostic=agnostic)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_bayesian_row_uses_the_gaussian_head_with_an_l2_rpn():
    m = cfg_of("bayesian_yolo").model
    assert m.roi_head.bbox_head.type == "GaussianShared2FCBBoxHead"
    assert m.roi_head.bbox_head.loss_bbox == dict(type="GaussianNLLLoss", loss_weight=1.0)
    assert m.rpn_head.loss_bbox.type == "MSELoss"
    head = gaussian_head()
    assert head.fc_reg.out_features == 3 * 8
    assert gaussian_head(agnostic=True).fc_reg.out_features == 8


@pytest.mark.parametrize("agnostic", [False, True])
def test_gaussian_head_decode_ignores_the_variance(agnostic):
    head = gaussian_head(agnostic)
    n_reg = 1 if agnostic else 3
    g = torch.Generator().manual_seed(2)
    rois = torch.tensor([[0, 10.0, 10.0, 40.0, 30.0], [0, 5.0, 20.0, 25.0, 60.0]])
    cls = torch.randn(2, 4, generator=g)
    means = 0.3 * torch.randn(2, n_reg, 4, generator=g)
    meta = dict(img_shape=(64, 64))
    outs = []
    for s in (torch.zeros(2, n_reg, 4), 5 * torch.randn(2, n_reg, 4, generator=g)):
        pred = torch.cat([means, s], -1).reshape(2, -1)
        outs.append(head._predict_by_feat_single(rois, cls, pred, meta, rcnn_test_cfg=None))
    torch.testing.assert_close(outs[0].bboxes, outs[1].bboxes)
    # the boxes are the coder's decode of the means (mmdet's own coder, by hand here)
    want = head.bbox_coder.decode(rois[:, 1:].repeat_interleave(n_reg, 0), means.reshape(-1, 4),
                                  max_shape=(64, 64)).reshape(2, -1)
    torch.testing.assert_close(outs[0].bboxes, want)
    label = torch.tensor([2, 0])
    pred = torch.cat([means, torch.ones(2, n_reg, 4)], -1).reshape(2, -1)
    got = head.regress_by_class(rois[:, 1:], label, pred, meta)
    pick = means[torch.arange(2), label if not agnostic else torch.zeros_like(label)]
    torch.testing.assert_close(got, head.bbox_coder.decode(rois[:, 1:], pick, max_shape=(64, 64)))


def test_gaussian_head_loss_is_the_nll_of_the_ground_truth_class():
    head = gaussian_head()
    g = torch.Generator().manual_seed(3)
    n = 5
    pred = torch.randn(n, 3 * 8, generator=g)
    labels = torch.tensor([2, 0, 3, 1, 3])            # 3 = background (num_classes)
    targets = torch.randn(n, 4, generator=g)
    weights = torch.zeros(n, 4)
    weights[[0, 1, 3]] = 1.0
    losses = head.loss(torch.randn(n, 4, generator=g), pred, torch.zeros(n, 5), labels,
                       torch.ones(n), targets, weights)
    want = 0.0
    for i in (0, 1, 3):                                # by hand, element by element
        c = int(labels[i])
        for k in range(4):
            mu, s = pred[i, 8 * c + k].item(), pred[i, 8 * c + 4 + k].item()
            want += 0.5 * s + 0.5 * (targets[i, k].item() - mu) ** 2 * math.exp(-s)
    assert losses["loss_bbox"].item() == pytest.approx(want / n, rel=1e-5)   # avg: sampled RoIs


# ---- every row ----------------------------------------------------------------------------------
def test_every_table6_row_has_a_config_with_its_printed_settings():
    t6 = load_table(6)
    assert list(TABLE6_CONFIGS) == t6.rows()
    for row in t6.rows():
        rec = t6.select(row, "AP")[0]
        m = cfg_of(row).model
        if "ugs" not in m.rpn_head:
            assert rec["group"] == "existing gradient stabilization", row
            continue
        for stage in (m.rpn_head.ugs, m.roi_head.bbox_head.ugs):
            assert (stage["beta"] > 0) == (rec["IN"] == "yes"), row
            assert stage["lam"] == (float(rec["lambda"]) if rec["lambda"] else 0.0), row
            assert stage["gamma"] == (float(rec["gamma"]) if rec["gamma"] else 0.0), row
            if rec["rho"]:
                assert stage["rho"] == float(rec["rho"]), row
    with pytest.raises(ValueError, match="known: l2_baseline"):
        table6_config("l3_baseline")


def tiny_samples(size=96):
    g = torch.Generator().manual_seed(5)
    out = []
    for _ in range(2):
        d = DetDataSample()
        d.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                            pad_shape=(size, size), batch_input_shape=(size, size)))
        wh = 8 + torch.rand(4, 2, generator=g) * 30
        xy = torch.rand(4, 2, generator=g) * (size - wh)
        d.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                      labels=torch.tensor([0, 3, 9, 5]))
        out.append(d)
    return out


@pytest.mark.parametrize("row", list(TABLE6_CONFIGS))
def test_every_row_builds_trains_one_step_and_predicts(row):
    m = cfg_of(row).model
    m.backbone = dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                      frozen_stages=-1, norm_cfg=dict(type="BN", requires_grad=True),
                      norm_eval=False, style="pytorch", init_cfg=None, base_channels=16)
    m.neck.update(in_channels=[16, 32, 64, 128], out_channels=16)
    shrink_two_stage(m, channels=16, fc_channels=32)
    m.test_cfg.rcnn.max_per_img = 20
    torch.manual_seed(0)
    model = MODELS.build(m)
    model.init_weights()
    model.train()
    data = tiny_samples()
    inputs = torch.randn(2, 3, 96, 96)
    losses = model.loss(inputs, data)
    loc = [k for k in losses if k in ("loss_rpn_bbox", "loss_bbox", "rpn_loss_ce", "loss_ce")]
    assert len(loc) == 2, (row, sorted(losses))          # one localization term per stage
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total), row
    total.backward()
    assert model.roi_head.bbox_head.fc_reg.weight.grad is not None
    assert model.rpn_head.rpn_reg.weight.grad.abs().sum() > 0, row
    if "ugs" in m.rpn_head:
        assert ("rpn_loss_ur" in losses) == (m.rpn_head.ugs["gamma"] > 0), row
        assert ("loss_ur" in losses) == (m.roi_head.bbox_head.ugs["gamma"] > 0), row
    model.eval()
    with torch.no_grad():
        pred = model.predict(inputs, data)[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred) <= 20
