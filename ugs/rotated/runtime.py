"""Everything a Table 3 config needs registered in mmrotate (its ``custom_imports`` target, beside
``ugs.openmmlab.runtime`` for the kit's optimizer wrapper and the R-CNN stage's
``UGSStandardRoIHead``), and mmcv's CUDA-only rotated ops made to run on the CPU
(:func:`ugs.rotated.cpu_ops.install`: CPU tensors go to the plain-PyTorch versions, CUDA tensors
to mmcv's kernels unchanged), and a stock mmrotate bug that stops Oriented RepPoints on a GPU
fixed (:func:`ugs.rotated.fixes.install`)."""
import ugs.openmmlab.compat  # noqa: F401  (before anything imports mmrotate)

from . import cpu_ops, fixes
from . import datasets, heads, metric, reppoints_head  # noqa: F401

cpu_ops.install()
fixes.install()
