"""How large UGS's box terms are against YOLOv5's CIoU loss in TPH-YOLOv5's head, at initialisation.

    python benchmarks/yolo_loss_scale.py [--seeds 5]

Both heads (``TPHYOLOv5Head`` with CIoU, ``UGSYOLOv5Head`` without the refinement term) are built
with the same seed on the same random FPN features and boxes (two 256 px images, 20 boxes of
4-44 px, 4 levels, TPH-YOLOv5's loss settings), and the ratio ``(loss_ce + loss_um) / loss_bbox``
is printed per seed: the scale a loss-weight rule would have to correct."""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ANCHORS = [[(4 * 2 ** lvl * (j + 1), 4 * 2 ** lvl * (j + 2)) for j in range(4)] for lvl in range(4)]


def _head(registry, head_type, module_type, extra, ugs=None):
    from mmengine.config import ConfigDict

    cfg = dict(type=head_type,
               head_module=dict(type=module_type, num_classes=10, in_channels=[32, 64, 128, 256], widen_factor=1.0,
                                num_base_priors=4, featmap_strides=[4, 8, 16, 32], **extra),
               prior_generator=dict(type="mmdet.YOLOAnchorGenerator", base_sizes=ANCHORS, strides=[4, 8, 16, 32]),
               loss_bbox=dict(type="IoULoss", iou_mode="ciou", bbox_format="xywh", eps=1e-7, reduction="mean",
                              loss_weight=0.0525, return_iou=True),
               obj_level_weights=[4.0, 1.0, 0.25, 0.06], prior_match_thr=3.0)
    if ugs is not None:
        cfg["ugs"] = ugs
    head = registry.build(ConfigDict(cfg))
    head.init_weights()
    head.train()
    return head


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmyolo.registry import MODELS
    from mmyolo.utils import register_all_modules

    import ugs.openmmlab.runtime  # noqa: F401
    import ugs.yolo.runtime  # noqa: F401

    register_all_modules()
    init_default_scope("mmyolo")
    MMLogger.get_current_instance().setLevel("ERROR")     # init_weights logs every parameter
    ratios = []
    for seed in range(args.seeds):
        g = torch.Generator().manual_seed(seed)
        feats = [torch.randn(2, c, 256 // s, 256 // s, generator=g) for c, s in zip((32, 64, 128, 256), (4, 8, 16, 32))]
        xy, wh = torch.rand(20, 2, generator=g) * 200, torch.rand(20, 2, generator=g) * 40 + 4
        boxes = torch.cat([torch.randint(0, 2, (20, 1), generator=g).float(),
                           torch.randint(0, 10, (20, 1), generator=g).float(), xy, xy + wh], 1)
        metas = [dict(batch_input_shape=(256, 256))] * 2
        torch.manual_seed(seed)
        base = _head(MODELS, "TPHYOLOv5Head", "YOLOv5HeadModule", {}).loss(
            feats, dict(bboxes_labels=boxes.clone(), img_metas=metas))
        torch.manual_seed(seed)
        with_ugs = _head(MODELS, "UGSYOLOv5Head", "UGSYOLOv5HeadModule", dict(num_bins=17), dict(gamma=0.0)).loss(
            feats, dict(bboxes_labels=boxes.clone(), img_metas=metas))
        b, u = float(base["loss_bbox"]), float(with_ugs["loss_ce"] + with_ugs["loss_um"])
        ratios.append(u / b)
        print(f"seed {seed}: CIoU loss {b:.4f}, UGS CE + lambda UM {u:.4f}, ratio {u / b:.1f}")
    ratios.sort()
    print(f"median ratio over {len(ratios)} seeds: {ratios[len(ratios) // 2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
