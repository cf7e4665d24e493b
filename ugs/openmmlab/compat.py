"""Compatibility shim for the pinned OpenMMLab stack.

mmrotate 1.0.0rc1 (the last release for mmdet 3.x, needed for Table 3) does
``from collections import Sequence`` in ``models/detectors/refine_single_stage.py``; the alias
was removed in Python 3.10. :func:`apply` restores it (``collections.Sequence`` is
``collections.abc.Sequence``) and must run before ``import mmrotate.models``. It edits no
installed file and changes nothing else.
"""
import collections
import collections.abc


def apply() -> None:
    """Make ``from collections import Sequence`` work again (idempotent)."""
    if not hasattr(collections, "Sequence"):
        collections.Sequence = collections.abc.Sequence


apply()
