"""The kit's thin mmrotate side (Table 3): what mmrotate 1.0.0rc1 needs to run on the CPU.

* :mod:`ugs.rotated.cpu_ops` - :func:`~ugs.rotated.cpu_ops.install` puts the plain-PyTorch
  versions of mmcv's CUDA-only rotated ops (:mod:`ugs.rotated_ops`) behind mmcv's names, for CPU
  tensors only.
* :mod:`ugs.rotated.datasets` - :class:`~ugs.rotated.datasets.SODAACropDataset`, the crops of
  ``ugs data crop`` as an mmrotate data set (``.jpg``, sorted, each crop's offset kept).

Importing this package imports nothing of mmrotate; the UGS heads for the rotated detectors
join it with Table 3's configs.
"""
