"""UGS heads for mmdet (FCOS, GFL V1): equivalences, encode/decode round trips, refinement."""
import copy
import os

import pytest
import torch

mmdet = pytest.importorskip("mmdet")
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import ugs.openmmlab.models  # noqa: E402,F401
from ugs import IntervalGrid  # noqa: E402
from ugs.refinement import refine_perturbation  # noqa: E402

register_all_modules()
CONFIGS = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs")
LIN = dict(mapping="linear", alpha=8.0, beta=0.0, n=16, lam=0.0, gamma=0.0, loss_weight=0.25)


def _head_cfg(stock, head_type, **ugs):
    head = copy.deepcopy(Config.fromfile(os.path.join(CONFIGS, stock)).model.bbox_head)
    head.update(num_classes=3, in_channels=16, feat_channels=16, stacked_convs=1, type=head_type)
    head.norm_cfg = dict(type="GN", num_groups=4, requires_grad=True)
    if head_type.startswith("UGS"):
        head.ugs = ugs
        if head_type == "UGSFCOSHead":
            head.pop("loss_bbox")
    if "GFL" in head_type:
        head.train_cfg = dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1,
                              pos_weight=-1, debug=False)
        head.test_cfg = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                             nms=dict(type="nms", iou_threshold=0.6), max_per_img=100)
    else:
        head.test_cfg = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.0,
                             nms=dict(type="nms", iou_threshold=0.5), max_per_img=100)
    return head


def _build(stock, head_type, seed=0, **ugs):
    torch.manual_seed(seed)
    head = MODELS.build(_head_cfg(stock, head_type, **ugs))
    head.init_weights()
    return head


def _inputs(size=64, seed=0, strides=(8, 16, 32, 64, 128)):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(2, 16, max(size // s, 1), max(size // s, 1), generator=g).requires_grad_()
             for s in strides]
    samples = []
    for i in range(2):
        d = DetDataSample()
        d.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                            pad_shape=(size, size), batch_input_shape=(size, size)))
        gt = InstanceData()
        xy = torch.rand(3, 2, generator=g) * 30
        gt.bboxes = torch.cat([xy, xy + 6 + torch.rand(3, 2, generator=g) * 20], 1)
        gt.labels = torch.tensor([0, 1, 2])
        d.gt_instances = gt
        samples.append(d)
    return feats, samples


GFL = "gfl/gfl_r50_fpn_1x_coco.py"
FCOS = "fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py"


def test_ugs_gfl_with_gfls_integer_grid_reproduces_gfl_losses():
    # linear mapping, alpha = 8, beta = 0, n = 16 is GFL V1's 0..16 bins; lam = gamma = 0 and
    # loss_weight = DFL's 0.25: loss_ce must equal GFL's loss_dfl, every other loss unchanged.
    ref = _build(GFL, "GFLHead")
    ugs = _build(GFL, "UGSGFLHead", **LIN)
    ugs.load_state_dict(ref.state_dict(), strict=False)
    feats, samples = _inputs()
    a = ref.loss(feats, samples)
    b = ugs.loss(feats, samples)
    torch.testing.assert_close(sum(b["loss_cls"]), sum(a["loss_cls"]))
    torch.testing.assert_close(sum(b["loss_bbox"]), sum(a["loss_bbox"]))
    torch.testing.assert_close(b["loss_ce"], sum(a["loss_dfl"]), rtol=1e-5, atol=1e-6)
    assert "loss_ur" not in b and b["loss_um"].item() == 0.0


