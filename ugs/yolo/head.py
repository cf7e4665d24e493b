"""``TPHYOLOv5Head``: mmyolo's ``YOLOv5Head`` that names the missing anchors.

TPH-YOLOv5 fits its 16 anchors (4 levels x 4) to the training set at the training size
(``ugs data anchors``); no values are published, and the kit's configs carry ``anchors = None``
until a user with the data computes them. mmdet's anchor generator fails on ``None`` with a
``TypeError`` deep in its constructor; this head stops first and says what to run.
"""
from __future__ import annotations

from mmyolo.models.dense_heads import YOLOv5Head
from mmyolo.registry import MODELS

__all__ = ["TPHYOLOv5Head"]


@MODELS.register_module()
class TPHYOLOv5Head(YOLOv5Head):
    """``YOLOv5Head`` (same arguments and behaviour) that refuses a prior generator without anchors."""

    def __init__(self, *args, prior_generator: dict, **kwargs) -> None:
        sizes = prior_generator.get("base_sizes")
        if not sizes:
            raise ValueError(
                "TPHYOLOv5Head: the config has no anchors (prior_generator.base_sizes is empty). "
                "TPH-YOLOv5 fits them to the training set at the training size; compute them with "
                "`ugs data anchors data/visdrone/annotations/train.json --img-size 640` (or 1536) and "
                "set `anchors = [...]` in the config, or pass --cfg-options "
                "model.bbox_head.prior_generator.base_sizes='[[[w, h], ...], ...]'")
        super().__init__(*args, prior_generator=prior_generator, **kwargs)
