"""mmcv's CUDA-only rotated ops, on the CPU: :func:`install` wraps each op so that a call whose
tensors are all on the CPU runs the plain-PyTorch version of :mod:`ugs.rotated_ops`, and any
other call runs mmcv's own kernel unchanged.

mmrotate 1.0.0rc1 binds the ops by ``from mmcv.ops import ...`` at import, so the wrapper is put
both into ``mmcv.ops`` and into each mmrotate module that holds the name (:data:`BINDINGS`).
Without it, Rotated FCOS (``RotatedIoULoss``) and Oriented RepPoints (``ConvexAssigner`` /
``MaxConvexIoUAssigner``, ``ConvexGIoULoss``, its head's ``min_area_polygons`` and
``chamfer_distance``) stop on the CPU with "not compiled with GPU support".
"""
from __future__ import annotations

import functools
import importlib

import torch

from ugs import rotated_ops

__all__ = ["BINDINGS", "install", "installed"]

#: op name -> the modules that hold it (mmcv.ops first)
BINDINGS = {
    "diff_iou_rotated_2d": ("mmcv.ops", "mmrotate.models.losses.rotated_iou_loss"),
    "convex_iou": ("mmcv.ops", "mmrotate.models.task_modules.assigners.max_convex_iou_assigner",
                   "mmrotate.models.task_modules.assigners.sas_assigner", "mmrotate.models.utils.misc"),
    "convex_giou": ("mmcv.ops", "mmrotate.models.losses.convex_giou_loss"),
    "min_area_polygons": ("mmcv.ops", "mmrotate.models.dense_heads.oriented_reppoints_head",
                          "mmrotate.models.dense_heads.rotated_reppoints_head"),
    "chamfer_distance": ("mmcv.ops", "mmrotate.models.dense_heads.oriented_reppoints_head"),
}
_MARK = "_ugs_cpu_dispatch"


def _on_cuda(args, kwargs) -> bool:
    return any(isinstance(a, torch.Tensor) and a.is_cuda for a in (*args, *kwargs.values()))


def _dispatch(name: str, original, every_device: bool = False):
    @functools.wraps(original)
    def op(*args, **kwargs):
        if not every_device and _on_cuda(args, kwargs):
            return original(*args, **kwargs)
        return getattr(rotated_ops, name)(*args, **kwargs)

    setattr(op, _MARK, original)
    return op


def install(every_device: bool = False) -> dict:
    """Wrap every op of :data:`BINDINGS` where it is bound (idempotent); returns ``{op: [modules
    patched]}``. Imports mmrotate's model modules (the collections shim first).

    ``every_device=True`` sends CUDA calls to the plain-PyTorch versions too (a GPU machine whose
    mmcv lacks these kernels: ``benchmarks/paper_step.py --pytorch-rotated-ops``); a later
    ``install()`` restores mmcv's kernels for CUDA calls."""
    import ugs.openmmlab.compat  # noqa: F401  (mmrotate on Python >= 3.10)

    done = {}
    for name, modules in BINDINGS.items():
        original = getattr(importlib.import_module("mmcv.ops"), name)
        original = getattr(original, _MARK, original)
        wrapped = _dispatch(name, original, every_device)
        done[name] = []
        for mod_name in modules:
            mod = importlib.import_module(mod_name)
            if getattr(mod, name, None) is None:
                raise AttributeError(f"{mod_name} has no {name!r}: the pinned mmrotate / mmcv changed; "
                                     "update ugs.rotated.cpu_ops.BINDINGS")
            setattr(mod, name, wrapped)
            done[name].append(mod_name)
    return done


def installed() -> bool:
    """True when every binding holds the dispatching wrapper."""
    return all(hasattr(getattr(importlib.import_module(m), n, None), _MARK)
               for n, mods in BINDINGS.items() for m in mods)
