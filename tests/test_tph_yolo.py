"""TPH-YOLOv5's blocks (``ugs.yolo.tph``) against numbers worked out independently, and the
detector built with four YOLOv5 heads at strides 4-32: its channels at x scale derived by hand
from YOLOv5's multipliers, one training step and one inference on the CPU (the paper's x scale
at a small input)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mmyolo")

import torch.nn.functional as F  # noqa: E402

from ugs.yolo import tph  # noqa: E402


def test_cbam_by_hand():
    from mmyolo.models.plugins import CBAM

    cbam = CBAM(2, reduce_ratio=2, kernel_size=3)       # MLP 2 -> 1 -> 2, 3x3 spatial conv
    fc1, fc2 = cbam.channel_attention.fc[0].conv, cbam.channel_attention.fc[1].conv
    conv = cbam.spatial_attention.conv.conv
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([0.5, -1.0]).view(1, 2, 1, 1)); fc1.bias.fill_(0.1)
        fc2.weight.copy_(torch.tensor([2.0, -0.5]).view(2, 1, 1, 1)); fc2.bias.copy_(torch.tensor([0.0, 0.3]))
        conv.weight.zero_(); conv.weight[0, 0, 1, 1] = 1.0; conv.weight[0, 1, 1, 1] = -0.5; conv.bias.fill_(0.2)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [2.0, 1.0]]]])
    # channel attention by hand: avg = (2.5, 0.5), max = (4, 2)
    sig = lambda v: 1 / (1 + math.exp(-v))   # noqa: E731
    relu = lambda v: max(v, 0.0)             # noqa: E731
    h_avg, h_max = relu(0.5 * 2.5 - 1.0 * 0.5 + 0.1), relu(0.5 * 4 - 1.0 * 2 + 0.1)     # 0.85, 0.1
    mc = [sig((2.0 * h_avg) + (2.0 * h_max)), sig((-0.5 * h_avg + 0.3) + (-0.5 * h_max + 0.3))]
    y = np.array(x[0].tolist()) * np.array(mc)[:, None, None]
    # spatial attention: centre taps only (1 x mean - 0.5 x max + 0.2) at every pixel
    ms = np.vectorize(sig)(y.mean(0) - 0.5 * y.max(0) + 0.2)
    want = y * ms[None]
    np.testing.assert_allclose(cbam(x)[0].detach().numpy(), want, rtol=1e-6, atol=1e-7)


def test_encoder_layer_against_scaled_dot_product_attention():
    torch.manual_seed(0)
    c, heads, length, batch = 8, 4, 5, 2
    layer = tph.TransformerEncoderLayer(c, heads).eval()           # eval: dropout off
    x = torch.randn(length, batch, c)
    # by hand: pre-LN, the bias-free q/k/v maps, then the attention's own in-projection per head
    ln = lambda t, m: F.layer_norm(t, (c,), m.weight, m.bias, m.eps)   # noqa: E731
    y = ln(x, layer.ln1)
    wq, wk, wv = layer.attn.in_proj_weight.chunk(3)
    bq, bk, bv = layer.attn.in_proj_bias.chunk(3)
    q = (y @ layer.q.weight.T) @ wq.T + bq
    k = (y @ layer.k.weight.T) @ wk.T + bk
    v = (y @ layer.v.weight.T) @ wv.T + bv
    split = lambda t: t.reshape(length, batch, heads, c // heads).permute(1, 2, 0, 3)   # (B, h, L, d)  # noqa: E731
    att = F.scaled_dot_product_attention(split(q), split(k), split(v))
    att = att.permute(2, 0, 1, 3).reshape(length, batch, c) @ layer.attn.out_proj.weight.T + layer.attn.out_proj.bias
    x1 = x + att
    want = x1 + torch.relu(ln(x1, layer.ln2) @ layer.fc1.weight.T) @ layer.fc2.weight.T
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)


def test_transformer_block_treats_positions_as_a_set_of_tokens():
    # attention and the per-token maps commute with a permutation of the positions, so permuting
    # the feature map's pixels permutes the output the same way (the tokens are the H*W pixels)
    torch.manual_seed(1)
    block = tph.TransformerBlock(6, 8, num_heads=4, num_layers=2).eval()
    x = torch.randn(2, 6, 3, 4)
    perm = torch.randperm(12)
    shuffle = lambda t: t.flatten(2)[:, :, perm].reshape(t.shape)   # noqa: E731
    torch.testing.assert_close(block(shuffle(x)), shuffle(block(x)), rtol=1e-5, atol=1e-5)
    assert block(x).shape == (2, 8, 3, 4) and block.conv is not None


def test_c3tr_is_c3_with_a_transformer_in_the_main_branch():
    torch.manual_seed(2)
    m = tph.C3TR(16, 24, num_blocks=2).eval()
    assert isinstance(m.blocks, tph.TransformerBlock) and len(m.blocks.layers) == 2
    assert m.blocks.layers[0].attn.num_heads == 4 and m.blocks.pos.in_features == 12   # 24 x 0.5
    x = torch.randn(1, 16, 5, 5)
    want = m.final_conv(torch.cat([m.blocks(m.main_conv(x)), m.short_conv(x)], 1))
    torch.testing.assert_close(m(x), want)


def _anchors(n_levels=4, per_level=4):
    # placeholders for the build tests only (the paper configs take k-means anchors of the data)
    return [[(4 * 2 ** lvl * (j + 1), 4 * 2 ** lvl * (j + 2)) for j in range(per_level)] for lvl in range(n_levels)]


def _detector(deepen, widen, num_classes=10):
    return dict(
        type="YOLODetector",
        data_preprocessor=dict(type="YOLOv5DetDataPreprocessor", mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0],
                               bgr_to_rgb=True),
        backbone=dict(type="TPHCSPDarknet", deepen_factor=deepen, widen_factor=widen),
        neck=dict(type="TPHPAFPN", deepen_factor=deepen, widen_factor=widen, in_channels=[128, 256, 512, 1024]),
        bbox_head=dict(
            type="YOLOv5Head",
            head_module=dict(type="YOLOv5HeadModule", num_classes=num_classes, in_channels=[128, 256, 512, 1024],
                             widen_factor=widen, num_base_priors=4, featmap_strides=[4, 8, 16, 32]),
            prior_generator=dict(type="mmdet.YOLOAnchorGenerator", base_sizes=_anchors(), strides=[4, 8, 16, 32]),
            obj_level_weights=[4.0, 1.0, 0.25, 0.06], prior_match_thr=3.0),
        test_cfg=dict(multi_label=True, nms_pre=1000, score_thr=0.001, nms=dict(type="nms", iou_threshold=0.6),
                      max_per_img=300))


@pytest.fixture(scope="module")
def registry():
    from mmyolo.registry import MODELS
    from mmyolo.utils import register_all_modules

    register_all_modules()
    return MODELS


@pytest.mark.parametrize("scale, deepen, widen, channels, tr_layers", [
    ("x", 1.33, 1.25, (160, 320, 640, 1280), 4),     # ceil(c x 1.25 / 8) x 8; round(3 x 1.33) = 4
    ("s", 0.33, 0.50, (64, 128, 256, 512), 1),       # round(3 x 0.33) = 1
])
def test_backbone_and_neck_levels_at_each_scale(registry, scale, deepen, widen, channels, tr_layers):
    backbone = registry.build(dict(type="TPHCSPDarknet", deepen_factor=deepen, widen_factor=widen))
    neck = registry.build(dict(type="TPHPAFPN", deepen_factor=deepen, widen_factor=widen))
    backbone.eval()            # (mmyolo's backbone.train() returns None, so no chaining)
    neck.eval()
    feats = backbone(torch.randn(1, 3, 64, 96))
    outs = neck(feats)
    want = [(1, ch, 64 // s, 96 // s) for ch, s in zip(channels, (4, 8, 16, 32))]
    assert [tuple(f.shape) for f in feats] == want and [tuple(o.shape) for o in outs] == want
    last_stage = backbone.stage4
    assert isinstance(last_stage[1], tph.C3TR) and len(last_stage[1].blocks.layers) == tr_layers
    assert type(last_stage[2]).__name__ == "SPPFBottleneck"
    assert isinstance(neck.csp[3], tph.C3TR) and len(neck.csp[3].blocks.layers) == tr_layers
    assert [len(c.blocks) for c in neck.csp[:3]] == [tr_layers] * 3
    assert [type(m).__name__ for m in neck.cbam] == ["CBAM"] * 4
    assert [sp.poolings[0].kernel_size for sp in neck.spp] == [5, 5, 3, 3]


@pytest.mark.parametrize("deepen, widen, size", [(0.33, 0.25, 128), (1.33, 1.25, 64)])
def test_detector_with_four_heads_steps_and_predicts(registry, deepen, widen, size):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    torch.manual_seed(3)
    from mmengine.config import ConfigDict

    model = registry.build(ConfigDict(_detector(deepen, widen)))      # as a config file gives it
    model.init_weights()
    assert model.bbox_head.num_levels == 4 and list(model.bbox_head.featmap_strides) == [4, 8, 16, 32]
    assert model.bbox_head.num_base_priors == 4
    images = torch.randint(0, 255, (2, 3, size, size)).float()
    boxes = torch.tensor([[0, 1, 10.0, 12, 20, 30], [0, 3, 40, 40, 60, 52], [1, 0, 5, 5, 12, 9]])
    metas = [dict(batch_input_shape=(size, size), img_shape=(size, size)) for _ in range(2)]
    model.train()
    losses = model.loss(images / 255.0, dict(bboxes_labels=boxes, img_metas=metas))
    total = sum(v for v in losses.values())
    assert torch.isfinite(total) and set(losses) == {"loss_cls", "loss_obj", "loss_bbox"}
    total.backward()
    head = model.bbox_head.head_module.convs_pred
    assert len(head) == 4 and all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in head)
    model.eval()
    samples = [DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                           batch_input_shape=(size, size), pad_param=np.zeros(4, np.float32)))
               for _ in range(2)]
    with torch.no_grad():
        out = model.predict(images / 255.0, samples)
    assert len(out) == 2 and isinstance(out[0].pred_instances, InstanceData)
    assert out[0].pred_instances.bboxes.shape[1] == 4


# ----------------------------------------------------------------- the paper configs (Table 2)

import os  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "tph_yolov5")


@pytest.fixture(scope="module")
def visdrone_like(tmp_path_factory):
    from ugs.data import make_synthetic_set

    root = tmp_path_factory.mktemp("tph")
    make_synthetic_set(root, num_train=8, num_val=2, image_size=96, seed=4)
    return root


def _paper_cfg(size, data_root, anchors=None, **options):
    from ugs.openmmlab.train import build_config

    if anchors is not None:
        options["model.bbox_head.prior_generator.base_sizes"] = anchors
    return build_config(os.path.join(CONFIGS, f"tph_yolov5_x_{size}_visdrone.py"), profile="paper",
                        data_root=str(data_root), gpus=4, options=options)


def _build(registry, cfg_model):
    from mmengine.registry import init_default_scope

    import ugs.openmmlab.runtime  # noqa: F401
    import ugs.yolo.runtime  # noqa: F401

    init_default_scope("mmyolo")
    return registry.build(cfg_model)


@pytest.mark.parametrize("size, batch, accumulate, obj_gain", [(640, 4, 4, 0.15 * 0.75), (1536, 1, 16, 0.15 * 2.4 ** 2 * 0.75)])
def test_paper_configs_recipe_and_missing_anchors(registry, visdrone_like, size, batch, accumulate, obj_gain):
    cfg = _paper_cfg(size, visdrone_like)
    # 16 (640) or 4 (1536) images per micro-step over 4 GPUs, accumulated to YOLOv5's nominal 64
    assert cfg.train_dataloader.batch_size == batch == cfg.optim_wrapper.optimizer.batch_size_per_gpu
    assert cfg.optim_wrapper.accumulative_counts == accumulate and batch * 4 * accumulate == 64
    head = cfg.model.bbox_head
    assert head.loss_obj.loss_weight == pytest.approx(obj_gain)            # 0.15 x (size/640)^2 x 3/4
    assert head.loss_cls.loss_weight == pytest.approx(0.18 * 10 / 80 * 0.75)
    assert head.loss_bbox.loss_weight == pytest.approx(0.07 * 0.75)
    assert (head.loss_cls.pos_weight, head.loss_obj.pos_weight) == (0.631, 0.911)
    assert head.obj_level_weights == [4.0, 1.0, 0.25, 0.06] and head.prior_match_thr == 3.0
    assert cfg.optim_wrapper.optimizer.type == "Adam" and tuple(cfg.optim_wrapper.optimizer.betas) == (0.843, 0.999)
    sched = cfg.default_hooks.param_scheduler
    assert (sched.scheduler_type, sched.lr_factor, sched.max_epochs, sched.warmup_epochs) == ("cosine", 0.12, 80, 2)
    mosaic = cfg.train_dataloader.dataset.pipeline[2]
    assert mosaic.type == "Mosaic" and tuple(mosaic.img_scale) == (size, size)
    assert cfg.val_evaluator.type == "mmdet.VisDroneMetric" and cfg.val_evaluator.max_dets == 500
    assert cfg.val_evaluator.ann_file == os.path.join(str(visdrone_like), "annotations", "val.json")
    with pytest.raises(ValueError, match="ugs data anchors"):
        _build(registry, cfg.model)


def test_paper_config_x_scale_builds_and_steps_with_fitted_anchors(registry, visdrone_like):
    from ugs.data.anchors import box_sizes, fit_anchors

    wh, _ = box_sizes(visdrone_like / "annotations" / "train.json", 640)
    anchors = fit_anchors(wh, generations=20)["anchors"]
    model = _build(registry, _paper_cfg(640, visdrone_like, anchors=anchors).model)
    model.init_weights()
    assert model.bbox_head.num_levels == 4 and model.bbox_head.num_base_priors == 4
    assert sum(p.numel() for p in model.parameters()) > 100e6          # x scale: ~58M backbone + ~55M neck
    model.train()
    images = torch.rand(2, 3, 64, 64)
    boxes = torch.tensor([[0, 1, 10.0, 12, 20, 30], [1, 0, 5, 5, 12, 9]])
    losses = model.loss(images, dict(bboxes_labels=boxes, img_metas=[dict(batch_input_shape=(64, 64))] * 2))
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_the_configs_training_pipeline_feeds_the_model(registry, visdrone_like):
    # the 640 config's own data path: mosaic + affine + mixup + HSV + flip, yolov5_collate, the
    # data preprocessor, then the loss (the model at a small scale to keep the test short)
    from mmyolo.datasets.utils import yolov5_collate
    from mmyolo.registry import DATASETS

    from ugs.data.anchors import box_sizes, fit_anchors

    anchors = fit_anchors(box_sizes(visdrone_like / "annotations" / "train.json", 640)[0], generations=20)["anchors"]
    cfg = _paper_cfg(640, visdrone_like, anchors=anchors, **{"model.backbone.deepen_factor": 0.33,
                     "model.backbone.widen_factor": 0.25, "model.neck.deepen_factor": 0.33,
                     "model.neck.widen_factor": 0.25, "model.bbox_head.head_module.widen_factor": 0.25})
    model = _build(registry, cfg.model)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = yolov5_collate([dataset[0], dataset[1]])
    assert batch["data_samples"]["bboxes_labels"].shape[1] == 6 and batch["inputs"].shape[-2:] == (640, 640)
    data = model.data_preprocessor(batch, training=True)
    model.train()
    losses = model.loss(data["inputs"], data["data_samples"])
    assert torch.isfinite(sum(losses.values()))


def test_pos_weighted_bce_by_hand():
    from ugs.yolo.losses import PosWeightedBCELoss

    x, y = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 0.5])
    sp = lambda v: math.log1p(math.exp(v))     # softplus: -log sigmoid(-v) = sp(v), -log sigmoid(v) = sp(-v)  # noqa: E731
    p = 0.631
    # -(p y log s(x) + (1 - y) log(1 - s(x))) = p y sp(-x) + (1 - y) sp(x)
    want = [p * sp(0.0), sp(2.0), p * 0.5 * sp(1.0) + 0.5 * sp(-1.0)]
    loss = PosWeightedBCELoss(pos_weight=p, loss_weight=2.0)
    assert loss(x, y).item() == pytest.approx(2.0 * sum(want) / 3, rel=1e-6)
    assert PosWeightedBCELoss(p, reduction="sum")(x, y).item() == pytest.approx(sum(want), rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        PosWeightedBCELoss(p, reduction="avg")
