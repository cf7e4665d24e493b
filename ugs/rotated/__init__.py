"""The kit's thin mmrotate side (Table 3): UGS in four rotated detectors of mmrotate 1.0.0rc1, and
what mmrotate needs to run them on the CPU.

* :mod:`ugs.rotated.heads` - ``UGSRotatedRetinaHead``, ``UGSRotatedFCOSHead``,
  ``UGSOrientedRPNHead``, ``UGSRotatedShared2FCBBoxHead`` (the rotated boxes' encodings on the
  UGS grids of :mod:`ugs.rotated_coding`).
* :mod:`ugs.rotated.reppoints_head` - ``UGSOrientedRepPointsHead`` (projection targets,
  :mod:`ugs.polygon_projection`).
* :mod:`ugs.rotated.datasets` - :class:`~ugs.rotated.datasets.SODAACropDataset`, the crops of
  ``ugs data crop`` as an mmrotate data set (``.jpg``, sorted, each crop's offset kept).
* :mod:`ugs.rotated.metric` - ``SODAAMetric``: crop detections merged onto their images and
  scored with SODA-A's protocol (:mod:`ugs.evaluation.rotated`).
* :mod:`ugs.rotated.cpu_ops` - :func:`~ugs.rotated.cpu_ops.install` puts the plain-PyTorch
  versions of mmcv's CUDA-only rotated ops (:mod:`ugs.rotated_ops`) behind mmcv's names, for CPU
  tensors only.
* :mod:`ugs.rotated.runtime` - the Table 3 configs' ``custom_imports`` target (registers all of
  the above, installs the CPU ops).

Importing this package imports nothing of mmrotate.
"""
