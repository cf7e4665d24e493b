"""Learning-rate schedulers whose begin, end and milestones are given in (fractional) epochs.

mmengine converts an epoch-based scheduler to iterations (``convert_to_iter_based=True``) by
multiplying by the epoch length, but truncates ``begin`` / ``end`` and leaves milestones that
fall between two iterations unreachable. The quick profile places its warm-up and its decay at
fractions of a run of a few epochs, so these variants round each point to the nearest
iteration: a warm-up lasts at least 2 iterations (mmengine's ``LinearLR`` and ``ConstantLR``
only restore the base rate on their second step) and a decay comes at iteration 1 or later.
"""
from __future__ import annotations

from mmengine.optim.scheduler import ConstantLR, LinearLR, MultiStepLR
from mmengine.optim.scheduler.param_scheduler import INF
from mmengine.registry import PARAM_SCHEDULERS


class _RoundedEpochs:
    """Mixin: ``build_iter_from_epoch`` rounds begin / end / milestones to whole iterations."""

    #: the fewest iterations the scheduler may span (2 for a warm-up, see the module docstring)
    min_span = 1

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None,
                              **kwargs):
        if not by_epoch or not epoch_length or epoch_length <= 0:
            raise ValueError(f"{cls.__name__}: converting to iterations needs by_epoch=True and a "
                             f"positive epoch_length, got by_epoch={by_epoch}, "
                             f"epoch_length={epoch_length}")
        begin = int(round(begin * epoch_length))
        if end != INF:
            end = max(begin + cls.min_span, int(round(end * epoch_length)))
        if "milestones" in kwargs:
            kwargs["milestones"] = sorted({max(1, int(round(m * epoch_length)))
                                           for m in kwargs["milestones"]})
        return cls(*args, begin=begin, end=end, by_epoch=False, **kwargs)


@PARAM_SCHEDULERS.register_module()
class EpochFractionLinearLR(_RoundedEpochs, LinearLR):
    """``LinearLR`` (a warm-up) spanning fractional epochs, rounded to iterations."""

    min_span = 2


@PARAM_SCHEDULERS.register_module()
class EpochFractionConstantLR(_RoundedEpochs, ConstantLR):
    """``ConstantLR`` (FCOS's constant warm-up) spanning fractional epochs, rounded."""

    min_span = 2


@PARAM_SCHEDULERS.register_module()
class EpochFractionMultiStepLR(_RoundedEpochs, MultiStepLR):
    """``MultiStepLR`` with milestones at fractional epochs, rounded to iterations."""
