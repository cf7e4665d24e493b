"""Training tooling: the non-finite guard, the merged config of each profile."""
import math
import os

import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.logging import MessageHub  # noqa: E402

import ugs.openmmlab.runtime  # noqa: E402,F401
from ugs.openmmlab.optim import NonFiniteGuardOptimWrapper  # noqa: E402
from ugs.openmmlab.train import build_config, scale_schedule  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = [os.path.join(ROOT, "configs", c) for c in (
    "fcos/fcos_r50_fpn_1x_visdrone.py", "fcos/fcos_r50_fpn_ugs_1x_visdrone.py",
    "gfl/gfl_r50_fpn_1x_visdrone.py", "gfl/gfl_r50_fpn_ugs_1x_visdrone.py")]


def test_guard_skips_and_counts_non_finite_losses():
    MessageHub.get_instance("guard-test")
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    wrapper = NonFiniteGuardOptimWrapper(torch.optim.SGD([w], lr=0.5))
    before = int(MessageHub.get_current_instance().get_info("ugs_skipped_steps", 0))
    wrapper.update_params((w * torch.tensor([float("nan"), 1.0])).sum())
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, 2.0]))        # untouched
    assert w.grad is None or bool((w.grad == 0).all())
    assert wrapper.skipped_steps == before + 1
    wrapper.update_params((w ** 2).sum())           # grad 2w -> w - 0.5 * 2w = 0
    torch.testing.assert_close(w.detach(), torch.tensor([0.0, 0.0]))
    wrapper.update_params(torch.tensor(float("inf")) * w.sum())
    assert wrapper.skipped_steps == before + 2


@pytest.mark.parametrize("config", CONFIGS, ids=os.path.basename)
def test_paper_profile_is_the_papers_recipe(config):
    cfg = build_config(config, profile="paper", data_root="/data/visdrone", work_dir="/tmp/w",
                       gpus=4)
    assert cfg.train_dataloader.batch_size * 4 == 16                   # 16 images per step
    assert cfg.optim_wrapper.optimizer.type == "SGD"
    assert cfg.optim_wrapper.optimizer.lr == 0.02 and cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.train_cfg.max_epochs == 12
    steps = [s for s in cfg.param_scheduler if s.type == "MultiStepLR"][0]
    assert steps.milestones == [8, 11]
    resize = [s for s in cfg.train_dataloader.dataset.pipeline if s.type == "Resize"][0]
    assert resize.scale == (1333, 800)
    assert cfg.val_evaluator.type == "VisDroneMetric" and cfg.val_evaluator.max_dets == 500
    assert cfg.val_evaluator.ann_file == "/data/visdrone/annotations/val.json"
    assert cfg.model.backbone.depth == 50


def test_quick_profile_changes_size_not_method():
    paper = build_config(CONFIGS[1], profile="paper", work_dir="/tmp/w")
    quick = build_config(CONFIGS[1], profile="quick", work_dir="/tmp/w", epochs=6)
    assert quick.model.bbox_head.type == paper.model.bbox_head.type == "UGSFCOSHead"
    assert quick.model.bbox_head.ugs == paper.model.bbox_head.ugs
    assert quick.model.backbone.depth == 18 and quick.model.backbone.init_cfg is None
    assert quick.train_cfg.max_epochs == 6


def _lr_per_iteration(schedule, epoch_length, iterations, base_lr=0.01):
    """The lr each iteration trains with, stepping mmengine's schedulers built from ``schedule``
    as its runner does (built with the epoch length, stepped after every iteration)."""
    from mmengine.registry import PARAM_SCHEDULERS

    import ugs.openmmlab.runtime  # noqa: F401  (registers the kit's schedulers)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheds = [PARAM_SCHEDULERS.build(dict(s), default_args=dict(optimizer=opt, epoch_length=epoch_length))
              for s in schedule]
    lrs = []
    for _ in range(iterations):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        for sch in scheds:
            sch.step()
    return lrs


@pytest.mark.parametrize("config, warmup", [(CONFIGS[0], ("constant", 1 / 3)),       # FCOS
                                            ("configs/gfl/gfl_r50_fpn_1x_visdrone.py", ("linear", 0.001))])
