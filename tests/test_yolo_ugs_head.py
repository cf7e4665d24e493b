"""UGS in TPH-YOLOv5's head (``ugs.yolo.ugs_head``): the grids and the encode / decode round trip
against YOLOv5's own decoding written out by hand, YOLOv5's assignment on a case worked out by
hand, the losses with the refinement term, and the w/ UGS paper configs built and stepped."""
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mmyolo")

from mmengine.config import ConfigDict  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = [[(4 * 2 ** lvl * (j + 1), 4 * 2 ** lvl * (j + 2)) for j in range(4)] for lvl in range(4)]   # build only


@pytest.fixture(scope="module")
def registry():
    from mmengine.registry import init_default_scope
    from mmyolo.registry import MODELS
    from mmyolo.utils import register_all_modules

    import ugs.openmmlab.runtime  # noqa: F401
    import ugs.yolo.runtime  # noqa: F401

    register_all_modules()
    init_default_scope("mmyolo")
    return MODELS


def _head(registry, gamma=0.5):
    head = registry.build(ConfigDict(
        type="UGSYOLOv5Head",
        head_module=dict(type="UGSYOLOv5HeadModule", num_classes=3, in_channels=[16, 16, 16, 16], widen_factor=1.0,
                         num_base_priors=4, featmap_strides=[4, 8, 16, 32], num_bins=17),
        prior_generator=dict(type="mmdet.YOLOAnchorGenerator", base_sizes=ANCHORS, strides=[4, 8, 16, 32]),
        loss_bbox=dict(type="IoULoss", iou_mode="ciou", bbox_format="xywh", eps=1e-7, reduction="mean",
                       loss_weight=0.0525, return_iou=True),
        obj_level_weights=[4.0, 1.0, 0.25, 0.06], prior_match_thr=3.0,
        ugs=dict(gamma=gamma),
        test_cfg=dict(multi_label=True, nms_pre=1000, score_thr=0.001, nms=dict(type="nms", iou_threshold=0.6),
                      max_per_img=300)))
    head.init_weights()
    return head


def _two_hot_logits(grid, t):
    w = grid.encode(torch.as_tensor(t, dtype=torch.float32))        # (..., n + 1) two-hot weights
    return torch.log(w.clamp_min(1e-30))


def test_grids_cover_yolov5s_ranges(registry):
    head = _head(registry)
    xy, wh = head.grid_xy.values, head.grid_wh.values
    assert float(xy[0]) == -1.0 and float(xy[-1]) == 1.0 and len(xy) == 17
    np.testing.assert_allclose(np.diff(xy.numpy()), 2 / 16, rtol=1e-6)        # uniform: beta 0
    assert float(wh[-1]) == pytest.approx(math.log(3.0)) and float(wh[0]) == pytest.approx(-math.log(3.0))
    gaps = np.diff(wh.numpy())
    assert gaps[8] < gaps[0]                                                    # IN: denser near 0


def test_encode_decode_round_trip_and_yolov5s_decoding_by_hand(registry):
    head = _head(registry)
    offsets = torch.tensor([[0.3, 1.2], [-0.45, 0.9]])
    prior = torch.tensor([[2.0, 3.0], [1.5, 0.75]])                 # anchors in cells
    wh = prior * torch.tensor([[2.0, 0.5], [1.0, 2.9]])
    t = head.encode(offsets, wh, prior)
    np.testing.assert_allclose(t.numpy(), [[-0.2, 0.7, math.log(2.0), math.log(0.5)],
                                           [-0.95, 0.4, 0.0, math.log(2.9)]], rtol=1e-6, atol=1e-7)
    logits = torch.stack([torch.cat([_two_hot_logits(head.grid_xy, t[i, :2]), _two_hot_logits(head.grid_wh, t[i, 2:])])
                          for i in range(2)])                        # (2, 4, 17)
    box = head.decode(logits, prior)
    torch.testing.assert_close(box, torch.cat([offsets, wh], 1), rtol=1e-5, atol=1e-5)
    # the test-time path: YOLOv5's four raw values, decoded by YOLOv5's formulas written out here
    maps = torch.zeros(1, 4 * 4 * 17, 1, 1)
    maps.view(1, 4, 4, 17, 1, 1)[0, 0, :, :, 0, 0] = logits[0]       # anchor 0 of a 1x1 map
    raw = head.to_yolov5_maps([maps])[0].view(1, 4, 4, 1, 1)[0, 0, :, 0, 0]
    sig = torch.sigmoid(raw)
    xy = 2 * sig[:2] - 0.5                                           # YOLOv5: xy = 2 sigmoid - 0.5
    ratio = (2 * sig[2:]) ** 2                                       # YOLOv5: wh = (2 sigmoid)^2 x anchor
    torch.testing.assert_close(xy, offsets[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ratio * prior[0], wh[0], rtol=1e-4, atol=1e-4)


def test_assignment_by_hand(registry):
    head = _head(registry)
    # one box on an 8x8 level (stride 4): centre (10.2, 13.7) px = (2.55, 3.425) cells, 10 x 14 px;
    # level 0's anchors are 4x8, 8x12, 12x16, 16x20 px = (1, 2), (2, 3), (3, 4), (4, 5) cells
    metas = [dict(batch_input_shape=(32, 32))]
    gt = torch.tensor([[0, 2, 10.2 - 5, 13.7 - 7, 10.2 + 5, 13.7 + 7]])
    targets = head._convert_gt_to_norm_format(gt.clone(), metas)
    img, prior, gy, gx, cls, off, wh, pw = head.assign(targets, 0, 8, 8)
    # size ratios (2.5, 3.5) / anchor: anchor 0 -> (2.5, 1.75): max 2.5 < 3 kept; anchor 1 (1.25, 1.17)
    # kept; anchor 2 (0.83, 0.875) kept; anchor 3 (0.625, 0.7) kept -> all four anchors match
    # cells: own (2, 3); x frac 0.55 >= 0.5: no left; 8 - 2.55 = 5.45, frac 0.45 < 0.5: right (3, 3);
    # y frac 0.425 < 0.5 and 3.425 > 1: up (2, 2); 8 - 3.425 = 4.575, frac 0.575: no down
    got = sorted(zip(prior.tolist(), gx.tolist(), gy.tolist(), [tuple(round(v, 4) for v in o) for o in off.tolist()]))
    want = sorted((a, x, y, o) for a in range(4) for x, y, o in [(2, 3, (0.55, 0.425)), (3, 3, (-0.45, 0.425)),
                                                                 (2, 2, (0.55, 1.425))])
    assert got == want
    assert set(cls.tolist()) == {2} and set(img.tolist()) == {0}
    torch.testing.assert_close(wh, torch.tensor([[2.5, 3.5]]).expand(12, 2))
    torch.testing.assert_close(pw, torch.tensor([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 5.0]])[prior])


