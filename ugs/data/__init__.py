"""Data layer of the kit: the VisDrone-DET -> COCO converter and the synthetic small-object set.

* :mod:`ugs.data.visdrone` - :func:`convert_visdrone`, :func:`read_visdrone_annotation`
  (the official text format, the official toolkit's ignore rules, in = out accounting).
* :mod:`ugs.data.synthetic` - :func:`generate_synthetic`, a seeded small-object data set
  written in the VisDrone layout, the default data of every CPU run.

Framework-free: numpy, PIL and OpenCV only.
"""
from .synthetic import generate_synthetic
from .visdrone import (CATEGORY_NAMES, VISDRONE_CATEGORIES, VisDroneRecord, convert_visdrone,
                       format_report, read_visdrone_annotation, visdrone_to_coco)

__all__ = [
    "CATEGORY_NAMES", "VISDRONE_CATEGORIES", "VisDroneRecord", "convert_visdrone",
    "format_report", "read_visdrone_annotation", "visdrone_to_coco", "generate_synthetic",
]
