"""Table 6 (the component ablation, Faster R-CNN R-50 on VisDrone): each row's config.

One config file per row under ``configs/faster_rcnn/table6/``, keyed by the row id of
``papers_tables/table6_ablation.csv``. The baselines inherit from
``configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py`` (loss swaps in both stages;
Bayesian YOLO in the R-CNN head), the UGS rows from
``configs/faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py`` (the ``ugs`` knobs of both
stages: ``beta = 0`` is the uniform grid, ``lam = 0`` switches UM off, ``gamma = 0`` the
refinement). Standard library only.
"""
from __future__ import annotations

import os.path as osp

#: Table 6 row id -> config path, relative to the repository root, in the paper's row order.
TABLE6_CONFIGS = {
    "l2_baseline": "configs/faster_rcnn/table6/l2_baseline.py",
    "smooth_l1": "configs/faster_rcnn/table6/smooth_l1.py",
    "iou_loss": "configs/faster_rcnn/table6/iou_loss.py",
    "gradient_clipping": "configs/faster_rcnn/table6/gradient_clipping.py",
    "bayesian_yolo": "configs/faster_rcnn/table6/bayesian_yolo.py",
    "ce": "configs/faster_rcnn/table6/ce.py",
    "ce_in": "configs/faster_rcnn/table6/ce_in.py",
    "ce_in_um_l0.1": "configs/faster_rcnn/table6/ce_in_um_l0p1.py",
    "ce_in_um_l0.5": "configs/faster_rcnn/table6/ce_in_um_l0p5.py",
    "ce_in_um_l1.0": "configs/faster_rcnn/table6/ce_in_um_l1p0.py",
    "ce_in_um_ur_l0.5_g0.1_r0.5": "configs/faster_rcnn/table6/ce_in_um_ur_l0p5_g0p1_r0p5.py",
    "ce_in_um_ur_l0.5_g0.5_r0.5": "configs/faster_rcnn/table6/ce_in_um_ur_l0p5_g0p5_r0p5.py",
    "ce_in_um_ur_l0.5_g0.5_r1": "configs/faster_rcnn/table6/ce_in_um_ur_l0p5_g0p5_r1.py",
}

#: Where each baseline's loss acts (the UGS rows act in both stages).
TABLE6_STAGES = {
    "l2_baseline": "RPN + R-CNN", "smooth_l1": "RPN + R-CNN", "iou_loss": "RPN + R-CNN",
    "gradient_clipping": "all parameters (L2 loss in RPN + R-CNN)",
    "bayesian_yolo": "R-CNN (RPN: L2)",
}


def table6_config(row: str, root: str = ".") -> str:
    """The config path of Table 6 row ``row`` under the repository ``root``; a ValueError
    naming the known rows for an unknown one."""
    if row not in TABLE6_CONFIGS:
        raise ValueError(f"unknown Table 6 row {row!r}; known: {', '.join(TABLE6_CONFIGS)}")
    return osp.join(root, TABLE6_CONFIGS[row])
