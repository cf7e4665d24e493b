"""UGS for DINO (ugs/openmmlab/dino_head.py): the reg branch's encode / decode round trip, the
matcher and mmdet's own forward seeing the decoded boxes, the L1 -> Eq. 10 + 12 replacement on
matched, encoder and denoising queries (values recomputed by hand with torch.nn.functional),
the refinement step on the 5 encoder input levels, the configs, and a 2-iteration CPU training
through ``python -m ugs.openmmlab.train``."""
from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("mmdet")

from mmdet.models.dense_heads.deformable_detr_head import DeformableDETRHead  # noqa: E402
from mmdet.models.layers import inverse_sigmoid  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import ugs.openmmlab.runtime  # noqa: E402,F401
from ugs.grid import interval_grid_values  # noqa: E402
from ugs.openmmlab.dino_head import (UGSDINOHead, UGSRegBranch,  # noqa: E402
                                     logit_offset_targets)

register_all_modules()
ROOT = pathlib.Path(__file__).resolve().parents[1]
BASE_CFG = ROOT / "configs/dino/dino_5scale_r50_24e_visdrone.py"
UGS_CFG = ROOT / "configs/dino/dino_5scale_r50_ugs_24e_visdrone.py"
IMG = (64, 80)  # h, w


def make_head(alpha=4.0, beta=1.0, n=16, layers=2, **ugs):
    head = UGSDINOHead(num_classes=3, embed_dims=32, num_pred_layer=layers + 1, as_two_stage=True,
                       sync_cls_avg_factor=False,
                       loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25,
                                     loss_weight=1.0),
                       loss_bbox=dict(type="L1Loss", loss_weight=5.0),
                       loss_iou=dict(type="GIoULoss", loss_weight=2.0),
                       train_cfg=dict(assigner=dict(type="HungarianAssigner", match_costs=[
                           dict(type="FocalLossCost", weight=2.0),
                           dict(type="BBoxL1Cost", weight=5.0, box_format="xywh"),
                           dict(type="IoUCost", iou_mode="giou", weight=2.0)])),
                       ugs=dict(alpha=alpha, beta=beta, n=n, **ugs))
    head.init_weights()
    return head


def gt_sample(boxes_xyxy, labels):
    s = DetDataSample(metainfo=dict(img_shape=IMG, pad_shape=IMG, batch_input_shape=IMG))
    s.gt_instances = InstanceData(bboxes=torch.tensor(boxes_xyxy, dtype=torch.float32),
                                  labels=torch.tensor(labels))
    return s


def head_inputs(head, seed=0, layers=2, n_match=6, n_gt=2, k_enc=5):
    """Random decoder states / references for 1 image with ``n_gt`` boxes and one denoising
    group (``2 n_gt`` queries: positives then negatives), as DINO hands them to the head."""
    g = torch.Generator().manual_seed(seed)
    # random (non-zero) last layers so that the distributions are not uniform
    for b in head.reg_branches:
        with torch.no_grad():
            b[-1].weight.copy_(0.3 * torch.randn(b[-1].weight.shape, generator=g))
    n_dn = 2 * n_gt
    q = n_dn + n_match
    hs = torch.randn(layers, 1, q, head.embed_dims, generator=g, requires_grad=True)
    refs = [torch.rand(1, q, 4, generator=g) * 0.6 + 0.2 for _ in range(layers + 1)]
    bins = head.ugs_grid.num_bins
    enc_logits = torch.randn(1, k_enc, 4, bins, generator=g, requires_grad=True)
    enc_ref = torch.randn(1, k_enc, 4, generator=g)
    enc_coord = (head.ugs_grid.decode(enc_logits) + enc_ref).sigmoid()
    enc_cls = torch.randn(1, k_enc, 3, generator=g)
    samples = [gt_sample([[4.0, 6.0, 20.0, 30.0], [40.0, 10.0, 70.0, 50.0]][:n_gt], [0, 2][:n_gt])]
    dn_meta = dict(num_denoising_queries=n_dn, num_denoising_groups=1)
    return dict(hidden_states=hs, references=refs, enc_outputs_class=enc_cls,
                enc_outputs_coord=enc_coord, batch_data_samples=samples, dn_meta=dn_meta,
                enc_outputs_ugs=dict(logits=enc_logits, reference_unact=enc_ref))


