"""Table 3's eight configs (four rotated detectors, baseline and w/ UGS, mmrotate 1.0.0rc1) on
the CPU (the CUDA-only ops through ``ugs.rotated.cpu_ops``, installed by the configs'
``custom_imports`` target ``ugs.rotated.runtime``):

* the **paper profile** as merged by the training tool (R-50, the paper's heads, grids and
  test settings; only the ImageNet weights are not loaded), one training step and one
  inference on one 256 x 256 image with three rotated boxes;
* the **quick profile** on the synthetic SODA-A crops (``ugs data synth-soda-a`` + ``ugs data
  crop``), through the configs' own data pipeline: one training step on a real batch of
  ``SODAACropDataset`` and one inference whose predictions the SODA-A metric accepts.

Checked per config: every loss finite, the UGS heads' regression outputs have the width the
config's grids imply, the backward reaches every trainable parameter of the UGS heads,
inference returns finite (N, 5) rotated boxes.
"""
import math
import os

import pytest
import torch

pytest.importorskip("mmrotate")
import ugs.openmmlab.compat  # noqa: E402,F401
from mmengine.registry import DefaultScope  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = [f"configs/table3/{d}_r50_fpn{u}_1x_sodaa.py"
           for d in ("rotated_retinanet", "rotated_fcos", "oriented_reppoints", "oriented_rcnn")
           for u in ("", "_ugs")]


@pytest.fixture(scope="module", autouse=True)
def mmrotate_scope():
    import ugs.openmmlab.runtime  # noqa: F401
    import ugs.rotated.runtime  # noqa: F401
    with DefaultScope.overwrite_default_scope("mmrotate"):
        yield


@pytest.fixture(scope="module")
def soda_root(tmp_path_factory):
    from ugs.cli import main
    root = tmp_path_factory.mktemp("sodaa")
    assert main(["data", "synth-soda-a", str(root), "--num-train", "2", "--num-val", "1",
                 "--num-test", "1"]) == 0
    for split in ("train", "test"):
        assert main(["data", "crop", str(root / "converted" / f"{split}.json"),
                     str(root / "crops" / split)]) == 0
    return str(root)


def _build(config, **kw):
    from ugs.openmmlab.train import build_config
    return build_config(os.path.join(ROOT, config), **kw)


def _light_inference(cfg):
    """Inference of an untrained model is rotated NMS over thousands of overlapping boxes (mmcv's
    single-threaded CPU kernel, ~1.5 s per image): the tests keep 200 candidates and 100
    detections (the configs' 2,000 are checked by value in the paper-profile test)."""
    t = cfg.model.test_cfg
    if "rpn" in t:
        t.rpn.update(nms_pre=200, max_per_img=200)
        t.rcnn.update(max_per_img=100)
    else:
        t.update(nms_pre=200, max_per_img=100)


def _model(cfg):
    from mmrotate.registry import MODELS
    _light_inference(cfg)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


#: parameters a stock head creates and never reads (mmdet's RepPointsHead, the parent of
#: mmrotate's OrientedRepPointsHead: its moment transform is not used for oriented point sets)
STOCK_UNUSED = {"moment_transfer"}


def _ugs_heads(model):
    return [m for m in model.modules() if type(m).__name__.startswith("UGS") and "Head" in type(m).__name__]


def _expected_widths(cfg, model):
    """(module, expected output width) worked out from the merged config's numbers."""
    m, out = cfg.model, []
    head = m.get("bbox_head")
    if head is not None and head.type == "UGSRotatedRetinaHead":
        g = head.anchor_generator
        anchors = len(g.ratios) * g.scales_per_octave
        out.append((model.bbox_head.retina_reg, anchors * 5 * (head.ugs.n + 1)))
    if head is not None and head.type == "UGSRotatedFCOSHead":
        out += [(model.bbox_head.conv_reg, 4 * (head.ugs.n + 1)),
                (model.bbox_head.conv_angle, head.ugs.n + 1)]
    if m.get("rpn_head") is not None and m.rpn_head.type == "UGSOrientedRPNHead":
        g = m.rpn_head.anchor_generator
        out.append((model.rpn_head.rpn_reg, len(g.ratios) * len(g.scales) * 6 * (m.rpn_head.ugs.n + 1)))
    if m.get("roi_head") is not None and m.roi_head.bbox_head.type == "UGSRotatedShared2FCBBoxHead":
        out.append((model.roi_head.bbox_head.fc_reg, 5 * (m.roi_head.bbox_head.ugs.n + 1)))
    return out


