"""SODA-A's evaluation of a rotated detector as an mmengine metric (Table 3).

:class:`SODAAMetric` scores the predictions of an mmrotate model run on SODA-A's **crops** the
way the SODA authors score them on the **original images** (NOTES section 7), with the pieces
``ugs eval soda-a`` uses (:mod:`ugs.evaluation.rotated`):

1. each crop's rotated boxes (``pred_instances.bboxes``: ``RotatedBoxes`` or ``(N, 5)``
   ``cx, cy, w, h, angle`` in crop pixels after the test pipeline's rescale) become detections
   ``{file_name: <crop name>, category_id, rbox, score}``, the crop name built from the sample's
   ``source`` (its full image) and ``crop_offset`` (:class:`ugs.rotated.datasets.SODAACropDataset`
   puts both in each sample's metainfo; the test pipeline's ``PackDetInputs`` must list them in
   ``meta_keys``);
2. :func:`~ugs.evaluation.rotated.resolve_image_ids` shifts them onto their image by the
   offset, :func:`~ugs.evaluation.rotated.merge_crop_detections` merges them (per image and
   class rotated NMS at 0.5);
3. :class:`~ugs.evaluation.rotated.RotatedBoxEvaluator` scores them: AP, AP50, AP75 (Small,
   the headline), AP_eS, AP_rS, AP_gS, AP_N; -1 where a range has no ground truth.

So the numbers are exactly those of ``ugs eval soda-a ANN DETS --merge`` on the detections file
the metric writes (``outfile_dir``). With ``merge=False`` each sample is a whole image of
``ann_file`` (found by its file name), nothing is shifted or merged, and the file is read by
``ugs eval soda-a ANN DETS`` without ``--merge``.

As the kit's mmdet metrics (:mod:`ugs.openmmlab.metric`): logged as percentages under the
prefix (``soda_a/AP`` ... ``soda_a/AP_N``; a range without ground truth is -100), and with
``outfile_dir`` the fractions with bare keys (``AP``, ``AP50`` ... ``AP_N``, per class, counts)
in ``<outfile_dir>/metrics.json``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np

import ugs.openmmlab.compat  # noqa: F401  (mmrotate on Python >= 3.10)
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmrotate.registry import METRICS

from ugs.data.soda_a_crops import crop_name, parse_crop_name
from ugs.evaluation.coco_ap import write_metrics_json
from ugs.evaluation.rotated import (SODA_A_MAX_DETS, SODA_A_METRICS, RotatedBoxEvaluator,
                                    format_soda_a_metrics, merge_crop_detections, resolve_image_ids)
from ugs.openmmlab.metric import label_category_ids

__all__ = ["SODAAMetric", "REPORTED", "CROP_DETECTIONS_FILE", "DETECTIONS_FILE"]

REPORTED = SODA_A_METRICS
#: the detections written to ``outfile_dir``: crop detections (``merge=True``, re-evaluate with
#: ``ugs eval soda-a ANN FILE --merge``) or whole-image detections (``merge=False``)
CROP_DETECTIONS_FILE = "soda_a_crop_detections.json"
DETECTIONS_FILE = "soda_a_detections.json"
_META_HINT = ("add it to the test pipeline's PackDetInputs meta_keys, e.g. meta_keys=('img_id', 'img_path', "
              "'ori_shape', 'img_shape', 'scale_factor', 'crop_offset', 'source'); SODAACropDataset provides "
              "it (or use merge=False for uncropped images)")


def _stem(name) -> str:
    return osp.splitext(osp.basename(str(name)))[0]


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "tensor"):           # mmrotate's RotatedBoxes (mmdet BaseBoxes)
        x = x.tensor
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@METRICS.register_module()
class SODAAMetric(BaseMetric):
    """SODA-A's metrics of a rotated detector's crop predictions, on the original images.

    Args:
        ann_file: the evaluated split converted by ``ugs data soda-a`` (or ``ugs data
            synth-soda-a``'s ``converted/<split>.json``): original-image coordinates.
        merge: the samples are crops (default): shift each crop's detections back by its
            ``crop_offset`` onto its ``source`` image and merge them (rotated NMS at
            ``nms_iou`` per image and class) before evaluating. ``False``: each sample is a
            whole image of ``ann_file``, found by its file name (``img_path``).
        max_dets: detections per image and class (SODA-A's protocol: 20,000).
        nms_iou: IoU of the merge's rotated NMS (SODA-A's: 0.5; ``ugs eval soda-a --nms-iou``).
        outfile_dir: folder for the detections file (:data:`CROP_DETECTIONS_FILE`, or
            :data:`DETECTIONS_FILE` with ``merge=False``: the JSON ``ugs eval soda-a`` reads)
            and ``metrics.json``; the training tool sets the work dir. None writes nothing.
        progress: the evaluator's stage timings on stderr (as ``ugs eval soda-a``).
        collect_device, prefix: mmengine's; the prefix defaults to ``soda_a``.
    """

    default_prefix = "soda_a"

    def __init__(self, ann_file: str, merge: bool = True, max_dets: int = SODA_A_MAX_DETS[0],
                 nms_iou: float = 0.5, outfile_dir: Optional[str] = None, progress: bool = True,
                 collect_device: str = "cpu", prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not ann_file or not osp.isfile(ann_file):
            raise FileNotFoundError(f"SODAAMetric: ann_file {ann_file!r} does not exist; convert the split first "
                                    "(ugs data soda-a SPLIT_DIR OUT_JSON, or ugs data synth-soda-a)")
        if int(max_dets) < 1:
            raise ValueError(f"SODAAMetric: max_dets must be a positive integer, got {max_dets!r}")
        if not 0.0 < float(nms_iou) <= 1.0:
            raise ValueError(f"SODAAMetric: nms_iou must be in (0, 1], got {nms_iou!r}")
        self.ann_file = ann_file
        self.merge = bool(merge)
        self.max_dets = int(max_dets)
        self.nms_iou = float(nms_iou)
        self.outfile_dir = outfile_dir
        self.progress = bool(progress)
        self._gt = None

    # ------------------------------------------------------------------ collecting
    def _image_name(self, sample: dict) -> str:
        """The detections' ``file_name``: the crop's name (merge) or the image's file name."""
        if not self.merge:
            for key in ("img_path", "file_name", "img_id"):
                if sample.get(key) is not None:
                    return osp.basename(str(sample[key]))
            raise ValueError(f"SODAAMetric: a sample has no 'img_path' (nor 'file_name' / 'img_id') to find its image "
                             f"in {self.ann_file}; it has {sorted(sample)}")
        for key in ("crop_offset", "source"):
            if sample.get(key) is None:
                raise ValueError(f"SODAAMetric (merge=True): sample {sample.get('img_id', sample.get('img_path'))!r} "
                                 f"has no {key!r} in its metainfo: {_META_HINT}")
        try:
            x, y = (int(v) for v in np.asarray(sample["crop_offset"]).reshape(-1).tolist())
        except (TypeError, ValueError):
            raise ValueError(f"SODAAMetric: sample {sample.get('img_id')!r}: 'crop_offset' must be (x, y), "
                             f"got {sample['crop_offset']!r}") from None
        stem = _stem(sample["source"])
        size = None
        for key in ("img_id", "img_path"):
            if sample.get(key) is None:
                continue
            try:
                n_stem, n_size, n_x, n_y = parse_crop_name(str(sample[key]))
            except ValueError:
                continue
            if (n_stem, n_x, n_y) != (stem, x, y):
                raise ValueError(f"SODAAMetric: sample {sample[key]!r} names crop ({n_stem!r}, x {n_x}, y {n_y}) but its "
                                 f"metainfo says source {sample['source']!r}, crop_offset {(x, y)}")
            size = n_size
            break
        if size is None:
            shape = sample.get("ori_shape") or (0,)
            size = int(max(shape))
        return crop_name(stem, size, x, y)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            name = self._image_name(sample)
            pred = sample["pred_instances"]
            boxes = _to_numpy(pred["bboxes"]).astype(np.float64)
            if boxes.size == 0:
                boxes = boxes.reshape(0, 5)
            if boxes.ndim != 2 or boxes.shape[1] != 5:
                raise ValueError(f"SODAAMetric: {name}: pred_instances.bboxes must be rotated boxes (N, 5) "
                                 f"[cx, cy, w, h, angle], got shape {tuple(boxes.shape)} (predict_box_type 'rbox')")
            self.results.append(dict(name=name, source=sample.get("source"), bboxes=boxes,
                                     scores=_to_numpy(pred["scores"]).astype(np.float64).reshape(-1),
                                     labels=_to_numpy(pred["labels"]).astype(np.int64).reshape(-1)))

    # ------------------------------------------------------------------ evaluating
    def _ground_truth(self) -> dict:
        if self._gt is None:
            with open(self.ann_file, encoding="utf-8") as f:
                self._gt = json.load(f)
            for key in ("images", "categories", "annotations"):
                if key not in self._gt:
                    raise ValueError(f"SODAAMetric: {self.ann_file} has no {key!r} list: not a split converted "
                                     "by `ugs data soda-a`")
        return self._gt

    def _check_images(self, results: list, gt: dict) -> int:
        """Every sample's image is one of ``ann_file``'s, each crop / image once; returns how many
        images of ``ann_file`` no sample covered (their objects count as missed)."""
        by_stem = {_stem(im["file_name"]): im["id"] for im in gt["images"]}
        seen, covered = set(), set()
        for r in results:
            if r["name"] in seen:
                raise ValueError(f"SODAAMetric: {r['name']!r} was evaluated twice (its detections would count twice)")
            seen.add(r["name"])
            image = r["source"] if self.merge else r["name"]
            if _stem(image) not in by_stem:
                what = f"source image {image!r} of crop {r['name']!r}" if self.merge else f"image {image!r}"
                hint = " (is it a crop? use merge=True)" if not self.merge and "__" in _stem(image) else ""
                raise ValueError(f"SODAAMetric: {what} is not an image of {self.ann_file}{hint}")
            covered.add(by_stem[_stem(image)])
        return len(by_stem) - len(covered)

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        gt = self._ground_truth()
        n_uncovered = self._check_images(results, gt)
        if n_uncovered:
            logger.warning(f"SODAAMetric: {n_uncovered} of {len(gt['images'])} images of {self.ann_file} have no "
                           "evaluated sample; their objects count as missed")
        cat_ids = label_category_ids(self, [c["name"] for c in gt["categories"]],
                                     [c["id"] for c in gt["categories"]])
        raw = []
        for r in results:
            if np.any((r["labels"] < 0) | (r["labels"] >= len(cat_ids))):
                raise ValueError(f"SODAAMetric: {r['name']}: label outside 0..{len(cat_ids) - 1}: "
                                 f"{sorted(set(r['labels'].tolist()))}")
            for box, score, label in zip(r["bboxes"].tolist(), r["scores"].tolist(), r["labels"].tolist()):
                raw.append(dict(file_name=r["name"], category_id=cat_ids[label], rbox=box, score=score))
        written = None
        if self.outfile_dir:
            os.makedirs(self.outfile_dir, exist_ok=True)
            written = osp.join(self.outfile_dir, CROP_DETECTIONS_FILE if self.merge else DETECTIONS_FILE)
            tmp = written + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(raw, f)
            os.replace(tmp, written)
        dets = resolve_image_ids(raw, gt, merge=self.merge)
        if self.merge:
            dets = merge_crop_detections(dets, self.nms_iou)
        metrics = RotatedBoxEvaluator(gt, max_dets=(self.max_dets,), progress=self.progress).evaluate(dets)
        if written:
            path = write_metrics_json(metrics, self.outfile_dir, extra=dict(
                ann_file=self.ann_file, detections_file=written, merge=self.merge, nms_iou=self.nms_iou,
                num_samples=len(results), num_detections=len(raw), merged_to=len(dets) if self.merge else None,
                images_without_samples=n_uncovered))
            logger.info(f"SODAAMetric: wrote {written} (re-evaluate: ugs eval soda-a {self.ann_file} {written}"
                        f"{' --merge' if self.merge else ''}) and {path}")
        logger.info("SODAAMetric (%s%d detections, max_dets=%d): %s", f"merged {len(raw)} crop detections into "
                    if self.merge else "", len(dets), self.max_dets, format_soda_a_metrics(metrics))
        return {k: round(100 * float(metrics[k]), 2) for k in REPORTED}