# ---------------------------------------------------------------- encode / decode
def test_round_trip_two_hot_decodes_to_the_ground_truth_box():
    head = make_head()
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(200, 4, generator=g) * 0.8 + 0.1
    ref = (gt + (torch.rand(200, 4, generator=g) - 0.5) * 0.1).clamp(0.02, 0.98)
    ref_unact = inverse_sigmoid(ref, eps=1e-5)
    t = logit_offset_targets(gt, ref_unact, head.ugs_grid.alpha)
    assert t.abs().max() < head.ugs_grid.alpha  # nothing clamped in this range
    p_star = head.ugs_grid.encode(t)
    logits = torch.log(p_star.clamp_min(1e-30))          # softmax(log p*) = p*
    box = (head.ugs_grid.decode(logits) + ref_unact).sigmoid()
    torch.testing.assert_close(box, gt, atol=1e-5, rtol=0)
    # the expectation by hand: sum_i p*_i y_i with Eq. 9's points (float64)
    y = interval_grid_values(4.0, 1.0, 16)
    torch.testing.assert_close((p_star.double() * y).sum(-1).float(), t, atol=1e-5, rtol=0)


def test_targets_beyond_alpha_are_clamped_and_infinite_proposals_go_to_the_end():
    gt = torch.tensor([[0.5, 0.5, 0.999999, 0.001]])
    ref = torch.tensor([[0.0, float("inf"), 0.0, 0.0]])
    t = logit_offset_targets(gt, ref, 2.0)
    torch.testing.assert_close(t, torch.tensor([[0.0, -2.0, 2.0, -2.0]]))


def test_reg_branch_returns_the_expectation_and_mmdet_forward_agrees():
    head = make_head()
    inp = head_inputs(head)
    branch = head.reg_branches[0]
    assert isinstance(branch, UGSRegBranch) and branch[-1].out_features == 4 * 17
    h = inp["hidden_states"][0]
    lg = branch.logits(h)
    assert lg.shape == h.shape[:-1] + (4, 17)
    y = interval_grid_values(4.0, 1.0, 16).float()
    torch.testing.assert_close(branch(h), (torch.softmax(lg, -1) * y).sum(-1))
    # mmdet's own DeformableDETRHead.forward (sigmoid(reg_branch(h) + inverse_sigmoid(ref)))
    # gives the boxes of the UGS head's forward
    cls_m, coords_m = DeformableDETRHead.forward(head, inp["hidden_states"], inp["references"])
    cls_u, coords_u, logits, refs = head.forward_ugs(inp["hidden_states"], inp["references"])
    torch.testing.assert_close(coords_u, coords_m)
    torch.testing.assert_close(cls_u, cls_m)
    assert logits.shape == (2, 1, 10, 4, 17)


def test_zero_init_gives_mmdet_zero_offset():
    head = make_head()
    h = torch.randn(3, 32)
    for b in head.reg_branches:
        torch.testing.assert_close(b(h), torch.zeros(3, 4))


# ---------------------------------------------------------------- matcher and loss
def test_matcher_sees_the_decoded_boxes(monkeypatch):
    head = make_head()
    inp = head_inputs(head)
    seen = []
    original = head.assigner.assign

    def spy(pred_instances, gt_instances, img_meta=None, **kw):
        seen.append(pred_instances.bboxes.detach().clone())
        return original(pred_instances, gt_instances, img_meta=img_meta, **kw)

    monkeypatch.setattr(head.assigner, "assign", spy)
    head.loss(**inp)
    n_dn = inp["dn_meta"]["num_denoising_queries"]
    factor = torch.tensor([IMG[1], IMG[0], IMG[1], IMG[0]], dtype=torch.float32)
    # expected: sigmoid(E[grid] + inverse_sigmoid(ref)) of the matching queries, recomputed
    y = interval_grid_values(4.0, 1.0, 16).float()
    assert len(seen) == 3  # 2 decoder layers + the encoder's proposals
    for lid in range(2):
        h = inp["hidden_states"][lid, 0, n_dn:]
        lg = head.reg_branches[lid].logits(h)
        ref = inverse_sigmoid(inp["references"][lid][0, n_dn:], eps=1e-5)
        box = ((torch.softmax(lg, -1) * y).sum(-1) + ref).sigmoid()
        torch.testing.assert_close(seen[lid], bbox_cxcywh_to_xyxy(box) * factor)
    enc = inp["enc_outputs_ugs"]
    box = ((torch.softmax(enc["logits"][0], -1) * y).sum(-1) + enc["reference_unact"][0]).sigmoid()
    torch.testing.assert_close(seen[2], bbox_cxcywh_to_xyxy(box.detach()) * factor)


