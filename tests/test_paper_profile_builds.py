"""Every config the README gives a paper command for, built exactly as the paper profile
merges it (R-50, the paper's heads and grids; only the ImageNet weights are not loaded), then
one training step and one inference on a tiny batch (one 192x256 image, three boxes; DINO
128x160: its 5-scale encoder and 900 queries dominate the CPU time).

Lean by design: the configs of one architecture (same backbone and neck: FCOS, GFL, the Faster
/ Cascade R-CNN family of Tables 1, 6 and 7) share one backbone + neck forward (the first
config of the group runs it; the others read its features as fresh leaf tensors, so their
heads and the refinement step see real R-50 FPN features). DINO runs whole.

Checked per config: every loss finite, the backward reaches every trainable parameter of every
UGS (or Gaussian) head, the regression outputs have the width the config's grid implies
(``4 (n + 1)`` per box, times the anchors or classes), and inference returns finite boxes.
"""
import os

import pytest
import torch

pytest.importorskip("mmdet")
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import ugs.openmmlab.runtime  # noqa: E402,F401  (registers the UGS modules)
from ugs.ablation import TABLE6_CONFIGS  # noqa: E402
from ugs.openmmlab.train import build_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE1 = ["fcos/fcos_r50_fpn_1x_visdrone.py", "fcos/fcos_r50_fpn_ugs_1x_visdrone.py",
          "fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py",                      # the FCOS control
          "gfl/gfl_r50_fpn_1x_visdrone.py", "gfl/gfl_r50_fpn_ugs_1x_visdrone.py",
          "faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py", "faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py",
          "cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py", "cascade_rcnn/cascade_rcnn_r50_fpn_ugs_1x_visdrone.py",
          "dino/dino_5scale_r50_24e_visdrone.py", "dino/dino_5scale_r50_ugs_24e_visdrone.py"]
# Table 7's points are --cfg-options of faster_rcnn_r50_fpn_ugs_1x_visdrone.py (in TABLE1)
# Table 4: Faster R-CNN, baseline / w/ UGS, on VOC07+12 and COCO (mmdet's recipes)
TABLE4 = [f"table4/faster_rcnn_{r}_fpn{u}_1x_{d}.py" for d in ("voc0712", "coco") for r in ("r50", "r101")
          for u in ("", "_ugs")]
CONFIGS = list(dict.fromkeys(TABLE1 + [p.removeprefix("configs/") for p in TABLE6_CONFIGS.values()] + TABLE4))
SIZE = {"dense": (192, 256), "DINO": (128, 160)}   # small images; the architecture is the paper's
_FEATURES = {}   # architecture key -> the first config's backbone + neck output (detached)


def _batch(model, H, W):
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, H, W), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W), scale_factor=(1.0, 1.0),
                                         img_id=0, img_path="synthetic.jpg"))
    # a tiny, a small and a medium object (pixels, xyxy); VisDrone classes 0, 3, 9
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[20.0, 30.0, 30.0, 42.0], [60.0, 70.0, 86.0, 100.0],
                                                            [80.0, 20.0, 150.0, 90.0]]),
                                       labels=torch.tensor([0, 3, 9]))
    sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), True)
    return data["inputs"], data["data_samples"]


def _arch_key(cfg):
    return repr(cfg.model.backbone) + repr(cfg.model.get("neck"))


def _ugs_heads(model):
    return [(name, m) for name, m in model.named_modules()
            if type(m).__name__.startswith(("UGS", "Gaussian")) and "Head" in type(m).__name__]


def _expected_widths(cfg, model):
    """(module, attribute, expected width) from the merged config's numbers."""
    m, out = cfg.model, []
    if m.get("bbox_head") is not None and "ugs" in m.bbox_head:
        n = m.bbox_head.ugs.n
        if m.bbox_head.type == "UGSFCOSHead":
            out.append((model.bbox_head.conv_reg, "out_channels", 4 * (n + 1)))
        elif m.bbox_head.type == "UGSGFLHead":
            out.append((model.bbox_head.gfl_reg, "out_channels", 4 * (n + 1)))
        elif m.bbox_head.type == "UGSDINOHead":
            out += [(b[-1], "out_features", 4 * (n + 1)) for b in model.bbox_head.reg_branches]
    if m.get("rpn_head") is not None and "ugs" in m.rpn_head:
        anchors = len(m.rpn_head.anchor_generator.ratios) * len(m.rpn_head.anchor_generator.scales)
        out.append((model.rpn_head.rpn_reg, "out_channels", anchors * 4 * (m.rpn_head.ugs.n + 1)))
    if m.get("roi_head") is not None:
        heads = m.roi_head.bbox_head if isinstance(m.roi_head.bbox_head, list) else [m.roi_head.bbox_head]
        built = model.roi_head.bbox_head if isinstance(m.roi_head.bbox_head, list) else [model.roi_head.bbox_head]
        for h, b in zip(heads, built):
            if "ugs" in h:
                per_box = 1 if h.reg_class_agnostic else h.num_classes
                out.append((b.fc_reg, "out_features", per_box * 4 * (h.ugs.n + 1)))
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_paper_config_builds_steps_and_predicts(config, tmp_path):
    cfg = build_config(os.path.join(ROOT, "configs", config), profile="paper", work_dir=str(tmp_path), gpus=4)
    # the paper's R-50 (R-101 where Table 4 names it), not the quick profile's R-18
    assert cfg.model.backbone.depth == (101 if "r101" in config else 50)
    cfg.model.backbone.init_cfg = None                          # no download of ImageNet weights
    model = MODELS.build(cfg.model)
    model.init_weights()
    if "ugs" in repr(cfg.model):                                # init zeroes the reg layers: uniform
        with torch.no_grad():                                   # distributions have a zero entropy
            for _, head in _ugs_heads(model):                   # gradient (Eq. 15's direction 0)
                for p in head.parameters():
                    p.add_(1e-2 * torch.randn_like(p))
    model.train()
    inputs, samples = _batch(model, *SIZE["DINO" if "DINO" in cfg.model.type else "dense"])
    key = _arch_key(cfg)
    if "DINO" not in cfg.model.type:                            # share one backbone + neck forward
        if key not in _FEATURES:
            _FEATURES[key] = [f.detach() for f in model.extract_feat(inputs)]
        model.extract_feat = lambda _: [f.clone().requires_grad_(True) for f in _FEATURES[key]]
    losses = model.loss(inputs, samples)
    total, logged = model.parse_losses(losses)
    bad = {k: float(v) for k, v in logged.items() if not torch.isfinite(torch.as_tensor(v))}
    assert not bad and torch.isfinite(total), f"{config}: non-finite losses {bad}"
    total.backward()
    for name, head in _ugs_heads(model):
        missing = [n for n, p in head.named_parameters() if p.requires_grad
                   and (p.grad is None or not torch.isfinite(p.grad).all())]
        assert not missing, f"{config}: {name} parameters without a finite gradient: {missing}"
    if "ugs" in repr(cfg.model):
        assert _ugs_heads(model), f"{config}: a UGS config built no UGS head"
    for module, attr, width in _expected_widths(cfg, model):
        assert getattr(module, attr) == width, f"{config}: {module} {attr} {getattr(module, attr)} != {width}"
    model.eval()
    with torch.no_grad():
        pred = model.predict(inputs, samples, rescale=False)[0].pred_instances
    assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4 and torch.isfinite(pred.bboxes).all()
