"""``VisDroneMetric``: mmengine metric over the kit's numpy COCO evaluator.

Collects the detector's predictions (xyxy, in original-image pixels) and evaluates them with
:func:`ugs.evaluation.evaluate_detections`: COCO AP / AP50 / AP75 / AP_s / AP_m / AP_l at up to
``max_dets`` detections per image and class, with the VisDrone toolkit's ignored-region rule
(the converter keeps each image's ``ignored_regions``). Metrics are logged as percentages
(``visdrone/AP`` ...) like the paper's tables and written to ``metrics.json`` in the work dir.
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


@METRICS.register_module()
class VisDroneMetric(BaseMetric):
    """Args:
        ann_file: COCO JSON written by ``ugs data visdrone`` / ``ugs data synth``.
        max_dets: the largest maxDets (500 for VisDrone, 1,500 for the paper's DINO).
        ignore_regions: apply the toolkit's ignored-region rule (default True).
        outfile_dir: folder for ``metrics.json`` (the training tool sets the work dir, next to
            the checkpoints); None writes nothing.
    """

    default_prefix = "visdrone"

    def __init__(self, ann_file: str, max_dets: int = 500, ignore_regions: bool = True,
                 outfile_dir: Optional[str] = None, collect_device: str = "cpu",
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f"VisDroneMetric: ann_file {ann_file!r} does not exist; "
                                    f"convert the split first (ugs data visdrone / ugs data synth)")
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
        # label i is the i-th class of the dataset's metainfo; match it to the JSON by name
        name_to_id = dict(zip(self._gt.cat_names, (int(c) for c in self._gt.cat_ids)))
        classes = (self.dataset_meta or {}).get("classes") or self._gt.cat_names
        missing = [c for c in classes if c not in name_to_id]
        if missing:
            raise ValueError(f"VisDroneMetric: classes {missing} are not categories of {self.ann_file}")
        cat_ids = [name_to_id[c] for c in classes]
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
            logger.info(f"VisDroneMetric: wrote {path}")
        logger.info("VisDroneMetric (max_dets=%d, ignore_rule=%s): %s", self.max_dets,
                    self.ignore_rule, ", ".join(f"{k} {100 * metrics[k]:.1f}" for k in REPORTED))
        return {k: round(100 * float(metrics[k]), 2) for k in REPORTED}