def test_loss_keys_l1_replaced_giou_kept():
    head = make_head()
    losses = head.loss(**head_inputs(head))
    assert not [k for k in losses if k.endswith("loss_bbox")]
    for prefix in ("", "d0.", "enc_", "dn_", "d0.dn_"):
        for term in ("loss_ce", "loss_um", "loss_iou", "loss_cls"):
            assert f"{prefix}{term}" in losses, f"{prefix}{term}"
    assert "ugs_um_raw" in losses


def hand_ce_um(logits, ref_unact, gt_cxcywh, alpha=4.0, beta=1.0, n=16):
    """Eq. 10 / Eq. 12 by hand: linear-interpolation two-hot on Eq. 9's points, F.log_softmax."""
    y = interval_grid_values(alpha, beta, n)
    t = (torch.logit(gt_cxcywh.double(), eps=1e-5) - ref_unact.double()).clamp(-alpha, alpha)
    j = (torch.bucketize(t, y, right=True) - 1).clamp(0, n - 1)
    w_r = (t - y[j]) / (y[j + 1] - y[j])
    p = torch.zeros(t.shape + (n + 1,), dtype=torch.float64)
    p.scatter_(-1, j[..., None], (1 - w_r)[..., None])
    p.scatter_add_(-1, (j + 1)[..., None], w_r[..., None])
    logp = F.log_softmax(logits.double(), -1)
    return -(p * logp).sum(), -(logp.exp() * logp).sum()


def test_denoising_queries_get_the_ugs_loss_by_hand_and_only_through_their_logits():
    head = make_head()
    inp = head_inputs(head)
    losses = head.loss(**inp)
    n_dn, lid = inp["dn_meta"]["num_denoising_queries"], 1   # last layer -> "dn_loss_ce"
    gt = inp["batch_data_samples"][0].gt_instances.bboxes
    gt_cxcywh = torch.cat([(gt[:, :2] + gt[:, 2:]) / 2, gt[:, 2:] - gt[:, :2]], -1) \
        / torch.tensor([IMG[1], IMG[0], IMG[1], IMG[0]])
    # positives of the single group are the first n_gt denoising queries, in gt order
    h = inp["hidden_states"][lid, 0, :2]
    lg = head.reg_branches[lid].logits(h)
    ref = inverse_sigmoid(inp["references"][lid][0, :2], eps=1e-5)
    ce, um = hand_ce_um(lg.detach(), ref, gt_cxcywh)
    num_pos = 2
    torch.testing.assert_close(losses["dn_loss_ce"].double(), ce / num_pos, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["dn_loss_um"].double(), 0.5 * um / num_pos, rtol=1e-5, atol=1e-6)
    # its gradient reaches the positive denoising queries only (not the negatives, nor the
    # matching queries)
    grad = torch.autograd.grad(losses["dn_loss_ce"], inp["hidden_states"])[0][lid, 0]
    assert grad[:2].abs().sum() > 0
    assert grad[2:].abs().sum() == 0


def test_matched_query_loss_by_hand():
    head = make_head()
    inp = head_inputs(head)
    record = []
    original = head.get_targets

    def spy(*a, **k):
        out = original(*a, **k)
        record.append(out)
        return out

    head.get_targets = spy
    losses = head.loss(**inp)
    n_dn, lid = inp["dn_meta"]["num_denoising_queries"], 1
    _, _, bbox_targets, bbox_weights, num_pos, _ = record[lid]
    pos = bbox_weights[0].sum(-1) > 0
    assert int(pos.sum()) == 2 == num_pos
    h = inp["hidden_states"][lid, 0, n_dn:][pos]
    lg = head.reg_branches[lid].logits(h).detach()
    ref = inverse_sigmoid(inp["references"][lid][0, n_dn:][pos], eps=1e-5)
    ce, um = hand_ce_um(lg, ref, bbox_targets[0][pos])
    torch.testing.assert_close(losses["loss_ce"].double(), ce / 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["loss_um"].double(), 0.5 * um / 2, rtol=1e-5, atol=1e-6)