def test_losses_refinement_and_the_fast_batch_left_untouched(registry):
    torch.manual_seed(0)
    head = _head(registry)
    head.train()
    feats = [torch.randn(2, 16, 32 // s, 32 // s, requires_grad=True) for s in (1, 2, 4, 8)]
    boxes = torch.tensor([[0, 1, 4.0, 4, 12, 14], [1, 0, 10, 2, 30, 20]])
    kept = boxes.clone()
    losses = head.loss(feats, dict(bboxes_labels=boxes, img_metas=[dict(batch_input_shape=(128, 128))] * 2))
    assert torch.equal(boxes, kept)                     # mmyolo converts in place; the head works on a copy
    assert set(losses) == {"loss_cls", "loss_obj", "loss_ce", "loss_um", "loss_ur"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_ce"] > 0 and losses["loss_ur"] > 0
    sum(losses.values()).backward()
    assert all(f.grad is not None for f in feats)
    no_ur = _head(registry, gamma=0.0)
    no_ur.train()
    assert "loss_ur" not in no_ur.loss([f.detach() for f in feats], dict(bboxes_labels=boxes,
                                       img_metas=[dict(batch_input_shape=(128, 128))] * 2))


@pytest.mark.parametrize("size", [640, 1536])
def test_ugs_paper_configs_change_only_the_head(size):
    from mmengine.config import Config

    base = Config.fromfile(os.path.join(ROOT, "configs", "tph_yolov5", f"tph_yolov5_x_{size}_visdrone.py")).to_dict()
    ugs = Config.fromfile(os.path.join(ROOT, "configs", "tph_yolov5", f"tph_yolov5_x_ugs_{size}_visdrone.py")).to_dict()
    hb, hu = base["model"].pop("bbox_head"), ugs["model"].pop("bbox_head")
    assert base == ugs                                                  # the same recipe
    assert (hu["type"], hu["head_module"]["type"], hu["head_module"]["num_bins"]) == ("UGSYOLOv5Head",
                                                                                     "UGSYOLOv5HeadModule", 17)
    for key in ("loss_cls", "loss_obj", "loss_bbox", "prior_generator", "obj_level_weights", "prior_match_thr"):
        assert hu[key] == hb[key], key


def test_ugs_paper_config_x_scale_builds_and_steps(registry):
    from mmengine.config import Config

    from ugs.openmmlab.train import build_config

    cfg = build_config(os.path.join(ROOT, "configs", "tph_yolov5", "tph_yolov5_x_ugs_640_visdrone.py"),
                       profile="paper", gpus=4, options={"model.bbox_head.prior_generator.base_sizes": ANCHORS})
    assert isinstance(cfg, Config)
    model = registry.build(cfg.model)
    model.init_weights()
    model.train()
    losses = model.loss(torch.rand(2, 3, 64, 64), dict(bboxes_labels=torch.tensor([[0, 1, 10.0, 12, 20, 30]]),
                                                       img_metas=[dict(batch_input_shape=(64, 64))] * 2))
    assert {"loss_ce", "loss_um", "loss_ur"} <= set(losses) and torch.isfinite(sum(losses.values()))


def test_the_training_tool_runs_a_ugs_paper_config_end_to_end(tmp_path):
    # the 640 w/ UGS config through `python -m ugs.openmmlab.train` (mmyolo's scope, yolov5_collate,
    # the EMA and YOLOv5 scheduler hooks, the kit's VisDrone metric, the best checkpoint), the
    # model at a small width to keep it short; anchors from `ugs data anchors` on the set itself
    import json
    import subprocess
    import sys

    from ugs.data import make_synthetic_set
    from ugs.data.anchors import box_sizes, fit_anchors

    data = tmp_path / "data"
    make_synthetic_set(data, num_train=8, num_val=2, image_size=96, seed=1)
    anchors = fit_anchors(box_sizes(data / "annotations" / "train.json", 640)[0], generations=20)["anchors"]
    small = [f"model.{m}.{k}={v}" for m in ("backbone", "neck") for k, v in (("deepen_factor", 0.33),
                                                                            ("widen_factor", 0.25))]
    cmd = [sys.executable, "-m", "ugs.openmmlab.train", "configs/tph_yolov5/tph_yolov5_x_ugs_640_visdrone.py",
           "--data-root", str(data), "--work-dir", str(tmp_path / "w"), "--epochs", "1", "--gpus", "1",
           "--cfg-options", f"model.bbox_head.prior_generator.base_sizes={json.dumps(anchors)}", *small,
           "model.bbox_head.head_module.widen_factor=0.25", "train_dataloader.batch_size=4",
           "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=false",
           "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=false"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert 0.0 <= metrics["AP"] <= 1.0 and metrics["num_images_predicted"] == 2
    assert (tmp_path / "w" / "best_visdrone_AP_epoch_1.pth").is_file()
    scalars = [json.loads(line) for p in (tmp_path / "w").glob("*/vis_data/scalars.json") for line in p.open()]
    train = [s for s in scalars if "loss_ur" in s]
    assert train and all(math.isfinite(s["loss_ce"]) and math.isfinite(s["loss_ur"]) for s in train)


def test_quick_profile_shrinks_the_run_not_the_method(tmp_path):
    from ugs.data import make_synthetic_set
    from ugs.data.anchors import box_sizes, fit_anchors
    from ugs.openmmlab.train import build_config

    data = tmp_path / "data"
    make_synthetic_set(data, num_train=8, num_val=2, image_size=96, seed=1)
    paper = build_config(os.path.join(ROOT, "configs", "tph_yolov5", "tph_yolov5_x_ugs_640_visdrone.py"),
                         profile="paper", data_root=str(data))
    cfg = build_config(os.path.join(ROOT, "configs", "tph_yolov5", "tph_yolov5_x_ugs_640_visdrone.py"),
                       profile="quick", data_root=str(data), image_size=128, epochs=2, seed=3)
    m, p = cfg.model, paper.model
    assert (m.backbone.deepen_factor, m.backbone.widen_factor, m.bbox_head.head_module.widen_factor) == (0.33, 0.25, 0.25)
    assert m.bbox_head.type == p.bbox_head.type and m.bbox_head.ugs == p.bbox_head.ugs       # the method stays
    assert m.bbox_head.loss_cls == p.bbox_head.loss_cls and m.bbox_head.loss_bbox == p.bbox_head.loss_bbox
    assert m.bbox_head.loss_obj.loss_weight == pytest.approx(p.bbox_head.loss_obj.loss_weight * (128 / 640) ** 2)
    # anchors: TPH-YOLOv5's rule on the training set at the quick size, as the tool is told (seed)
    want = fit_anchors(box_sizes(data / "annotations" / "train.json", 128)[0], seed=3)["anchors"]
    assert m.bbox_head.prior_generator.base_sizes == [[list(a) for a in level] for level in want]
    steps = list(cfg.train_dataloader.dataset.pipeline)
    mosaics = [s for s in steps if s.type == "Mosaic"] + [s for s in steps if s.type == "YOLOv5MixUp"][0].pre_transform[2:3]
    assert [tuple(s.img_scale) for s in mosaics] == [(128, 128), (128, 128)]
    assert [tuple(s.border) for s in steps if s.type == "YOLOv5RandomAffine"] == [(-64, -64)]
    assert [tuple(s.scale) for s in cfg.val_dataloader.dataset.pipeline if "scale" in s] == [(128, 128), (128, 128)]
    assert cfg.val_dataloader.dataset.batch_shapes_cfg.img_size == 128
    assert (cfg.train_dataloader.batch_size, cfg.optim_wrapper.accumulative_counts) == (4, 1)
    hook = cfg.default_hooks.param_scheduler
    assert (hook.max_epochs, hook.warmup_epochs, hook.warmup_mim_iter) == (2, 0.2, 0)
    assert [h.gamma for h in cfg.custom_hooks if h.type == "EMAHook"] == [10]
    assert cfg.optim_wrapper.optimizer.lr == paper.optim_wrapper.optimizer.lr       # Adam 3e-4 stays