def test_ugs_gfl_predictions_equal_gfl_on_the_integer_grid():
    ref = _build(GFL, "GFLHead").eval()
    ugs = _build(GFL, "UGSGFLHead", **LIN).eval()
    ugs.load_state_dict(ref.state_dict(), strict=False)
    feats, samples = _inputs(seed=1)
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        pa = ref.predict_by_feat(*ref(feats), batch_img_metas=metas)
        pb = ugs.predict_by_feat(*ugs(feats), batch_img_metas=metas)
    torch.testing.assert_close(pb[0].bboxes, pa[0].bboxes, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(pb[0].scores, pa[0].scores)


def _two_hot_logits(grid, t):
    return torch.log(grid.encode(t).clamp_min(1e-12))


def test_ugs_fcos_decodes_the_distances_it_encodes():
    # logits = log(two-hot(ln(d / stride))) must decode to d pixels per side (log mapping)
    head = _build(FCOS, "UGSFCOSHead", alpha=3.0, beta=1.0, n=16).eval()
    d_px = torch.tensor([[3.0, 8.0, 40.0, 100.0]])             # on P3 (stride 8)
    t = torch.log(d_px / 8.0)
    logits = _two_hot_logits(head.ugs_grid, t.double()).float()  # (1, 4, 17)
    maps = logits.reshape(1, 4 * 17, 1, 1)
    out = head.logits_to_distance_maps([maps])[0].reshape(1, 4) * 8.0
    torch.testing.assert_close(out, d_px, rtol=2e-3, atol=0)


def test_ugs_fcos_predicts_the_boxes_fcos_predicts_for_the_same_distances():
    # same classification / centerness weights; FCOS's exp(reg) distances written as UGS
    # two-hot logits -> identical boxes after FCOS's own post-processing
    ref = _build(FCOS, "FCOSHead").eval()
    ugs = _build(FCOS, "UGSFCOSHead", alpha=4.0, beta=1.0, n=16).eval()
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith(("conv_reg", "scales"))}
    ugs.load_state_dict(state, strict=False)
    feats, samples = _inputs(seed=2)
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        cls, reg, ctr = ref(feats)
        ugs_reg = []
        for r, s in zip(reg, ref.strides):        # FCOS distances (pixels) -> UGS logits
            b, _, h, w = r.shape
            t = torch.log(r.double() / s).clamp(-4.0, 4.0)
            lg = _two_hot_logits(ugs.ugs_grid, t.permute(0, 2, 3, 1)).float()  # (b, h, w, 4, 17)
            ugs_reg.append(lg.permute(0, 3, 4, 1, 2).reshape(b, 4 * 17, h, w))
        pa = ref.predict_by_feat(cls, reg, ctr, batch_img_metas=metas)
        pb = ugs.predict_by_feat(cls, ugs_reg, ctr, batch_img_metas=metas)
    torch.testing.assert_close(pb[0].bboxes, pa[0].bboxes, rtol=1e-3, atol=1e-2)


def test_ugs_fcos_refinement_is_eq14_15_on_the_levels():
    # loss_ur must be gamma * (CE + lam UM) of the regression branch re-run on
    # P_i + rho * g_i / ||g_i|| (per image and level), g = d L_UM / d P_i; recomputed by hand
    head = _build(FCOS, "UGSFCOSHead", alpha=3.0, beta=1.0, n=16, gamma=0.5, rho=0.5, lam=0.5)
    head.train()
    feats, samples = _inputs(seed=3)
    from mmdet.models.utils import unpack_gt_instances
    losses = head.loss(feats, samples)
    gts, ign, metas = unpack_gt_instances(samples)
    clean = head.loss_by_feat(*head(feats), gts, metas, ign)
    deltas = refine_perturbation(clean["ugs_um_raw"], feats, 0.5, norm="sample")
    # rho on every (image, level) whose positives depend on it, 0 where a level has none
    norms = torch.cat([d.flatten(1).norm(dim=1) for d in deltas])
    assert bool(((norms - 0.5).abs() < 1e-4).logical_or(norms == 0).all())
    assert (norms > 0).sum() >= 2
    cls, _, ctr = head(feats)
    reg_p = [head.forward_reg(f + d, i) for i, (f, d) in enumerate(zip(feats, deltas))]
    pert = head.loss_by_feat(cls, reg_p, ctr, gts, metas, ign)
    torch.testing.assert_close(losses["loss_ur"], 0.5 * (pert["loss_ce"] + pert["loss_um"]))
    total = sum(v for k, v in losses.items() if k.startswith("loss"))
    total.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def test_ugs_heads_switch_refinement_off_and_handle_images_without_objects():
    for stock, head_type in ((FCOS, "UGSFCOSHead"), (GFL, "UGSGFLHead")):
        head = _build(stock, head_type, gamma=0.0)
        feats, samples = _inputs(seed=4)
        assert "loss_ur" not in head.loss(feats, samples)
        head = _build(stock, head_type)
        for s in samples:
            s.gt_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        losses = head.loss(feats, samples)
        assert losses["loss_ce"].item() == 0.0 and losses["loss_um"].item() == 0.0
        total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items()
                    if k.startswith("loss"))
        total.backward()


def test_ugs_head_options_are_checked():
    with pytest.raises(ValueError, match="unknown ugs option"):
        MODELS.build(_head_cfg(FCOS, "UGSFCOSHead", alpah=2.0))
    with pytest.raises(ValueError, match="mapping"):
        MODELS.build(_head_cfg(FCOS, "UGSFCOSHead", mapping="sqrt"))
    with pytest.raises(ValueError, match="ugs.rho"):
        MODELS.build(_head_cfg(GFL, "UGSGFLHead", rho=-1.0))


