"""A fix for one stock mmrotate 1.0.0rc1 bug that stops a Table 3 config on a GPU.

``ConvexAssigner.assign`` (Oriented RepPoints' first-stage assigner) builds
``points_range = torch.arange(points.shape[0])`` on the CPU and indexes it with a mask computed
from the points; with the points on a GPU that is "indices should be either on cpu or on the
same device as the indexed tensor (cpu)" (mmrotate issues 788 and 945, the latter with the kit's
GPU pins, torch 2.0.1 + CUDA 11.8; fixed after 1.0.0rc1 by mmrotate pull request 784, which
creates the range on the points' device). Seen on an H200 in session 9 (Oriented RepPoints and
Oriented RepPoints w/ UGS, ``benchmarks/paper_step.py``).

:func:`install` makes the same change without editing the installed file: while ``assign`` runs,
the name ``torch`` in mmrotate's ``convex_assigner`` module is a stand-in that forwards
everything to ``torch`` except that ``arange`` defaults to the device of the points being
assigned. On the CPU nothing changes (the range was on the CPU already).
"""
from __future__ import annotations

import functools
import importlib
import types

import torch

__all__ = ["install", "installed"]

_MODULE = "mmrotate.models.task_modules.assigners.convex_assigner"
_MARK = "_ugs_device_fix"


class _TorchOnDevice(types.ModuleType):
    """``torch``, with ``arange`` creating its tensor on ``device`` unless told otherwise."""

    def __init__(self, device):
        super().__init__("torch")
        self.device = device

    def __getattr__(self, name):
        return getattr(torch, name)

    def arange(self, *args, **kwargs):
        kwargs.setdefault("device", self.device)
        return torch.arange(*args, **kwargs)


def install() -> None:
    """Wrap ``ConvexAssigner.assign`` (idempotent)."""
    module = importlib.import_module(_MODULE)
    cls = module.ConvexAssigner
    if getattr(cls.assign, _MARK, False):
        return
    original = cls.assign

    @functools.wraps(original)
    def assign(self, pred_instances, gt_instances, *args, **kwargs):
        saved = module.torch
        module.torch = _TorchOnDevice(pred_instances.priors.device)
        try:
            return original(self, pred_instances, gt_instances, *args, **kwargs)
        finally:
            module.torch = saved

    setattr(assign, _MARK, True)
    cls.assign = assign


def installed() -> bool:
    return bool(getattr(importlib.import_module(_MODULE).ConvexAssigner.assign, _MARK, False))