def test_quick_schedule_keeps_most_steps_at_the_base_rate(config, warmup):
    # 3 epochs x 50 iterations. Worked out by hand: the warm-up spans round(0.1 * 3 * 50) = 15
    # iterations (mmengine's warm-ups are back at the base rate on their last one, iteration 14);
    # the 1x configs' last decay, epoch 11 of 12, moves to round(11/12 * 150) = round(137.5) = 138.
    cfg = build_config(os.path.join(ROOT, config), profile="quick", work_dir="/tmp/w", epochs=3)
    lrs = _lr_per_iteration(cfg.param_scheduler, epoch_length=50, iterations=150)
    kind, factor = warmup
    if kind == "constant":
        expected_warmup = [0.01 * factor] * 14
    else:   # mmengine's LinearLR: factor at 0, then linearly to 1 at iteration 14
        expected_warmup = [0.01 * (factor + (1 - factor) * i / 14) for i in range(14)]
    expected = expected_warmup + [0.01] * (138 - 14) + [0.001] * (150 - 138)
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert sum(v == pytest.approx(0.01) for v in lrs) / 150 >= 0.8     # "most steps at the base rate"


def test_quick_schedule_of_a_one_epoch_run_and_of_dino():
    # 1 epoch of 24 iterations (notebook 09's runs): warm-up max(2, round(2.4)) = 2 iterations,
    # decay at round(22) = 22. DINO (no warm-up in its config, decay at epoch 20 of 24): at
    # round(20/24 * 24) = 20 of a 24-iteration run.
    cfg = build_config(os.path.join(ROOT, "configs/faster_rcnn/table6/l2_baseline.py"), profile="quick",
                       work_dir="/tmp/w", epochs=1)
    lrs = _lr_per_iteration(cfg.param_scheduler, epoch_length=24, iterations=24)
    assert lrs == pytest.approx([0.01 * 0.001, 0.01] + [0.01] * 20 + [0.001] * 2, rel=1e-9)
    dino = build_config(os.path.join(ROOT, "configs/dino/dino_5scale_r50_24e_visdrone.py"), profile="quick",
                        work_dir="/tmp/w", epochs=1)
    lrs = _lr_per_iteration(dino.param_scheduler, epoch_length=24, iterations=24, base_lr=2e-4)
    assert lrs == pytest.approx([2e-4] * 20 + [2e-5] * 4, rel=1e-9)


def test_schedule_scaling_keeps_the_decay_fractions():
    cfg = build_config(CONFIGS[0], profile="paper", work_dir="/tmp/w")
    scale_schedule(cfg, 24)                         # 2x: steps at 16 and 22
    assert [s for s in cfg.param_scheduler if s.type == "MultiStepLR"][0].milestones == [16, 22]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="profile"):
        build_config(CONFIGS[0], profile="fast")
    with pytest.raises(ValueError, match="gpus=3"):
        build_config(CONFIGS[0], gpus=3)
    with pytest.raises(FileNotFoundError, match="nope.py"):
        build_config("nope.py")


def _coco(tmp_path):
    gt = dict(images=[dict(id=1, file_name="a.jpg", width=100, height=100,
                           ignored_regions=[[60, 60, 40, 40]]),
                      dict(id=2, file_name="b.jpg", width=100, height=100)],
              categories=[dict(id=1, name="pedestrian"), dict(id=4, name="car")],
              annotations=[dict(id=1, image_id=1, category_id=4, bbox=[10, 10, 20, 10], area=200,
                                iscrowd=0),
                           dict(id=2, image_id=2, category_id=1, bbox=[50, 50, 5, 12], area=60,
                                iscrowd=0)])
    path = tmp_path / "val.json"
    path.write_text(__import__("json").dumps(gt))
    return path