def test_head_refuses_encoder_outputs_without_logits():
    head = make_head()
    inp = head_inputs(head)
    inp["enc_outputs_ugs"] = None
    with pytest.raises(ValueError, match="UGSDINO"):
        head.loss(**inp)


def test_unknown_ugs_option_is_refused():
    with pytest.raises(ValueError, match="unknown ugs option"):
        make_head(sigma=1.0)


# ---------------------------------------------------------------- configs and the detector
def quick_cfg(config, data_root, **kw):
    from ugs.openmmlab.train import build_config
    return build_config(str(config), profile="quick", data_root=str(data_root), epochs=1,
                        max_per_img=300, image_size=kw.pop("image_size", 128), **kw)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A tiny synthetic set in the kit's layout (8 train / 4 val images, 96 px), made here."""
    from ugs.data import make_synthetic_set

    root = tmp_path_factory.mktemp("dino_synth")
    make_synthetic_set(root, num_train=8, num_val=4, image_size=96, seed=5)
    return root


def build_seeded(cfg, num_images):
    """The model (weights initialised as the Runner does: ``init_weights``) and a batch of the
    first ``num_images`` training images, all random choices (augmentation too) seeded."""
    import random

    import numpy as np
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()  # DETR embeddings are uninitialised memory until init_weights
    model.train()
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([ds[i] for i in range(num_images)]), True)
    return model, data


def test_paper_configs_are_the_papers_recipe():
    from mmengine.config import Config
    for path in (BASE_CFG, UGS_CFG):
        cfg = Config.fromfile(str(path))
        m = cfg.model
        assert m.num_feature_levels == 5 and m.neck.num_outs == 5
        assert m.backbone.depth == 50 and m.backbone.out_indices == (0, 1, 2, 3)
        assert m.encoder.layer_cfg.self_attn_cfg.num_levels == 5
        assert m.decoder.layer_cfg.cross_attn_cfg.num_levels == 5
        assert m.test_cfg.max_per_img == 1500 and cfg.val_evaluator.max_dets == 1500
        assert cfg.train_cfg.max_epochs == 24
        assert cfg.optim_wrapper.optimizer.type == "AdamW"
        assert cfg.optim_wrapper.optimizer.lr == 2e-4
        kinds = json.dumps(cfg.train_dataloader.dataset.pipeline)
        assert "RandomCrop" in kinds and "RandomChoiceResize" in kinds
        assert m.bbox_head.num_classes == 10
    ugs_cfg = Config.fromfile(str(UGS_CFG))
    assert ugs_cfg.model.type == "UGSDINO" and ugs_cfg.model.bbox_head.type == "UGSDINOHead"


@pytest.fixture(scope="module")
def tiny_ugs_model(synth):
    model, data = build_seeded(quick_cfg(UGS_CFG, synth), 2)
    # init_weights zeroes the reg branches' last layer: uniform distributions, where the
    # entropy is at its maximum and its gradient (the refinement direction, Eq. 15) is 0. A
    # model past its first steps is not there; move the last layers off zero (seeded).
    with torch.no_grad():
        for branch in model.bbox_head.reg_branches:
            branch[-1].weight.normal_(0.0, 0.02)
    return model, data


def test_encoder_proposal_logits_match_dinos_topk(tiny_ugs_model):
    model, data = tiny_ugs_model
    feats = model.extract_feat(data["inputs"])
    head_in = model.forward_transformer(feats, data["data_samples"])
    enc = head_in["enc_outputs_ugs"]
    again = (model.bbox_head.ugs_grid.decode(enc["logits"]) + enc["reference_unact"]).sigmoid()
    torch.testing.assert_close(again, head_in["enc_outputs_coord"])