def test_ugs_fcos_regression_output_width_and_parameter_overhead():
    ref = _build(FCOS, "FCOSHead")
    ugs = _build(FCOS, "UGSFCOSHead", n=16)
    assert ugs.conv_reg.out_channels == 4 * 17
    extra = sum(p.numel() for p in ugs.parameters()) - sum(p.numel() for p in ref.parameters())
    # conv_reg 16 -> 68 outputs, 3x3 kernels on 16 channels: (68 - 4) * (16 * 9 + 1) = 9280,
    # minus FCOS's five Scale parameters
    assert extra == 9280 - 5


def test_ugs_gfl_in_its_configs_setting_decodes_distances_and_trains():
    # the configuration configs/gfl/gfl_r50_fpn_ugs_1x_visdrone.py uses (log mapping, IN grid
    # alpha 3 beta 1 n 16, UM and UR on), not the GFL-equivalent linear one above
    import math

    from reference_ugs import ref_grid, ref_two_hot

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = dict(Config.fromfile(os.path.join(root, "configs/gfl/gfl_r50_fpn_ugs_1x_visdrone.py")).model.bbox_head.ugs)
    assert (cfg["mapping"], cfg["alpha"], cfg["beta"], cfg["n"]) == ("log", 3.0, 1.0, 16)
    head = _build(GFL, "UGSGFLHead", **cfg)
    grid = ref_grid(3.0, 1.0, 16)                               # independent Eq. 9
    torch.testing.assert_close(head.ugs_grid.values.double(), torch.tensor(grid, dtype=torch.float64),
                               rtol=0, atol=1e-6)
    # a distance d (in strides) written as two-hot logits on T = ln d decodes back to d
    d = [0.3, 1.0, 2.5, 12.0]
    logits = torch.tensor([[math.log(max(w, 1e-12)) for w in ref_two_hot(math.log(v), grid)] for v in d])
    out = head.integral(logits.reshape(1, 4 * 17))
    torch.testing.assert_close(out, torch.tensor([d]), rtol=2e-3, atol=0)
    # one loss with every UGS term on: finite, and the backward reaches the regression conv
    head.train()
    with torch.no_grad():
        head.gfl_reg.weight.add_(1e-2 * torch.randn_like(head.gfl_reg.weight))  # off uniform (init zeroes it)
    feats, samples = _inputs(seed=7)
    losses = head.loss(feats, samples)
    for k in ("loss_cls", "loss_bbox", "loss_ce", "loss_um", "loss_ur"):
        v = sum(losses[k]) if isinstance(losses[k], (list, tuple)) else losses[k]
        assert torch.isfinite(v) and v.item() > 0, k
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items() if k.startswith("loss"))
    total.backward()
    assert head.gfl_reg.weight.grad.abs().sum() > 0


