"""RoIAlign on the CPU with mmcv's exact numbers, faster: the kit's two-stage CPU runs spend about
half their time in mmcv's single-threaded CPU RoIAlign.

* **forward**: torchvision's ``roi_align`` kernel, which computes the same bilinear samples in the
  same order as mmcv's (both descend from Detectron's) and runs its RoIs in parallel;
* **backward**: torchvision's backward kernel, one call per block of channels, the blocks on
  parallel threads (the op releases the GIL). A channel's input gradient only receives that
  channel's contributions, so splitting by channel keeps every sum in the single-threaded order.

The results are bit for bit those of ``mmcv.ops.roi_align`` (``tests/test_fast_roi_align.py``
compares forward outputs and input gradients over sizes, scales, sampling ratios, ``aligned``
and RoIs partly outside the image). Measured on the kit's 2-core machine (2,048 RoIs, 64
channels, 7x7, ``sampling_ratio=0``, 2 threads): forward 146 -> 42 ms (3.5x), backward 304 ->
187 ms (1.6x) (``python -m ugs.openmmlab.fast_roi_align`` prints the ratios on the machine at hand).

:func:`install` replaces the function mmcv's ``RoIAlign`` module calls, for CPU float32 inputs
with ``pool_mode="avg"`` only; anything else (CUDA, max pooling, other dtypes) goes to mmcv's
own op. The training tool installs it (``ugs.openmmlab.train.run``).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import torch
from torch.autograd.function import once_differentiable

__all__ = ["roi_align_cpu", "install", "installed", "mmcv_module"]

_POOL: Optional[ThreadPoolExecutor] = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()))
    return _POOL


class _RoIAlignCPU(torch.autograd.Function):

    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio, aligned):
        import torchvision  # noqa: F401  (registers torch.ops.torchvision)

        ph, pw = output_size
        ctx.save_for_backward(rois)
        ctx.args = (tuple(input.shape), ph, pw, float(spatial_scale), int(sampling_ratio), bool(aligned))
        return torch.ops.torchvision.roi_align(input, rois, float(spatial_scale), ph, pw, int(sampling_ratio),
                                               bool(aligned))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        (n, c, h, w), ph, pw, scale, ratio, aligned = ctx.args
        blocks = min(c, max(1, torch.get_num_threads()))

        def block(g):
            g = g.contiguous()
            return torch.ops.torchvision._roi_align_backward(g, rois, scale, ph, pw, n, g.shape[1], h, w, ratio,
                                                             aligned)

        if blocks == 1:
            grad_input = block(grad_output)
        else:
            grad_input = torch.cat(list(_pool().map(block, grad_output.chunk(blocks, dim=1))), dim=1)
        return grad_input, None, None, None, None, None


def roi_align_cpu(input: torch.Tensor, rois: torch.Tensor, output_size, spatial_scale: float = 1.0,
                  sampling_ratio: int = 0, aligned: bool = True) -> torch.Tensor:
    """``mmcv.ops.roi_align(input, rois, output_size, spatial_scale, sampling_ratio, "avg",
    aligned)`` for CPU tensors: ``rois`` is ``(K, 5)``, ``[batch index, x1, y1, x2, y2]``."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    return _RoIAlignCPU.apply(input, rois, tuple(int(s) for s in output_size), spatial_scale, sampling_ratio,
                              aligned)


def mmcv_module():
    """The module ``mmcv.ops.roi_align`` (``import mmcv.ops.roi_align as m`` gives the function of
    that name, which ``mmcv.ops`` exports over its submodule)."""
    import importlib

    return importlib.import_module("mmcv.ops.roi_align")


def installed() -> bool:
    return getattr(mmcv_module().roi_align, "ugs_fast_cpu", False)


def install() -> None:
    """Route mmcv's ``RoIAlign`` (module and function) through :func:`roi_align_cpu` for CPU
    float32 inputs with average pooling; idempotent."""
    module = mmcv_module()
    if installed():
        return
    def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=0, pool_mode="avg", aligned=True):
        if (input.device.type == "cpu" and pool_mode == "avg" and input.dtype == torch.float32
                and rois.dtype == torch.float32):
            return roi_align_cpu(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
        return roi_align.original(input, rois, output_size, spatial_scale, sampling_ratio, pool_mode, aligned)

    roi_align.ugs_fast_cpu = True
    roi_align.original = module.roi_align      # mmcv's op: everything this does not handle
    module.roi_align = roi_align


def _benchmark() -> None:
    import time

    module = mmcv_module()
    original = getattr(module.roi_align, "original", module.roi_align)
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(4, 64, 32, 32, generator=g)
    n = 2048
    xy = torch.rand(n, 2, generator=g) * 100
    rois = torch.cat([torch.randint(0, 4, (n, 1), generator=g).float(), xy,
                      xy + torch.rand(n, 2, generator=g) * 60 + 4], 1)

    def timed(fn, repeats=5):
        fwd, bwd = [], []
        for _ in range(repeats):
            x = feat.clone().requires_grad_(True)
            t0 = time.perf_counter()
            out = fn(x)
            t1 = time.perf_counter()
            out.backward(torch.full_like(out, 0.01))
            fwd.append(t1 - t0)
            bwd.append(time.perf_counter() - t1)
        return sorted(fwd)[repeats // 2], sorted(bwd)[repeats // 2]

    mm = timed(lambda x: original(x, rois, (7, 7), 0.25, 0, "avg", True))
    kit = timed(lambda x: roi_align_cpu(x, rois, (7, 7), 0.25, 0, True))
    print(f"threads {torch.get_num_threads()}, 2048 RoIs x 64 channels, 7x7, sampling_ratio 0 (median of 5)")
    print(f"forward:  mmcv {1000 * mm[0]:.1f} ms, kit {1000 * kit[0]:.1f} ms, ratio {mm[0] / kit[0]:.2f}x")
    print(f"backward: mmcv {1000 * mm[1]:.1f} ms, kit {1000 * kit[1]:.1f} ms, ratio {mm[1] / kit[1]:.2f}x")


if __name__ == "__main__":
    from ugs import reproducible

    reproducible.apply()
    _benchmark()