def test_refinement_perturbs_the_five_encoder_levels(tiny_ugs_model, monkeypatch):
    import ugs.openmmlab.dino_head as dh
    model, data = tiny_ugs_model
    calls = []
    original = dh.refine_perturbation

    def spy(loss, features, rho, norm="sample"):
        out = original(loss, features, rho, norm=norm)
        calls.append((loss.detach(), [f.shape for f in features], out))
        return out

    monkeypatch.setattr(dh, "refine_perturbation", spy)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert len(calls) == 1
    um, shapes, deltas = calls[0]
    assert len(shapes) == 5  # the neck's five levels, each half the size of the one before
    assert all((a[-1] + 1) // 2 == b[-1] and (a[-2] + 1) // 2 == b[-2] for a, b in zip(shapes, shapes[1:]))
    for d in deltas:  # Eq. 15: norm rho per image and level
        torch.testing.assert_close(d.flatten(1).norm(dim=1), torch.full((d.shape[0],), 0.5))
    assert "loss_ur" in losses and losses["loss_ur"].requires_grad
    assert "ugs_um_raw" not in losses
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    last = model.bbox_head.reg_branches[0][-1].weight.grad
    assert last is not None and last.abs().sum() > 0


def test_gamma_zero_has_no_refinement(synth):
    cfg = quick_cfg(UGS_CFG, synth, options={"model.bbox_head.ugs.gamma": 0.0})
    model, data = build_seeded(cfg, 1)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert "loss_ur" not in losses and "loss_ce" in losses


def test_quick_profile_of_dino_keeps_the_method(synth):
    from mmengine.config import Config
    paper = Config.fromfile(str(UGS_CFG))
    cfg = quick_cfg(UGS_CFG, synth, image_size=256)
    assert cfg.model.bbox_head.ugs == paper.model.bbox_head.ugs
    assert cfg.model.bbox_head.type == "UGSDINOHead" and cfg.model.num_feature_levels == 5
    assert cfg.model.backbone.depth == 18 and cfg.model.backbone.init_cfg is None
    assert cfg.optim_wrapper.optimizer.type == "AdamW"
    assert cfg.model.train_cfg == paper.model.train_cfg  # the matcher's costs
    scales = json.dumps(cfg.train_dataloader.dataset.pipeline)
    assert "RandomCrop" in scales and "[154, 427]" in scales  # 480 x 1333 scaled by 256/800
    # val and test share their pipeline's steps: scaled once, 1333 x 800 -> 427 x 256
    assert tuple(cfg.val_dataloader.dataset.pipeline[1].scale) == (427, 256)
    assert tuple(cfg.test_dataloader.dataset.pipeline[1].scale) == (427, 256)


@pytest.mark.parametrize("config", [BASE_CFG, UGS_CFG], ids=["dino", "dino_ugs"])
def test_two_iteration_cpu_training(tmp_path, config, synth):
    """``python -m ugs.openmmlab.train`` end to end on 8 synthetic images: 2 iterations, then
    validation with the VisDrone metric; the losses must be finite."""
    data = synth
    work = tmp_path / "w"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "ugs.openmmlab.train", str(config), "--profile", "quick",
           "--data-root", str(data), "--work-dir", str(work), "--epochs", "1",
           "--image-size", "128", "--max-per-img", "300", "--cfg-options",
           "train_dataloader.dataset.indices=8", "val_dataloader.dataset.indices=4",
           "test_dataloader.dataset.indices=4", "default_hooks.logger.interval=1"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    metrics = json.loads((work / "metrics.json").read_text())
    assert 0 <= metrics["AP"] <= 1
    logs = sorted(work.glob("*/vis_data/scalars.json"))
    entries = [json.loads(line) for line in logs[-1].read_text().splitlines() if line.strip()]
    train = [e for e in entries if "loss" in e]
    assert len(train) == 2 and all(math.isfinite(e["loss"]) for e in train)
    if config == UGS_CFG:
        assert all("loss_ce" in e and "dn_loss_ce" in e and "loss_ur" in e for e in train)
        assert not any("loss_bbox" in e for e in train)
    else:
        assert all("loss_bbox" in e for e in train)
