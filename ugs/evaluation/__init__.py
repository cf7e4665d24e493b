"""Evaluation: COCO-style box AP/AR (pycocotools semantics, numpy only) for VisDrone-DET.

* :func:`evaluate_detections` / :class:`CocoBoxEvaluator` - AP, AP50, AP75, AP_s/m/l, AR at
  every ``max_dets`` value, per-class AP, with the VisDrone ignored-region rule.
* :func:`write_metrics_json` - ``metrics.json`` next to a checkpoint.
* :func:`ignored_box_mask` - the ignored-region rule on its own.
* :func:`make_synthetic_scene` - seeded VisDrone-like scenes for tests and benchmarks.
* :func:`evaluate_soda_a` / :class:`RotatedBoxEvaluator` - SODA-A's protocol on rotated boxes
  (:mod:`ugs.evaluation.rotated`), with the exact rotated IoU of :mod:`ugs.evaluation.rotated_iou`.

No detection framework is imported here.
"""
from .coco_ap import (AREA_RANGES, CocoBoxEvaluator, GroundTruth, coco_iou, detections_to_arrays,
                      evaluate_detections, format_summary, load_ground_truth, write_metrics_json)
from .ignore_regions import IGNORE_RULES, covered_area, ignored_box_mask, matlab_round
from .rotated import RotatedBoxEvaluator, evaluate_soda_a
from .synthetic import VISDRONE_CLASSES, make_synthetic_scene

__all__ = [
    "AREA_RANGES", "CocoBoxEvaluator", "GroundTruth", "coco_iou", "detections_to_arrays",
    "evaluate_detections", "format_summary", "load_ground_truth", "write_metrics_json",
    "IGNORE_RULES", "covered_area", "ignored_box_mask", "matlab_round",
    "VISDRONE_CLASSES", "make_synthetic_scene", "RotatedBoxEvaluator", "evaluate_soda_a",
]
