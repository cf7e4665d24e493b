"""The kit's CPU versions of mmcv's CUDA-only rotated ops (``ugs.rotated_ops``) against mmcv's
CUDA kernels, on a machine whose mmcv has them (a GPU and mmcv built with CUDA ops):

    python benchmarks/rotated_ops_cuda.py --out rotated_ops_cuda.json

On seeded random inputs it runs each op both ways (ours on the CPU in float64 and float32,
mmcv's on CUDA in float32) and prints the largest differences: ``diff_iou_rotated_2d`` (value
and gradient), ``convex_iou``, ``convex_giou`` (value and the returned gradient),
``min_area_polygons`` (the rectangles' areas: the corner order may differ) and
``chamfer_distance``. Without CUDA, or with an mmcv built without its CUDA ops, it says so and
exits with status 2.

On a machine whose mmcv was built for its CPU ops only, ``--mmcv-cuda-ops`` first JIT-builds
mmcv's own CUDA kernels of these ops from its source release (``benchmarks/mmcv_cuda_ops.py``)
and puts them behind mmcv's names; the JSON then records which ops came from that build:

    python benchmarks/rotated_ops_cuda.py --mmcv-cuda-ops .whl/mmcv-2.0.1.tar.gz \
        --out rotated_ops_cuda.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ugs import rotated_ops as ours


def polygon_areas(p):
    q = p.reshape(-1, 4, 2).double()
    return 0.5 * (q[..., 0] * q[..., 1].roll(-1, 1) - q[..., 1] * q[..., 0].roll(-1, 1)).sum(1).abs()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--mmcv-cuda-ops", metavar="TARBALL_OR_DIR",
                    help="first build mmcv's CUDA kernels of these ops from this mmcv source "
                         "release and install them (benchmarks/mmcv_cuda_ops.py)")
    ap.add_argument("--mmcv-cuda-ops-build-dir", default="/tmp/mmcv_cuda_ops")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to compare")
        return 2
    built = None
    if args.mmcv_cuda_ops:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import mmcv_cuda_ops

        mmcv_cuda_ops.install(args.mmcv_cuda_ops, args.mmcv_cuda_ops_build_dir,
                              ops=["diff_iou_rotated", "convex_iou", "min_area_polygons",
                                   "chamfer_distance"])
        built = dict(mmcv_cuda_ops.describe(), source=args.mmcv_cuda_ops)
        print("mmcv CUDA ops built here:", built["installed"], "failed:", list(built["failed"]))
    import mmcv.ops as mo
    g = torch.Generator().manual_seed(args.seed)
    n = args.n
    boxes = lambda: torch.cat([torch.rand(n, 2, generator=g) * 20, torch.rand(n, 2, generator=g) * 9 + 1,
                               (torch.rand(n, 1, generator=g) - 0.5) * 6], 1)
    b1, b2 = boxes(), boxes()
    pts = torch.rand(n, 18, generator=g) * 12
    polys = ours.box_corners(b2).reshape(n, 8)
    rec = {}
    try:
        x = b1.cuda().requires_grad_(True)
        iou_c = mo.diff_iou_rotated_2d(x[None], b2.cuda()[None])[0]
        iou_c.sum().backward()
    except (RuntimeError, NotImplementedError, AttributeError) as e:
        print(f"mmcv's CUDA ops are not available here: {e}")
        return 2
    xd = b1.double().requires_grad_(True)
    iou_o = ours.diff_iou_rotated_2d(xd[None], b2.double()[None])[0]
    iou_o.sum().backward()
    rec["diff_iou_rotated_2d"] = dict(max_value_diff=float((iou_c.detach().cpu().double() - iou_o.detach()).abs().max()),
                                      max_grad_diff=float((x.grad.cpu().double() - xd.grad).abs().max()))
    ci_c = mo.convex_iou(pts.cuda(), polys[:50].cuda()).cpu().double()
    ci_o = ours.convex_iou(pts.double(), polys[:50].double())
    rec["convex_iou"] = dict(max_value_diff=float((ci_c - ci_o).abs().max()))
    gi_c, gr_c = mo.convex_giou(pts.cuda(), polys.cuda())
    gi_o, gr_o = ours.convex_giou(pts.double(), polys.double())
    rec["convex_giou"] = dict(max_value_diff=float((gi_c.cpu().double() - gi_o).abs().max()),
                              max_grad_diff=float((gr_c.cpu().double() - gr_o).abs().max()))
    ma_c = mo.min_area_polygons(pts.cuda()).cpu()
    ma_o = ours.min_area_polygons(pts.double())
    rec["min_area_polygons"] = dict(max_area_diff=float((polygon_areas(ma_c) - polygon_areas(ma_o)).abs().max()))
    a, b = torch.rand(4, 300, 2, generator=g), torch.rand(4, 200, 2, generator=g)
    d1c, d2c, _, _ = mo.chamfer_distance(a.cuda(), b.cuda())
    d1o, d2o, _, _ = ours.chamfer_distance(a.double(), b.double())
    rec["chamfer_distance"] = dict(max_value_diff=float(max((d1c.cpu().double() - d1o).abs().max(),
                                                            (d2c.cpu().double() - d2o).abs().max())))
    rec["mmcv_cuda_ops_build"] = built   # None: mmcv's own build held the CUDA kernels
    rec["device"] = torch.cuda.get_device_name(0)
    rec["n"], rec["seed"] = n, args.seed
    for k, v in rec.items():
        print(k, v)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
