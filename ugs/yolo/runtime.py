"""Everything a TPH-YOLOv5 config needs registered in mmyolo (its ``custom_imports`` target, beside
``ugs.openmmlab.runtime`` for the kit's VisDrone metric and optimizer wrapper)."""
from . import head, losses, tph, ugs_head  # noqa: F401
