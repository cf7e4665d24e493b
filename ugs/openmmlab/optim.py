"""``NonFiniteGuardOptimWrapper``: skip (and count) an update whose loss is NaN or inf.

One non-finite loss would otherwise write NaN into every weight it reaches. The wrapper
checks the loss before back-propagation; on a non-finite value it drops the step on every
rank (the check is all-reduced, so distributed ranks never disagree and hang), zeroes the
gradients, counts the skip, logs a warning, and goes on. The count is logged as
``skipped_steps`` and kept in the message hub, so it survives resuming.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import OptimWrapper
from mmdet.registry import OPTIM_WRAPPERS

SKIP_KEY = "ugs_skipped_steps"


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that refuses non-finite losses (see the module docstring)."""

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        finite = torch.isfinite(loss.detach()).all().float().reshape(1)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            hub = MessageHub.get_current_instance()
            skipped = int(hub.get_info(SKIP_KEY, 0)) + 1
            hub.update_info(SKIP_KEY, skipped)
            hub.update_scalar("train/skipped_steps", skipped)
            MMLogger.get_current_instance().warning(
                f"non-finite loss ({loss.detach().item()}) at iteration "
                f"{hub.get_info('iter', '?')}: update skipped ({skipped} so far)")
            self.zero_grad(**(zero_kwargs or {}))
            self._inner_count += 1
            return
        super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)

    @property
    def skipped_steps(self) -> int:
        return int(MessageHub.get_current_instance().get_info(SKIP_KEY, 0))
