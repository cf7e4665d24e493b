"""Data layer of the kit: the VisDrone-DET -> COCO converter and the synthetic small-object set.

* :mod:`ugs.data.visdrone` - :func:`convert_visdrone`, :func:`read_visdrone_annotation`
  (the official text format, the official toolkit's ignore rules, in = out accounting).
* :mod:`ugs.data.synthetic` - :func:`generate_synthetic`, a seeded small-object data set
  written in the VisDrone layout, the default data of every CPU run.
* :mod:`ugs.data.soda_a`, :mod:`ugs.data.soda_a_crops`, :mod:`ugs.data.synthetic_soda_a` -
  SODA-A (Table 3): its JSON annotations as le90 rotated boxes with every object accounted for,
  the official 800 px crops, and a synthetic set in its layout.

Framework-free: numpy, PIL and OpenCV only.
"""
from .synthetic import generate_synthetic
from .visdrone import (CATEGORY_NAMES, VISDRONE_CATEGORIES, VisDroneRecord, convert_visdrone,
                       format_report, read_visdrone_annotation, visdrone_to_coco)

__all__ = [
    "CATEGORY_NAMES", "VISDRONE_CATEGORIES", "VisDroneRecord", "convert_visdrone",
    "format_report", "read_visdrone_annotation", "visdrone_to_coco", "generate_synthetic",
    "make_synthetic_set",
]


def make_synthetic_set(root, num_train: int = 200, num_val: int = 50, image_size=256, seed: int = 0) -> dict:
    """``ugs data synth ROOT`` as a function: the synthetic set generated under ``root`` and both
    splits converted to ``root/annotations/{train,val}.json``; returns the converter's report
    per split."""
    from pathlib import Path

    root = Path(root)
    generate_synthetic(root, num_train=num_train, num_val=num_val, image_size=image_size, seed=seed)
    return {split: convert_visdrone(root / split, root / "annotations" / f"{split}.json")
            for split in ("train", "val")}