def test_visdrone_metric_maps_labels_by_class_name_and_applies_ignored_regions(tmp_path):
    from ugs.evaluation import evaluate_detections
    from ugs.openmmlab.metric import VisDroneMetric

    path = _coco(tmp_path)
    metric = VisDroneMetric(ann_file=str(path), max_dets=500, outfile_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=("pedestrian", "car"))      # label 1 -> 'car' -> id 4
    samples = [
        dict(img_id=1, pred_instances=dict(
            bboxes=torch.tensor([[10.0, 10, 30, 20], [62, 62, 90, 90]]),   # hit; inside the region
            scores=torch.tensor([0.9, 0.8]), labels=torch.tensor([1, 1]))),
        dict(img_id=2, pred_instances=dict(
            bboxes=torch.tensor([[50.0, 50, 55, 62]]), scores=torch.tensor([0.7]),
            labels=torch.tensor([0]))),
    ]
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    # both objects found exactly, the detection inside the ignored region is dropped: AP 100
    assert out["AP"] == pytest.approx(100.0, abs=1e-6) and out["AP50"] == pytest.approx(100.0)
    saved = __import__("json").loads((tmp_path / "metrics.json").read_text())
    assert saved["counts"]["dets_dropped_by_ignored_regions"] == 1
    assert saved["num_images_predicted"] == 2
    # the same detections straight into the evaluator, the region rule off: the stray one is a FP
    dets = [dict(image_id=1, category_id=4, bbox=[10, 10, 20, 10], score=0.9),
            dict(image_id=1, category_id=4, bbox=[62, 62, 28, 28], score=0.8),
            dict(image_id=2, category_id=1, bbox=[50, 50, 5, 12], score=0.7)]
    off = evaluate_detections(str(path), dets, max_dets=(1, 10, 500), ignore_rule=None)
    assert off["counts"]["dets_dropped_by_ignored_regions"] == 0


def test_visdrone_metric_names_a_missing_annotation_file(tmp_path):
    from ugs.openmmlab.metric import VisDroneMetric

    with pytest.raises(FileNotFoundError, match="nope.json"):
        VisDroneMetric(ann_file=str(tmp_path / "nope.json"))


def test_quick_profile_and_max_per_img_for_two_stage_models():
    ugs_frcnn = os.path.join(ROOT, "configs", "faster_rcnn", "faster_rcnn_r50_fpn_ugs_1x_visdrone.py")
    cfg = build_config(ugs_frcnn, profile="quick", work_dir="/tmp/w", max_per_img=300)
    assert cfg.model.rpn_head.in_channels == 64 and cfg.model.rpn_head.feat_channels == 64
    assert cfg.model.roi_head.bbox_roi_extractor.out_channels == 64
    assert cfg.model.roi_head.bbox_head.fc_out_channels == 256
    assert cfg.model.roi_head.bbox_head.type == "UGSShared2FCBBoxHead"
    assert cfg.model.test_cfg.rcnn.max_per_img == 300 and cfg.val_evaluator.max_dets == 300


@pytest.mark.parametrize("config", CONFIGS + [os.path.join(ROOT, "configs", c) for c in (
    "faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py", "faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py",
    "cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py", "cascade_rcnn/cascade_rcnn_r50_fpn_ugs_1x_visdrone.py")],
    ids=os.path.basename)
def test_optimizer_is_the_papers_lr_with_each_detectors_own_defaults(config):
    # the decision (README, "Optimizer per detector"): Sec. 4.1.2 names SGD lr 2e-2 and weight
    # decay 1e-4 for every mmdet detector; everything it does not name stays each detector's
    # mmdet default ("default optimization parameters"), identical in the baseline and UGS arm
    cfg = build_config(config, profile="paper", work_dir="/tmp/w", gpus=4)
    opt, wrapper = cfg.optim_wrapper.optimizer, cfg.optim_wrapper
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ("SGD", 0.02, 0.9, 1e-4)
    warmup = cfg.param_scheduler[0]
    if "/fcos/" in config:   # FCOS-caffe's defaults: bias lr x2, no bias decay, clipping, 1/3 warm-up
        assert dict(wrapper.paramwise_cfg) == dict(bias_lr_mult=2.0, bias_decay_mult=0.0)
        assert dict(wrapper.clip_grad) == dict(max_norm=35, norm_type=2)
        assert (warmup.type, warmup.factor, warmup.end) == ("ConstantLR", 1.0 / 3, 500)
    else:                     # GFL, Faster / Cascade R-CNN: no clipping, linear warm-up from 0.001
        assert wrapper.get("paramwise_cfg") is None and wrapper.get("clip_grad") is None
        assert (warmup.type, warmup.start_factor, warmup.end) == ("LinearLR", 0.001, 500)
