"""mmengine metrics over the kit's numpy COCO evaluator (:mod:`ugs.evaluation.coco_ap`).

Both collect the detector's predictions (xyxy, in original-image pixels) and evaluate them with
:func:`ugs.evaluation.evaluate_detections`: COCO AP / AP50 / AP75 / AP_s / AP_m / AP_l at up to
``max_dets`` detections per image and class. Metrics are logged as percentages (``visdrone/AP``,
``coco/AP`` ...) like the paper's tables and written to ``metrics.json`` in the work dir.

* ``VisDroneMetric`` (Tables 1, 6, 7): maxDets 500 and the VisDrone toolkit's ignored-region
  rule (the converter keeps each image's ``ignored_regions``).
* ``CocoBoxMetric`` (Table 4, COCO): the plain COCO protocol, maxDets 100, crowd boxes ignored
  as pycocotools ignores them, no ignored regions (``tests/test_coco_box_metric.py`` checks it
  against pycocotools' ``COCOeval`` on the same detections).
"""
from __future__ import annotations

import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmdet.registry import METRICS

from ugs.evaluation import evaluate_detections, load_ground_truth, write_metrics_json

REPORTED = ("AP", "AP50", "AP75", "AP_s", "AP_m", "AP_l")


def label_category_ids(metric: BaseMetric, cat_names: Sequence[str], cat_ids: Sequence[int]) -> list:
    """Label i -> the ``category_id`` of the i-th class of ``metric.dataset_meta`` (all the
    annotation file's categories, in its order, when the data set gives none), matched by name;
    a class the annotation file (``metric.ann_file``) lacks is an error naming it."""
    name_to_id = dict(zip((str(n) for n in cat_names), (int(c) for c in cat_ids)))
    classes = (metric.dataset_meta or {}).get("classes") or list(name_to_id)
    missing = [c for c in classes if c not in name_to_id]
    if missing:
        raise ValueError(f"{type(metric).__name__}: classes {missing} are not categories of {metric.ann_file} "
                         f"(it has {sorted(name_to_id)})")
    return [name_to_id[c] for c in classes]


class _KitCocoEvaluatorMetric(BaseMetric):
    """The shared part: collect predictions, evaluate with the kit's evaluator, log and write."""

    default_prefix = ""
    _missing_hint = ""

    def __init__(self, ann_file: str, max_dets: int = 500, ignore_regions: bool = True,
                 outfile_dir: Optional[str] = None, collect_device: str = "cpu",
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f"{type(self).__name__}: ann_file {ann_file!r} does not exist; "
                                    f"{self._missing_hint}")
        self.ann_file = ann_file
        self.max_dets = int(max_dets)
        self.ignore_rule = "toolkit" if ignore_regions else None
        self.outfile_dir = outfile_dir
        self._gt = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample["pred_instances"]
            boxes = pred["bboxes"].cpu().numpy().astype(np.float64)
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
            self.results.append(dict(img_id=sample["img_id"], bboxes=xywh,
                                     scores=pred["scores"].cpu().numpy(),
                                     labels=pred["labels"].cpu().numpy()))

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        if self._gt is None:
            self._gt = load_ground_truth(self.ann_file)
        cat_ids = label_category_ids(self, self._gt.cat_names, self._gt.cat_ids)
        dets = []
        for r in results:
            for box, score, label in zip(r["bboxes"], r["scores"], r["labels"]):
                dets.append(dict(image_id=r["img_id"], category_id=cat_ids[int(label)],
                                 bbox=[float(v) for v in box], score=float(score)))
        metrics = evaluate_detections(self._gt, dets, max_dets=(1, 10, self.max_dets),
                                      ignore_rule=self.ignore_rule)
        if self.outfile_dir:
            path = write_metrics_json(metrics, self.outfile_dir,
                                      extra=dict(ann_file=self.ann_file, num_detections=len(dets),
                                                num_images_predicted=len(results)))
            logger.info(f"{type(self).__name__}: wrote {path}")
        logger.info("%s (max_dets=%d, ignore_rule=%s): %s", type(self).__name__, self.max_dets,
                    self.ignore_rule, ", ".join(f"{k} {100 * metrics[k]:.1f}" for k in REPORTED))
        return {k: round(100 * float(metrics[k]), 2) for k in REPORTED}


@METRICS.register_module()
class VisDroneMetric(_KitCocoEvaluatorMetric):
    """Args:
        ann_file: COCO JSON written by ``ugs data visdrone`` / ``ugs data synth``.
        max_dets: the largest maxDets (500 for VisDrone, 1,500 for the paper's DINO).
        ignore_regions: apply the toolkit's ignored-region rule (default True).
        outfile_dir: folder for ``metrics.json`` (the training tool sets the work dir, next to
            the checkpoints); None writes nothing.
    """

    default_prefix = "visdrone"
    _missing_hint = "convert the split first (ugs data visdrone / ugs data synth)"


@METRICS.register_module()
class CocoBoxMetric(_KitCocoEvaluatorMetric):
    """COCO 2017 box AP with the kit's evaluator (Table 4's COCO configs), in place of mmdet's
    ``CocoMetric`` (which calls pycocotools): the same numbers, and ``metrics.json`` in the work
    dir as the kit's other metrics write it.

    Args:
        ann_file: ``instances_val2017.json`` (or any COCO JSON of the evaluated images).
        max_dets: the largest maxDets (COCO's 100).
        outfile_dir: folder for ``metrics.json``; None writes nothing.
    """

    default_prefix = "coco"
    _missing_hint = "see the README's Data section (COCO 2017) or run ugs data synth-layouts"

    def __init__(self, ann_file: str, max_dets: int = 100, outfile_dir: Optional[str] = None,
                 collect_device: str = "cpu", prefix: Optional[str] = None) -> None:
        super().__init__(ann_file, max_dets=max_dets, ignore_regions=False, outfile_dir=outfile_dir,
                         collect_device=collect_device, prefix=prefix)