def _hand_batch(model, qbox=False, size=256):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmrotate.structures.bbox import RotatedBoxes
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         scale_factor=(1.0, 1.0), img_id=0, img_path="x.jpg"))
    # a tiny, a small and a medium object (cx, cy, w, h, angle; le90), SODA-A classes 2, 4, 0
    boxes = RotatedBoxes(torch.tensor([[40.0, 50.0, 12.0, 6.0, 0.3], [120.0, 90.0, 24.0, 10.0, -1.2],
                                       [180.0, 180.0, 60.0, 40.0, math.pi / 4]]))
    empty = RotatedBoxes(torch.zeros(0, 5))
    if qbox:   # Oriented RepPoints reads quadrilaterals (its pipeline keeps them)
        boxes, empty = boxes.convert_to("qbox"), empty.convert_to("qbox")
    sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([2, 4, 0]))
    sample.ignored_instances = InstanceData(bboxes=empty, labels=torch.zeros(0, dtype=torch.long))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), True)
    return data["inputs"], data["data_samples"]


def _step_and_predict(cfg, model, inputs, samples):
    model.train()
    losses = model.loss(inputs, samples)
    total = 0
    for key, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if "loss" in key:
                assert torch.isfinite(v).all(), (cfg.filename, key, v)
                total = total + v.sum()
    model.zero_grad()
    total.backward()
    for head in _ugs_heads(model):
        missing = [n for n, p in head.named_parameters()
                   if p.requires_grad and p.grad is None and n not in STOCK_UNUSED]
        assert not missing, (type(head).__name__, missing[:5])
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    boxes = results[0].pred_instances.bboxes
    boxes = boxes.tensor if hasattr(boxes, "tensor") else boxes
    assert boxes.dim() == 2 and boxes.shape[1] == 5 and torch.isfinite(boxes).all()
    return losses


@pytest.mark.parametrize("config", CONFIGS)
def test_paper_profile_builds_steps_and_predicts(config):
    cfg = _build(config, profile="paper")
    assert cfg.train_dataloader.batch_size == 4 and cfg.model.backbone.depth == 50
    test_cfg = cfg.model.test_cfg.get("rcnn", cfg.model.test_cfg)
    assert test_cfg.max_per_img == 2000 and test_cfg.nms.type == "nms_rotated"
    assert cfg.val_evaluator.type == "SODAAMetric" and cfg.val_evaluator.max_dets == 20000
    model = _model(cfg)
    for module, width in _expected_widths(cfg, model):
        assert module.weight.shape[0] == width, (config, module)
    if "_ugs_" in config:
        assert _ugs_heads(model), config
    inputs, samples = _hand_batch(model, qbox="reppoints" in config)
    losses = _step_and_predict(cfg, model, inputs, samples)
    if "_ugs_" in config:
        keys = " ".join(losses)
        assert "loss_ce" in keys and "loss_um" in keys and "loss_ur" in keys, sorted(losses)


@pytest.mark.parametrize("config", CONFIGS)
def test_quick_profile_on_synthetic_crops(config, soda_root, tmp_path):
    from mmengine.runner import Runner
    cfg = _build(config, profile="quick", data_root=soda_root, epochs=1, image_size=256,
                 work_dir=str(tmp_path))
    assert cfg.train_dataloader.dataset.data_root == os.path.join(soda_root, "crops", "train", "")
    assert cfg.val_evaluator.ann_file == os.path.join(soda_root, "converted", "test.json")
    assert cfg.train_cfg.val_interval == 1       # evaluates after its (only) epoch
    model = _model(cfg)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    data = model.data_preprocessor(batch, True)
    assert data["inputs"].shape[-1] == 256
    _step_and_predict(cfg, model, data["inputs"], data["data_samples"])
