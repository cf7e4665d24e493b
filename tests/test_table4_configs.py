"""Table 4's eight configs are mmdet's stock recipes (VOC07+12, COCO 1x; R-50 and R-101), and
each w/ UGS config differs from its baseline only in the two box heads (UGS with Table 7's
grids). Values checked against the recipes as NOTES.md section 8 and the mmdet configs state them."""
import os

import pytest

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(name):
    return Config.fromfile(os.path.join(ROOT, "configs", "table4", name))


@pytest.mark.parametrize("depth", ["r50", "r101"])
def test_voc_configs_are_mmdets_voc0712_recipe(depth):
    for ugs in ("", "_ugs"):
        c = _cfg(f"faster_rcnn_{depth}_fpn{ugs}_1x_voc0712.py")
        assert c.model.backbone.depth == (50 if depth == "r50" else 101)
        assert c.model.backbone.init_cfg.checkpoint == ("torchvision://resnet50" if depth == "r50"
                                                        else "torchvision://resnet101")
        train = c.train_dataloader.dataset
        assert train.type == "RepeatDataset" and train.times == 3
        assert [d.ann_file for d in train.dataset.datasets] == ["VOC2007/ImageSets/Main/trainval.txt",
                                                                "VOC2012/ImageSets/Main/trainval.txt"]
        assert c.val_dataloader.dataset.ann_file == "VOC2007/ImageSets/Main/test.txt"
        assert [s.scale for s in train.dataset.datasets[0].pipeline if s.type == "Resize"] == [(1000, 600)]
        assert c.train_cfg.max_epochs == 4
        assert [s.milestones for s in c.param_scheduler if s.type == "MultiStepLR"] == [[3]]
        assert c.optim_wrapper.optimizer.lr == 0.01 and c.optim_wrapper.optimizer.momentum == 0.9
        assert (c.val_evaluator.type, c.val_evaluator.eval_mode) == ("VOCMetric", "11points")
        assert c.model.roi_head.bbox_head.num_classes == 20


@pytest.mark.parametrize("depth", ["r50", "r101"])
def test_coco_configs_are_mmdets_1x_recipe(depth):
    for ugs in ("", "_ugs"):
        c = _cfg(f"faster_rcnn_{depth}_fpn{ugs}_1x_coco.py")
        assert c.model.backbone.depth == (50 if depth == "r50" else 101)
        assert c.train_dataloader.dataset.ann_file == "annotations/instances_train2017.json"
        assert [s.scale for s in c.train_dataloader.dataset.pipeline if s.type == "Resize"] == [(1333, 800)]
        assert c.train_cfg.max_epochs == 12
        assert [s.milestones for s in c.param_scheduler if s.type == "MultiStepLR"] == [[8, 11]]
        assert c.optim_wrapper.optimizer.lr == 0.02
        assert (c.val_evaluator.type, c.val_evaluator.max_dets) == ("CocoBoxMetric", 100)   # the kit's COCO evaluator
        assert c.val_evaluator.ann_file == "data/coco/annotations/instances_val2017.json" and c.test_evaluator == c.val_evaluator
        assert c.model.roi_head.bbox_head.num_classes == 80


@pytest.mark.parametrize("name", ["r50_fpn{}_1x_voc0712", "r101_fpn{}_1x_voc0712", "r50_fpn{}_1x_coco",
                                  "r101_fpn{}_1x_coco"])
def test_ugs_changes_only_the_box_heads(name):
    base = _cfg("faster_rcnn_" + name.format("") + ".py")
    ugs = _cfg("faster_rcnn_" + name.format("_ugs") + ".py")
    b, u = base.to_dict(), ugs.to_dict()
    for d in (b, u):
        d["model"].pop("rpn_head")
        d["model"]["roi_head"].pop("bbox_head")
        d["model"]["roi_head"].pop("type")
    assert b == u                                              # everything else: the same recipe
    assert ugs.model.roi_head.type == "UGSStandardRoIHead" and base.model.roi_head.type == "StandardRoIHead"
    rpn, rcnn = ugs.model.rpn_head.ugs, ugs.model.roi_head.bbox_head.ugs
    assert (rpn.alpha, rpn.beta, rpn.n) == (2.0, 1.0, 10)         # Table 7's best RPN point
    assert (rcnn.alpha, rcnn.beta, rcnn.n) == (5.0, 1.0, 5)       # Table 7's best R-CNN point
    assert (rcnn.lam, rcnn.gamma, rcnn.rho) == (0.5, 0.5, 0.5)    # Table 6's best row
    # the anchors, coders and classification losses stay the stock heads'
    assert ugs.model.rpn_head.anchor_generator == base.model.rpn_head.anchor_generator
    assert ugs.model.roi_head.bbox_head.bbox_coder == base.model.roi_head.bbox_head.bbox_coder
    assert ugs.model.roi_head.bbox_head.loss_cls == base.model.roi_head.bbox_head.loss_cls