def _fcos_reference_losses(head, feats, samples, alpha, beta, n, lam, gamma, rho):
    """FCOS w/ UGS and its control, recomputed without the kit's loss code: positives and
    stride-unit targets from mmdet's stock ``FCOSHead`` (``norm_on_bbox=True``), Eq. 9 / 8 / 10 /
    12 from ``tests/reference_ugs.py``, the log mapping ``T = ln d`` and its inverse, FCOS's
    centerness target and the IoU loss written out, and the refinement step (Eq. 14-15) as
    autograd of that reference L_UM. Only the head's network (its convs) is the head's."""
    import math

    from reference_ugs import ref_grid, ref_terms

    stock = _build(FCOS, "FCOSHead")
    stock.norm_on_bbox = True
    grid = ref_grid(alpha, beta, n)
    g = torch.tensor(grid, dtype=torch.float64)
    sizes = [f.shape[-2:] for f in feats]
    points = stock.prior_generator.grid_priors(sizes, dtype=torch.float32, device="cpu")
    labels, targets = stock.get_targets(points, [s.gt_instances for s in samples])
    labels, targets = torch.cat(labels), torch.cat(targets).double()          # level-major, image-major
    pos = ((labels >= 0) & (labels < 3)).nonzero().reshape(-1)
    t = targets[pos]                                                          # (P, 4) l, t, r, b in strides
    lr, tb = t[:, [0, 2]], t[:, [1, 3]]
    w = torch.sqrt(lr.min(1).values / lr.max(1).values * tb.min(1).values / tb.max(1).values)
    T = torch.log(t)                                                          # the log mapping

    def logits_at_positives(reg_maps):
        flat = torch.cat([r.permute(0, 2, 3, 1).reshape(-1, 4, n + 1) for r in reg_maps])
        return flat[pos].double()

    def ce_um(lg):
        ce = um = 0.0
        for i in range(len(pos)):
            for s in range(4):
                c, e = ref_terms(lg[i, s][None], T[i, s][None], grid)
                ce, um = ce + w[i] * c, um + w[i] * e
        return ce / (4 * w.sum()), um / (4 * w.sum())

    reg = [head.forward_reg(f, i) for i, f in enumerate(feats)]
    lg = logits_at_positives(reg)
    ce, um = ce_um(lg)
    # the control's IoU loss on the decoded expectation d = exp(sum p_k g_k), per side
    d = torch.exp((lg.softmax(-1) * g).sum(-1))
    inter = (torch.minimum(d[:, 0], t[:, 0]) + torch.minimum(d[:, 2], t[:, 2])) * \
            (torch.minimum(d[:, 1], t[:, 1]) + torch.minimum(d[:, 3], t[:, 3]))
    area = lambda b: (b[:, 0] + b[:, 2]) * (b[:, 1] + b[:, 3])  # noqa: E731
    iou = inter / (area(d) + area(t) - inter)
    iou_loss = (w * -torch.log(iou.clamp_min(1e-6))).sum() / w.sum()
    # the refinement step: P_i + rho g_i / ||g_i|| per image and level, g = d L_UM / d P_i
    grads = torch.autograd.grad(um, feats, allow_unused=True)
    deltas = []
    for f, gr in zip(feats, grads):
        gr = torch.zeros_like(f) if gr is None else gr
        norm = gr.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
        deltas.append(torch.where(norm > 1e-12, rho * gr / norm, torch.zeros_like(gr)))
    ce_p, um_p = ce_um(logits_at_positives([head.forward_reg(f + dl, i)
                                            for i, (f, dl) in enumerate(zip(feats, deltas))]))
    return dict(loss_ce=ce, loss_um=lam * um, loss_ur=gamma * (ce_p + lam * um_p), loss_bbox=iou_loss,
                num_pos=len(pos), ok=math.isfinite(float(iou_loss)))


def test_ugs_fcos_losses_and_refinement_match_a_reference_built_without_the_kit():
    # the configuration of configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py, on a tiny head
    cfg = dict(alpha=3.0, beta=1.0, n=16, mapping="log", lam=0.5, gamma=0.5, rho=0.5)
    head = _build(FCOS, "UGSFCOSHead", **cfg)
    with torch.no_grad():                                   # off the uniform start (init zeroes conv_reg)
        head.conv_reg.weight.add_(0.05 * torch.randn_like(head.conv_reg.weight))
    head.train()
    feats, samples = _inputs(seed=11)
    got = head.loss(feats, samples)
    ref = _fcos_reference_losses(head, feats, samples, **{k: cfg[k] for k in ("alpha", "beta", "n", "lam",
                                                                               "gamma", "rho")})
    assert ref["num_pos"] >= 10
    for key in ("loss_ce", "loss_um", "loss_ur"):
        torch.testing.assert_close(got[key].double(), ref[key].detach(), rtol=1e-4, atol=1e-6)


def test_fcos_control_is_the_iou_loss_on_the_ugs_parametrisation():
    # configs/fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py: the UGS head, Eq. 16 off, FCOS's IoU loss
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    control = Config.fromfile(os.path.join(root, "configs/fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py")).model.bbox_head
    assert control.type == "UGSFCOSHead" and control.loss_bbox.type == "IoULoss"
    cfg = dict(control.ugs)
    assert (cfg["loss_weight"], cfg["gamma"]) == (0.0, 0.0)
    head_cfg = _head_cfg(FCOS, "UGSFCOSHead", **cfg)
    head_cfg.loss_bbox = control.loss_bbox
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    with torch.no_grad():
        head.conv_reg.weight.add_(0.05 * torch.randn_like(head.conv_reg.weight))
    head.train()
    feats, samples = _inputs(seed=12)
    got = head.loss(feats, samples)
    ref = _fcos_reference_losses(head, feats, samples, alpha=cfg["alpha"], beta=cfg["beta"], n=cfg["n"],
                                 lam=cfg["lam"], gamma=0.0, rho=cfg["rho"])
    torch.testing.assert_close(got["loss_bbox"].double(), ref["loss_bbox"].detach(), rtol=1e-4, atol=1e-6)
    assert got["loss_ce"].item() == 0.0 and got["loss_um"].item() == 0.0 and "loss_ur" not in got
    got["loss_bbox"].backward()
    assert head.conv_reg.weight.grad.abs().sum() > 0       # the IoU loss trains the distributions
