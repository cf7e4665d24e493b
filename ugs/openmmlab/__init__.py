"""Adapters between the plain-PyTorch UGS core and the OpenMMLab stack (mmdet, mmyolo,
mmrotate). Importing this package imports no framework; the modules below do.

* :mod:`ugs.openmmlab.compat` - the one shim the pinned stack needs (mmrotate on Python 3.10+).
* :mod:`ugs.openmmlab.check_stack` - ``python -m ugs.openmmlab.check_stack`` imports and
  smoke-tests every framework the tables need and prints the versions.
"""
