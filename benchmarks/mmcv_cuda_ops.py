"""mmcv 2.0.1's own CUDA kernels for a few ops, JIT-built from its source release, for a GPU
machine whose mmcv was compiled for its CPU ops only:

    python benchmarks/mmcv_cuda_ops.py --src .whl/mmcv-2.0.1.tar.gz --build-dir /tmp/mmcv_cuda_ops
    python benchmarks/mmcv_cuda_ops.py --src .whl/mmcv-2.0.1.tar.gz --ops nms_rotated box_iou_rotated

or, from Python (with ``benchmarks/`` on ``sys.path``, as for ``torch_fallbacks``), before the
first CUDA call of an mmcv op:

    from mmcv_cuda_ops import install
    installed = install(".whl/mmcv-2.0.1.tar.gz")   # e.g. ['diff_iou_rotated', 'convex_iou', ...]

A second call with the same build folder recompiles nothing (ninja finds the objects up to
date), so a later script pays only the imports.

Why: mmcv 2.0.1's full CUDA build does not compile against a recent torch (2.11 here) in the
minutes a lent GPU machine gives, so there mmcv is built for its CPU ops only and its CUDA-only
ops (the rotated ones the kit reimplements in ``ugs/rotated_ops.py``; ``nms_rotated``,
``roi_align_rotated`` etc. on CUDA tensors) are missing. This module compiles only the CUDA
kernel files of the ops listed in ``OPS`` (``mmcv/ops/csrc/pytorch/cuda/<op>.cu`` with the
headers under ``mmcv/ops/csrc/common``), untouched, plus a small binding file written here
that gives each kernel launcher the name and argument list of the matching function of mmcv's
``_ext`` module (the ``m.def`` names and ``py::arg`` names of mmcv's ``pytorch/pybind.cpp``).
Where mmcv keeps part of an op's CUDA path in its device-neutral front end
(``pytorch/<op>.cpp``, built into its ``_ext``) rather than in the ``.cu`` file, the binding
does that part itself: for ``deform_conv`` (the ``.cu`` has only the im2col / col2im sampling
launchers) the shape checks, the ``im2col_step`` chunks and the per-group GEMMs, with ATen.
The front ends also refuse inputs that mmcv's kernels mishandle (e.g. ``chamfer_distance``:
see its binding), with an error rather than an illegal memory access.

What:

* ``build()`` extracts the needed part of the source release into ``BUILD_DIR/src``, writes the
  bindings and compiles each op as its own extension (``torch.utils.cpp_extension.load`` with
  ninja, ``-std=c++17``, ``TORCH_CUDA_ARCH_LIST`` defaulting to ``9.0``), the ops in parallel in
  child processes, each writing its verbose build log to ``BUILD_DIR/<op>/build.log``. An op that
  fails to compile is reported and skipped; the others still build.
* ``install()`` builds, then replaces the module-level ``ext_module`` of each mmcv Python module
  that uses the op (``mmcv.ops.nms``, ``mmcv.ops.box_iou_rotated``, ...) by a proxy: a function
  this build holds is used when one of the call's arguments is a CUDA tensor, mmcv's original
  ``_ext`` function (its CPU op) otherwise; every other name goes to mmcv's original module.
  It returns the names of the ops installed (``INSTALLED`` and ``FAILED`` keep the details).
  ``uninstall()`` puts the original modules back.
  A CPU tensor thus never reaches this build (its front ends also refuse one).
* ``smoke()`` runs one small call per op on CUDA through mmcv's public function (forward and,
  where the op has one, backward; compared with mmcv's CPU op or a PyTorch formula where there
  is one), each op in a child process of its own (``--_smoke-one OP``, hidden: it loads the op
  as built, a no-op for ninja, installs it and runs the call), several at once, so that a
  kernel fault that leaves a process's CUDA context unusable (an illegal memory access) costs
  only that op's result. The CLI builds, installs, runs ``smoke()`` and prints one line per op:
  ``ok`` or ``error``; ``--out`` writes them as JSON. ``--dry-run`` only writes the sources and
  prints them, ``--build-only`` compiles and imports the ops (neither needs a CUDA device).

The ops, in build (priority) order: ``diff_iou_rotated`` (its vertex sort), ``convex_iou``
(``convex_iou`` and ``convex_giou``), ``min_area_polygons``, ``chamfer_distance``,
``nms_rotated`` (in mmcv 2.0.1 it lives in ``mmcv.ops.nms``), ``box_iou_rotated``,
``roi_align_rotated``, ``nms``, ``roi_align``, ``sigmoid_focal_loss`` (the softmax one comes
with it: same kernel file), ``ms_deform_attn`` (DINO's deformable attention) and
``deform_conv`` (``DeformConv2d``, forward and both backwards: mmrotate's Oriented RepPoints).

The compile flags are torch's own for extensions plus mmcv's ``-DMMCV_WITH_CUDA`` and its two
include folders. Where torch's CUDA_HOME has no CUDA headers (it takes the folder above
``bin/nvcc``, wrong for a ``/usr/local/bin/nvcc`` wrapper), ``/usr/local/cuda`` or the like is
used instead. Where the CUDA toolkit lacks the cuBLAS / cuSPARSE / cuSOLVER headers that
``ATen/cuda/CUDAContext.h`` includes (a toolkit holding only nvcc and the runtime), the
headers of the ``nvidia-*`` wheels that torch depends on (``site-packages/nvidia/*/include``)
are linked into ``BUILD_DIR/cuda_extra_include``, only those missing from the toolkit (and,
where the toolkit has no ``lib64/libcudart.so`` for ``-lcudart``, the wheel's runtime library
into ``BUILD_DIR/cuda_extra_lib``). ``MMCV_CUDA_OPS_EXTRA_INCLUDE`` (folders separated by ``:``)
adds more places to look for headers.

mmcv's kernel files of all these ops compile unchanged against torch 2.11's headers with
nvcc 13.0 for sm_90 (checked with the ``--dry-run`` sources and nvcc / g++ by hand on a machine
without a GPU), so ``PATCHES`` is empty: it is where a small, documented edit of the extracted
copy would go.

Importing this module needs only torch; mmcv is imported by ``install()`` and the smoke calls.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch

DEFAULT_BUILD_DIR = "/tmp/mmcv_cuda_ops"
CSRC = "mmcv/ops/csrc"


@dataclass
class Op:
    """One op: mmcv's kernel files, the mmcv Python modules whose ``ext_module`` gets it, the
    C++ front ends (declarations of mmcv's launchers and functions named as in mmcv's
    ``_ext``) and, per ``_ext`` function, its ``py::arg`` names."""
    cu: list
    modules: list
    cpp: str
    defs: dict = field(default_factory=dict)


# Build order = priority order. The argument names are mmcv 2.0.1's pybind.cpp ones (mmcv's
# Python code passes some of them by keyword).
OPS = {
    "diff_iou_rotated": Op(
        cu=["diff_iou_rotated_cuda.cu"], modules=["mmcv.ops.diff_iou_rotated"],
        cpp="""
Tensor DiffIoURotatedSortVerticesCUDAKernelLauncher(Tensor vertices, Tensor mask, Tensor num_valid);

Tensor diff_iou_rotated_sort_vertices_forward(Tensor vertices, Tensor mask, Tensor num_valid) {
  UGS_ON_CUDA(vertices);
  return DiffIoURotatedSortVerticesCUDAKernelLauncher(vertices, mask, num_valid);
}
""",
        defs={"diff_iou_rotated_sort_vertices_forward": ["vertices", "mask", "num_valid"]}),
    "convex_iou": Op(
        cu=["convex_iou.cu"], modules=["mmcv.ops.convex_iou"],
        cpp="""
void ConvexIoUCUDAKernelLauncher(const Tensor pointsets, const Tensor polygons, Tensor ious);
void ConvexGIoUCUDAKernelLauncher(const Tensor pointsets, const Tensor polygons, Tensor output);

void convex_iou(const Tensor pointsets, const Tensor polygons, Tensor ious) {
  UGS_ON_CUDA(pointsets);
  ConvexIoUCUDAKernelLauncher(pointsets, polygons, ious);
}

void convex_giou(const Tensor pointsets, const Tensor polygons, Tensor output) {
  UGS_ON_CUDA(pointsets);
  ConvexGIoUCUDAKernelLauncher(pointsets, polygons, output);
}
""",
        defs={"convex_iou": ["pointsets", "polygons", "ious"],
              "convex_giou": ["pointsets", "polygons", "output"]}),
    "min_area_polygons": Op(
        cu=["min_area_polygons.cu"], modules=["mmcv.ops.min_area_polygons"],
        cpp="""
void MinAreaPolygonsCUDAKernelLauncher(const Tensor pointsets, Tensor polygons);

void min_area_polygons(const Tensor pointsets, Tensor polygons) {
  UGS_ON_CUDA(pointsets);
  MinAreaPolygonsCUDAKernelLauncher(pointsets, polygons);
}
""",
        defs={"min_area_polygons": ["pointsets", "polygons"]}),
    "chamfer_distance": Op(
        cu=["chamfer_distance_cuda.cu"], modules=["mmcv.ops.chamfer_distance"],
        cpp="""
void ChamferDistanceForwardCUDAKernelLauncher(const Tensor xyz1, const Tensor xyz2,
                                              const Tensor dist1, const Tensor dist2,
                                              const Tensor idx1, const Tensor idx2);
void ChamferDistanceBackwardCUDAKernelLauncher(const Tensor xyz1, const Tensor xyz2,
                                               Tensor idx1, Tensor idx2, Tensor grad_dist1,
                                               Tensor grad_dist2, Tensor grad_xyz1,
                                               Tensor grad_xyz2);

// What mmcv 2.0.1's chamfer kernels need (common/cuda/chamfer_distance_cuda_kernel.cuh and
// pytorch/cuda/chamfer_distance_cuda.cu), refused here with an error instead of the illegal
// memory access (or silently wrong result) the kernels give otherwise:
//  * forward: an even number of points in both sets. The kernel scans each tile of up to 512
//    points of the other set in steps of 4 up to `end_k & ~2`, which for an odd count is past
//    the points it loaded into shared memory: stale values, and an index >= the point count;
//  * backward: the same number of points in both sets. Its launcher passes the two counts
//    swapped to the kernel (n for m), so for N != M it reads and writes out of bounds;
//  * (B, N, 2) / (B, M, 2) contiguous tensors of one dtype, dist* of that dtype (mmcv's
//    Python front end allocates them as float32: float32 points), idx* int32.
static void ugs_chamfer_check(const Tensor& xyz1, const Tensor& xyz2) {
  TORCH_CHECK(xyz1.dim() == 3 && xyz2.dim() == 3 && xyz1.size(2) == 2 && xyz2.size(2) == 2 &&
                  xyz1.size(0) == xyz2.size(0),
              "chamfer_distance: point sets must be (B, N, 2) and (B, M, 2)");
  TORCH_CHECK(xyz2.device() == xyz1.device(), "chamfer_distance: tensors on different devices");
  TORCH_CHECK(xyz1.is_contiguous() && xyz2.is_contiguous(),
              "chamfer_distance: point sets must be contiguous");
  TORCH_CHECK(xyz1.size(1) % 2 == 0 && xyz2.size(1) % 2 == 0,
              "chamfer_distance: mmcv 2.0.1's CUDA kernel needs an even number of points in "
              "each set (it reads past its shared-memory tile for an odd one), got ",
              xyz1.size(1), " and ", xyz2.size(1));
}

void chamfer_distance_forward(const Tensor xyz1, const Tensor xyz2, const Tensor dist1,
                              const Tensor dist2, const Tensor idx1, const Tensor idx2) {
  UGS_ON_CUDA(xyz1);
  ugs_chamfer_check(xyz1, xyz2);
  ChamferDistanceForwardCUDAKernelLauncher(xyz1, xyz2, dist1, dist2, idx1, idx2);
}

void chamfer_distance_backward(const Tensor xyz1, const Tensor xyz2, Tensor idx1, Tensor idx2,
                               Tensor graddist1, Tensor graddist2, Tensor gradxyz1,
                               Tensor gradxyz2) {
  UGS_ON_CUDA(xyz1);
  ugs_chamfer_check(xyz1, xyz2);
  TORCH_CHECK(xyz1.size(1) == xyz2.size(1),
              "chamfer_distance backward: mmcv 2.0.1's CUDA launcher swaps the two point "
              "counts, so both sets must have the same number of points, got ",
              xyz1.size(1), " and ", xyz2.size(1));
  TORCH_CHECK(graddist1.is_contiguous() && graddist2.is_contiguous() &&
                  gradxyz1.is_contiguous() && gradxyz2.is_contiguous(),
              "chamfer_distance backward: gradients must be contiguous");
  ChamferDistanceBackwardCUDAKernelLauncher(xyz1, xyz2, idx1, idx2, graddist1, graddist2,
                                            gradxyz1, gradxyz2);
}
""",
        defs={"chamfer_distance_forward": ["xyz1", "xyz2", "dist1", "dist2", "idx1", "idx2"],
              "chamfer_distance_backward": ["xyz1", "xyz2", "idx1", "idx2", "graddist1",
                                            "graddist2", "gradxyz1", "gradxyz2"]}),
    "nms_rotated": Op(
        cu=["nms_rotated_cuda.cu"], modules=["mmcv.ops.nms", "mmcv.ops.nms_rotated"],
        cpp="""
Tensor nms_rotated_cuda(const Tensor dets, const Tensor scores, const Tensor order_t,
                        const Tensor dets_sorted, float iou_threshold, const int multi_label);

// labels: only mmcv's NPU path reads them; the CUDA kernel takes them from dets_sorted.
Tensor nms_rotated(const Tensor dets, const Tensor scores, const Tensor order,
                   const Tensor dets_sorted, const Tensor labels, const float iou_threshold,
                   const int multi_label) {
  UGS_ON_CUDA(dets);
  return nms_rotated_cuda(dets, scores, order, dets_sorted.contiguous(), iou_threshold,
                          multi_label);
}
""",
        defs={"nms_rotated": ["dets", "scores", "order", "dets_sorted", "labels",
                              "iou_threshold", "multi_label"]}),
    "box_iou_rotated": Op(
        cu=["box_iou_rotated_cuda.cu"], modules=["mmcv.ops.box_iou_rotated"],
        cpp="""
void box_iou_rotated_cuda(const Tensor boxes1, const Tensor boxes2, Tensor ious,
                          const int mode_flag, const bool aligned);

void box_iou_rotated(const Tensor boxes1, const Tensor boxes2, Tensor ious, const int mode_flag,
                     const bool aligned) {
  UGS_ON_CUDA(boxes1);
  box_iou_rotated_cuda(boxes1, boxes2, ious, mode_flag, aligned);
}
""",
        defs={"box_iou_rotated": ["boxes1", "boxes2", "ious", "mode_flag", "aligned"]}),
    "roi_align_rotated": Op(
        cu=["roi_align_rotated_cuda.cu"], modules=["mmcv.ops.roi_align_rotated"],
        cpp="""
void ROIAlignRotatedForwardCUDAKernelLauncher(
    const at::Tensor input, const at::Tensor rois, const float spatial_scale,
    const int sampling_ratio, const bool aligned, const bool clockwise, const int channels,
    const int height, const int width, const int num_rois, const int pooled_height,
    const int pooled_width, at::Tensor output);
void ROIAlignRotatedBackwardCUDAKernelLauncher(
    const at::Tensor top_grad, const at::Tensor rois, const float spatial_scale,
    const int sampling_ratio, const bool aligned, const bool clockwise, const int channels,
    const int height, const int width, const int num_rois, const int pooled_height,
    const int pooled_width, at::Tensor bottom_grad);

// rois: (n, 6) = (batch index, cx, cy, w, h, angle); the feature map's shape gives the sizes.
void roi_align_rotated_forward(Tensor input, Tensor rois, Tensor output, int pooled_height,
                               int pooled_width, float spatial_scale, int sampling_ratio,
                               bool aligned, bool clockwise) {
  UGS_ON_CUDA(input);
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 6, "rois must be (n, 6)");
  ROIAlignRotatedForwardCUDAKernelLauncher(input, rois, spatial_scale, sampling_ratio, aligned,
                                           clockwise, input.size(1), input.size(2),
                                           input.size(3), rois.size(0), pooled_height,
                                           pooled_width, output);
}

void roi_align_rotated_backward(Tensor top_grad, Tensor rois, Tensor bottom_grad,
                                int pooled_height, int pooled_width, float spatial_scale,
                                int sampling_ratio, bool aligned, bool clockwise) {
  UGS_ON_CUDA(top_grad);
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 6, "rois must be (n, 6)");
  ROIAlignRotatedBackwardCUDAKernelLauncher(top_grad, rois, spatial_scale, sampling_ratio,
                                            aligned, clockwise, bottom_grad.size(1),
                                            bottom_grad.size(2), bottom_grad.size(3),
                                            rois.size(0), pooled_height, pooled_width,
                                            bottom_grad);
}
""",
        # mmcv names the backward's first three arguments (grad_output, rois, grad_input)
        # "rois", "grad_input", "grad_output"; its Python code passes them by position.
        defs={"roi_align_rotated_forward": ["input", "rois", "output", "pooled_height",
                                            "pooled_width", "spatial_scale", "sampling_ratio",
                                            "aligned", "clockwise"],
              "roi_align_rotated_backward": ["rois", "grad_input", "grad_output",
                                             "pooled_height", "pooled_width", "spatial_scale",
                                             "sampling_ratio", "aligned", "clockwise"]}),
    "nms": Op(
        cu=["nms_cuda.cu"], modules=["mmcv.ops.nms"],
        cpp="""
Tensor NMSCUDAKernelLauncher(Tensor boxes, Tensor scores, float iou_threshold, int offset);

Tensor nms(Tensor boxes, Tensor scores, float iou_threshold, int offset) {
  UGS_ON_CUDA(boxes);
  return NMSCUDAKernelLauncher(boxes, scores, iou_threshold, offset);
}
""",
        defs={"nms": ["boxes", "scores", "iou_threshold", "offset"]}),
    "roi_align": Op(
        cu=["roi_align_cuda.cu"], modules=["mmcv.ops.roi_align"],
        cpp="""
void ROIAlignForwardCUDAKernelLauncher(Tensor input, Tensor rois, Tensor output,
                                       Tensor argmax_y, Tensor argmax_x, int aligned_height,
                                       int aligned_width, float spatial_scale,
                                       int sampling_ratio, int pool_mode, bool aligned);
void ROIAlignBackwardCUDAKernelLauncher(Tensor grad_output, Tensor rois, Tensor argmax_y,
                                        Tensor argmax_x, Tensor grad_input, int aligned_height,
                                        int aligned_width, float spatial_scale,
                                        int sampling_ratio, int pool_mode, bool aligned);

void roi_align_forward(Tensor input, Tensor rois, Tensor output, Tensor argmax_y,
                       Tensor argmax_x, int aligned_height, int aligned_width,
                       float spatial_scale, int sampling_ratio, int pool_mode, bool aligned) {
  UGS_ON_CUDA(input);
  ROIAlignForwardCUDAKernelLauncher(input, rois, output, argmax_y, argmax_x, aligned_height,
                                    aligned_width, spatial_scale, sampling_ratio, pool_mode,
                                    aligned);
}

void roi_align_backward(Tensor grad_output, Tensor rois, Tensor argmax_y, Tensor argmax_x,
                        Tensor grad_input, int aligned_height, int aligned_width,
                        float spatial_scale, int sampling_ratio, int pool_mode, bool aligned) {
  UGS_ON_CUDA(grad_output);
  ROIAlignBackwardCUDAKernelLauncher(grad_output, rois, argmax_y, argmax_x, grad_input,
                                     aligned_height, aligned_width, spatial_scale,
                                     sampling_ratio, pool_mode, aligned);
}
""",
        defs={"roi_align_forward": ["input", "rois", "output", "argmax_y", "argmax_x",
                                    "aligned_height", "aligned_width", "spatial_scale",
                                    "sampling_ratio", "pool_mode", "aligned"],
              "roi_align_backward": ["grad_output", "rois", "argmax_y", "argmax_x",
                                     "grad_input", "aligned_height", "aligned_width",
                                     "spatial_scale", "sampling_ratio", "pool_mode",
                                     "aligned"]}),
    "sigmoid_focal_loss": Op(
        # the same kernel file holds the softmax focal loss: both are bound
        cu=["focal_loss_cuda.cu"], modules=["mmcv.ops.focal_loss"],
        cpp="""
void SigmoidFocalLossForwardCUDAKernelLauncher(Tensor input, Tensor target, Tensor weight,
                                               Tensor output, const float gamma,
                                               const float alpha);
void SigmoidFocalLossBackwardCUDAKernelLauncher(Tensor input, Tensor target, Tensor weight,
                                                Tensor grad_input, const float gamma,
                                                const float alpha);
void SoftmaxFocalLossForwardCUDAKernelLauncher(Tensor softmax, Tensor target, Tensor weight,
                                               Tensor output, const float gamma,
                                               const float alpha);
void SoftmaxFocalLossBackwardCUDAKernelLauncher(Tensor softmax, Tensor target, Tensor weight,
                                                Tensor buff, Tensor grad_input,
                                                const float gamma, const float alpha);

void sigmoid_focal_loss_forward(Tensor input, Tensor target, Tensor weight, Tensor output,
                                float gamma, float alpha) {
  UGS_ON_CUDA(input);
  SigmoidFocalLossForwardCUDAKernelLauncher(input, target, weight, output, gamma, alpha);
}

void sigmoid_focal_loss_backward(Tensor input, Tensor target, Tensor weight,
                                 Tensor grad_input, float gamma, float alpha) {
  UGS_ON_CUDA(input);
  SigmoidFocalLossBackwardCUDAKernelLauncher(input, target, weight, grad_input, gamma, alpha);
}

void softmax_focal_loss_forward(Tensor input, Tensor target, Tensor weight, Tensor output,
                                float gamma, float alpha) {
  UGS_ON_CUDA(input);
  SoftmaxFocalLossForwardCUDAKernelLauncher(input, target, weight, output, gamma, alpha);
}

void softmax_focal_loss_backward(Tensor input, Tensor target, Tensor weight, Tensor buff,
                                 Tensor grad_input, float gamma, float alpha) {
  UGS_ON_CUDA(input);
  SoftmaxFocalLossBackwardCUDAKernelLauncher(input, target, weight, buff, grad_input, gamma,
                                             alpha);
}
""",
        defs={"sigmoid_focal_loss_forward": ["input", "target", "weight", "output", "gamma",
                                             "alpha"],
              "sigmoid_focal_loss_backward": ["input", "target", "weight", "grad_input",
                                              "gamma", "alpha"],
              "softmax_focal_loss_forward": ["input", "target", "weight", "output", "gamma",
                                             "alpha"],
              "softmax_focal_loss_backward": ["input", "target", "weight", "buff",
                                              "grad_input", "gamma", "alpha"]}),
    "ms_deform_attn": Op(
        cu=["ms_deform_attn_cuda.cu"], modules=["mmcv.ops.multi_scale_deform_attn"],
        cpp="""
Tensor ms_deform_attn_cuda_forward(const Tensor &value, const Tensor &spatial_shapes,
                                   const Tensor &level_start_index, const Tensor &sampling_loc,
                                   const Tensor &attn_weight, const int im2col_step);
void ms_deform_attn_cuda_backward(const Tensor &value, const Tensor &spatial_shapes,
                                  const Tensor &level_start_index, const Tensor &sampling_loc,
                                  const Tensor &attn_weight, const Tensor &grad_output,
                                  Tensor &grad_value, Tensor &grad_sampling_loc,
                                  Tensor &grad_attn_weight, const int im2col_step);

Tensor ms_deform_attn_forward(const Tensor &value, const Tensor &spatial_shapes,
                              const Tensor &level_start_index, const Tensor &sampling_loc,
                              const Tensor &attn_weight, const int im2col_step) {
  UGS_ON_CUDA(value);
  return ms_deform_attn_cuda_forward(value, spatial_shapes, level_start_index, sampling_loc,
                                     attn_weight, im2col_step);
}

void ms_deform_attn_backward(const Tensor &value, const Tensor &spatial_shapes,
                             const Tensor &level_start_index, const Tensor &sampling_loc,
                             const Tensor &attn_weight, const Tensor &grad_output,
                             Tensor &grad_value, Tensor &grad_sampling_loc,
                             Tensor &grad_attn_weight, const int im2col_step) {
  UGS_ON_CUDA(value);
  ms_deform_attn_cuda_backward(value, spatial_shapes, level_start_index, sampling_loc,
                               attn_weight, grad_output, grad_value, grad_sampling_loc,
                               grad_attn_weight, im2col_step);
}
""",
        defs={"ms_deform_attn_forward": ["value", "value_spatial_shapes",
                                         "value_level_start_index", "sampling_locations",
                                         "attention_weights", "im2col_step"],
              "ms_deform_attn_backward": ["value", "value_spatial_shapes",
                                          "value_level_start_index", "sampling_locations",
                                          "attention_weights", "grad_output", "grad_value",
                                          "grad_sampling_loc", "grad_attn_weight",
                                          "im2col_step"]}),
    "deform_conv": Op(
        # mmcv 2.0.1's deform_conv_cuda.cu holds only the three sampling kernels' launchers
        # (deformable_im2col / col2im / col2im_coord); the convolution itself (shape checks, the
        # im2col_step chunks, the per-group GEMMs) is in its device-neutral front end
        # pytorch/deform_conv.cpp, compiled into mmcv's _ext. The front ends below do that part
        # for CUDA tensors, written here with ATen (bmm per group, as mmcv's addmm per group).
        cu=["deform_conv_cuda.cu"], modules=["mmcv.ops.deform_conv"],
        cpp="""
void deformable_im2col_cuda(Tensor data_im, Tensor data_offset, const int channels,
                            const int height, const int width, const int ksize_h,
                            const int ksize_w, const int pad_h, const int pad_w,
                            const int stride_h, const int stride_w, const int dilation_h,
                            const int dilation_w, const int parallel_imgs,
                            const int deformable_group, Tensor data_col);
void deformable_col2im_cuda(Tensor data_col, Tensor data_offset, const int channels,
                            const int height, const int width, const int ksize_h,
                            const int ksize_w, const int pad_h, const int pad_w,
                            const int stride_h, const int stride_w, const int dilation_h,
                            const int dilation_w, const int parallel_imgs,
                            const int deformable_group, Tensor grad_im);
void deformable_col2im_coord_cuda(Tensor data_col, Tensor data_im, Tensor data_offset,
                                  const int channels, const int height, const int width,
                                  const int ksize_h, const int ksize_w, const int pad_h,
                                  const int pad_w, const int stride_h, const int stride_w,
                                  const int dilation_h, const int dilation_w,
                                  const int parallel_imgs, const int deformable_group,
                                  Tensor grad_offset);

// One call's geometry. The launchers read every tensor as a dense (chunk of the) batch:
// input (N, C, H, W), offset (N, 2 * dg * kH * kW, Ho, Wo) with (dy, dx) pairs per kernel tap,
// the column buffer (C * kH * kW, step * Ho * Wo); a chunk of `step` images is a narrow() of a
// contiguous tensor along dim 0.
struct UgsDcn {
  int64_t n, c, h, w, cout, kh, kw, ho, wo, step, group, dg;
  int64_t cols() const { return c * kh * kw; }
  int64_t cols_per_group() const { return c / group * kh * kw; }
  int64_t pixels() const { return step * ho * wo; }
};

static void ugs_same(const Tensor& t, const Tensor& ref, const char* name) {
  TORCH_CHECK(t.device() == ref.device(), "deform_conv: ", name, " is on ", t.device(),
              ", input on ", ref.device());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "deform_conv: ", name, " is ",
              t.scalar_type(), ", input ", ref.scalar_type());
}

// The checks of mmcv's deform_conv_shape_check (plus device, dtype and im2col_step ones).
static UgsDcn ugs_dcn_geometry(const Tensor& input, const Tensor& offset, const Tensor& weight,
                               const Tensor* grad_output, int kW, int kH, int dW, int dH,
                               int padW, int padH, int dilationW, int dilationH, int group,
                               int deformable_group, int im2col_step) {
  TORCH_CHECK(input.dim() == 4, "deform_conv: input must be (N, C, H, W), got ", input.sizes());
  TORCH_CHECK(offset.dim() == 4, "deform_conv: offset must be 4-D, got ", offset.sizes());
  TORCH_CHECK(weight.dim() == 4, "deform_conv: weight must be (Cout, C / group, kH, kW)");
  TORCH_CHECK(kH > 0 && kW > 0 && weight.size(2) == kH && weight.size(3) == kW,
              "deform_conv: kernel size (", kH, ", ", kW, ") does not match weight ",
              weight.sizes());
  TORCH_CHECK(dH > 0 && dW > 0 && dilationH > 0 && dilationW > 0 && padH >= 0 && padW >= 0,
              "deform_conv: stride and dilation must be > 0, padding >= 0");
  TORCH_CHECK(group > 0 && deformable_group > 0, "deform_conv: group counts must be > 0");
  ugs_same(offset, input, "offset");
  ugs_same(weight, input, "weight");
  UgsDcn g;
  g.n = input.size(0); g.c = input.size(1); g.h = input.size(2); g.w = input.size(3);
  g.cout = weight.size(0); g.kh = kH; g.kw = kW; g.group = group; g.dg = deformable_group;
  TORCH_CHECK(g.c == weight.size(1) * group, "deform_conv: input has ", g.c,
              " channels, weight and group want ", weight.size(1) * group);
  TORCH_CHECK(g.cout % group == 0, "deform_conv: output channels not divisible by group");
  TORCH_CHECK(g.c % deformable_group == 0,
              "deform_conv: input channels not divisible by deformable_group");
  TORCH_CHECK(g.h >= kH && g.w >= kW, "deform_conv: input image is smaller than kernel");
  const int64_t ext_h = dilationH * (kH - 1) + 1, ext_w = dilationW * (kW - 1) + 1;
  TORCH_CHECK(g.h + 2 * padH >= ext_h && g.w + 2 * padW >= ext_w,
              "deform_conv: output size would be < 1");
  g.ho = (g.h + 2 * padH - ext_h) / dH + 1;
  g.wo = (g.w + 2 * padW - ext_w) / dW + 1;
  TORCH_CHECK(offset.size(0) == g.n && offset.size(1) == deformable_group * 2 * kH * kW &&
                  offset.size(2) == g.ho && offset.size(3) == g.wo,
              "deform_conv: offset must be (", g.n, ", ", deformable_group * 2 * kH * kW, ", ",
              g.ho, ", ", g.wo, "), got ", offset.sizes());
  TORCH_CHECK(im2col_step > 0 && g.n % im2col_step == 0, "deform_conv: batch size ", g.n,
              " not divisible by im2col_step ", im2col_step);
  g.step = im2col_step;
  if (grad_output != nullptr) {
    ugs_same(*grad_output, input, "gradOutput");
    TORCH_CHECK(grad_output->dim() == 4 && grad_output->size(0) == g.n &&
                    grad_output->size(1) == g.cout && grad_output->size(2) == g.ho &&
                    grad_output->size(3) == g.wo,
                "deform_conv: gradOutput must be (", g.n, ", ", g.cout, ", ", g.ho, ", ",
                g.wo, "), got ", grad_output->sizes());
  }
  return g;
}

// A tensor the launchers may write through data_ptr: `t` itself when contiguous, else a
// contiguous copy (copied back by ugs_write_back).
static Tensor ugs_dense(const Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }
static void ugs_write_back(Tensor& dst, const Tensor& dense) {
  if (!dense.is_same(dst)) dst.copy_(dense);
}

static void ugs_im2col(const UgsDcn& g, const Tensor& x, const Tensor& off, int64_t k, int dW,
                       int dH, int padW, int padH, int dilationW, int dilationH, Tensor& cols) {
  deformable_im2col_cuda(x.narrow(0, k * g.step, g.step), off.narrow(0, k * g.step, g.step),
                         g.c, g.h, g.w, g.kh, g.kw, padH, padW, dH, dW, dilationH, dilationW,
                         g.step, g.dg, cols);
}

// gradOutput's chunk k as (group, Cout / group, step * Ho * Wo), the column order of im2col.
static Tensor ugs_grad_chunk(const UgsDcn& g, const Tensor& go, int64_t k) {
  return go.narrow(0, k * g.step, g.step).transpose(0, 1)
      .reshape({g.group, g.cout / g.group, g.pixels()});
}

void deform_conv_forward(Tensor input, Tensor weight, Tensor offset, Tensor output,
                         Tensor columns, Tensor ones, int kW, int kH, int dW, int dH, int padW,
                         int padH, int dilationW, int dilationH, int group,
                         int deformable_group, int im2col_step) {
  // columns, ones: mmcv's scratch buffers, unused here (as in mmcv, the caller never reads them)
  UGS_ON_CUDA(input);
  const UgsDcn g = ugs_dcn_geometry(input, offset, weight, nullptr, kW, kH, dW, dH, padW, padH,
                                    dilationW, dilationH, group, deformable_group, im2col_step);
  ugs_same(output, input, "output");
  TORCH_CHECK(output.dim() == 4 && output.size(0) == g.n && output.size(1) == g.cout &&
                  output.size(2) == g.ho && output.size(3) == g.wo,
              "deform_conv: output must be (", g.n, ", ", g.cout, ", ", g.ho, ", ", g.wo,
              "), got ", output.sizes());
  const Tensor x = input.contiguous(), off = offset.contiguous();
  const Tensor wg = weight.contiguous().view({g.group, g.cout / g.group, g.cols_per_group()});
  Tensor cols = at::empty({g.cols(), g.pixels()}, x.options());   // im2col writes all of it
  for (int64_t k = 0; k < g.n / g.step; ++k) {
    ugs_im2col(g, x, off, k, dW, dH, padW, padH, dilationW, dilationH, cols);
    const Tensor y = at::bmm(wg, cols.view({g.group, g.cols_per_group(), g.pixels()}));
    output.narrow(0, k * g.step, g.step)
        .copy_(y.view({g.cout, g.step, g.ho, g.wo}).transpose(0, 1));
  }
}

void deform_conv_backward_input(Tensor input, Tensor offset, Tensor gradOutput,
                                Tensor gradInput, Tensor gradOffset, Tensor weight,
                                Tensor columns, int kW, int kH, int dW, int dH, int padW,
                                int padH, int dilationW, int dilationH, int group,
                                int deformable_group, int im2col_step) {
  // As mmcv: gradInput is accumulated into (col2im adds), gradOffset overwritten.
  UGS_ON_CUDA(input);
  const UgsDcn g = ugs_dcn_geometry(input, offset, weight, &gradOutput, kW, kH, dW, dH, padW,
                                    padH, dilationW, dilationH, group, deformable_group,
                                    im2col_step);
  ugs_same(gradInput, input, "gradInput");
  ugs_same(gradOffset, input, "gradOffset");
  TORCH_CHECK(gradInput.sizes() == input.sizes() && gradOffset.sizes() == offset.sizes(),
              "deform_conv: gradInput / gradOffset must have input's / offset's shape");
  const Tensor x = input.contiguous(), off = offset.contiguous(), go = gradOutput.contiguous();
  Tensor gi = ugs_dense(gradInput), goff = ugs_dense(gradOffset);
  // weight^T per group: (group, C / group * kH * kW, Cout / group)
  const Tensor wt = weight.contiguous()
                        .view({g.group, g.cout / g.group, g.cols_per_group()})
                        .transpose(1, 2);
  for (int64_t k = 0; k < g.n / g.step; ++k) {
    const Tensor cols =
        at::bmm(wt, ugs_grad_chunk(g, go, k)).contiguous().view({g.cols(), g.pixels()});
    deformable_col2im_coord_cuda(cols, x.narrow(0, k * g.step, g.step),
                                 off.narrow(0, k * g.step, g.step), g.c, g.h, g.w, g.kh, g.kw,
                                 padH, padW, dH, dW, dilationH, dilationW, g.step, g.dg,
                                 goff.narrow(0, k * g.step, g.step));
    deformable_col2im_cuda(cols, off.narrow(0, k * g.step, g.step), g.c, g.h, g.w, g.kh, g.kw,
                           padH, padW, dH, dW, dilationH, dilationW, g.step, g.dg,
                           gi.narrow(0, k * g.step, g.step));
  }
  ugs_write_back(gradInput, gi);
  ugs_write_back(gradOffset, goff);
}

void deform_conv_backward_parameters(Tensor input, Tensor offset, Tensor gradOutput,
                                     Tensor gradWeight, Tensor columns, Tensor ones, int kW,
                                     int kH, int dW, int dH, int padW, int padH, int dilationW,
                                     int dilationH, int group, int deformable_group,
                                     float scale, int im2col_step) {
  // As mmcv: gradWeight += scale * (gradOutput x columns^T), summed over the chunks.
  UGS_ON_CUDA(input);
  const UgsDcn g = ugs_dcn_geometry(input, offset, gradWeight, &gradOutput, kW, kH, dW, dH,
                                    padW, padH, dilationW, dilationH, group, deformable_group,
                                    im2col_step);
  const Tensor x = input.contiguous(), off = offset.contiguous(), go = gradOutput.contiguous();
  Tensor gw = ugs_dense(gradWeight);
  Tensor gwg = gw.view({g.group, g.cout / g.group, g.cols_per_group()});
  Tensor cols = at::empty({g.cols(), g.pixels()}, x.options());
  for (int64_t k = 0; k < g.n / g.step; ++k) {
    ugs_im2col(g, x, off, k, dW, dH, padW, padH, dilationW, dilationH, cols);
    gwg.baddbmm_(ugs_grad_chunk(g, go, k),
                 cols.view({g.group, g.cols_per_group(), g.pixels()}).transpose(1, 2), 1.0,
                 scale);
  }
  ugs_write_back(gradWeight, gw);
}
""",
        defs={"deform_conv_forward": ["input", "weight", "offset", "output", "columns", "ones",
                                      "kW", "kH", "dW", "dH", "padW", "padH", "dilationW",
                                      "dilationH", "group", "deformable_group", "im2col_step"],
              "deform_conv_backward_input": ["input", "offset", "gradOutput", "gradInput",
                                             "gradOffset", "weight", "columns", "kW", "kH",
                                             "dW", "dH", "padW", "padH", "dilationW",
                                             "dilationH", "group", "deformable_group",
                                             "im2col_step"],
              "deform_conv_backward_parameters": ["input", "offset", "gradOutput",
                                                  "gradWeight", "columns", "ones", "kW", "kH",
                                                  "dW", "dH", "padW", "padH", "dilationW",
                                                  "dilationH", "group", "deformable_group",
                                                  "scale", "im2col_step"]}),
}

# Start of every binding file. The front ends check the device themselves (mmcv's kernels
# would read host memory as device memory) and set the tensor's device as the current one
# (some launchers, e.g. roi_align_rotated's, do not).
_PRELUDE = """// Written by benchmarks/mmcv_cuda_ops.py: binds mmcv 2.0.1's CUDA launchers of one op
// under the names and argument lists of mmcv's _ext module.
#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>

using at::Tensor;

#define UGS_ON_CUDA(x)                                                              \\
  TORCH_CHECK((x).is_cuda(), #x " must be a CUDA tensor (this extension holds "     \\
              "mmcv's CUDA kernels only)");                                         \\
  const c10::cuda::CUDAGuard ugs_device_guard((x).device())
"""

# (file under mmcv/ops/csrc, text to find, replacement, why). mmcv 2.0.1's kernels of the ops
# above compile unchanged against torch 2.11 / CUDA 13.0, so nothing is edited; an entry here
# is applied to the extracted copy only, and the build fails loudly if its text is not found.
PATCHES: list = []

INSTALLED: dict = {}   # op -> compiled extension module
FAILED: dict = {}      # op -> why it is missing (the build log's path included)
_ORIGINAL: dict = {}   # mmcv module name -> its ext_module before install()
_BUILT_AT: dict = {}   # op -> (extracted source root, build folder) of its last build


def _is_tarball(path: Path) -> bool:
    return path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar")))


def prepare_sources(src, build_dir=DEFAULT_BUILD_DIR, ops=None) -> Path:
    """A copy of mmcv's ``ops/csrc`` headers and the kernel files of ``ops`` under
    ``build_dir/src`` (from the tarball or an extracted source folder), ``PATCHES`` applied, and
    each op's binding file written. Returns the copy's root (holding ``mmcv/ops/csrc``)."""
    src, build_dir = Path(src).expanduser().resolve(), Path(build_dir).expanduser().resolve()
    ops = list(OPS) if ops is None else list(ops)
    root = build_dir / "src"
    csrc = root / CSRC
    wanted = {f"pytorch/cuda/{f}" for op in ops for f in OPS[op].cu}

    def keep(rel):   # rel: a path under mmcv/ops/csrc
        common = rel.startswith("common/") and "/mlu/" not in rel and "/mps/" not in rel
        return common or rel in wanted

    files = {}   # path under mmcv/ops/csrc -> content
    if _is_tarball(src):
        with tarfile.open(src) as tf:
            for m in tf.getmembers():
                parts = m.name.split("/", 1)
                if len(parts) == 2 and parts[1].startswith(CSRC + "/") and m.isfile():
                    rel = parts[1][len(CSRC) + 1:]
                    if keep(rel):
                        with tf.extractfile(m) as f:
                            files[rel] = f.read()
    elif src.is_dir():
        cands = [src] + sorted(p for p in src.glob("mmcv-*") if p.is_dir())
        base = next((c / CSRC for c in cands if (c / CSRC).is_dir()), None)
        if base is None:
            raise FileNotFoundError(f"no {CSRC} under {src}")
        files = {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*")
                 if p.is_file() and keep(p.relative_to(base).as_posix())}
    else:
        raise FileNotFoundError(f"{src}: neither an mmcv source tarball nor a folder")
    if "common/pytorch_cuda_helper.hpp" not in files:
        raise FileNotFoundError(f"{src}: not an mmcv source release (no {CSRC}/common)")
    missing = sorted(wanted - set(files))
    if missing:
        raise FileNotFoundError(f"{src}: no {missing}")
    for rel, old, new, why in PATCHES:
        if rel in files:   # else that op is not built this time
            text = files[rel].decode()
            if old not in text:
                raise RuntimeError(f"patch for {rel} ({why}) does not apply: text not found")
            files[rel] = text.replace(old, new).encode()
    for rel, data in files.items():
        _write_if_changed(csrc / rel, data)
    for op in ops:
        _write_if_changed(build_dir / op / "src" / f"{op}_binding.cpp", binding_source(op).encode())
    return root


def _write_if_changed(dest: Path, data: bytes):
    """Write only a changed file, so that ninja keeps what an earlier build compiled."""
    if dest.exists() and dest.read_bytes() == data:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def binding_source(op: str) -> str:
    """The binding file of ``op``: the prelude, its front ends and the module's ``m.def``s."""
    spec = OPS[op]
    lines = [_PRELUDE, spec.cpp, "PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {"]
    for name, args in spec.defs.items():
        a = ", ".join(f'py::arg("{x}")' for x in args)
        lines.append(f'  m.def("{name}", &{name}, "{name} (mmcv CUDA kernel)", {a});')
    lines.append("}\n")
    return "\n".join(lines)


def _cuda_home():
    """torch's CUDA_HOME, or, where that folder has no CUDA headers (torch takes the folder
    above ``bin/nvcc``, e.g. ``/usr/local`` for a ``/usr/local/bin/nvcc`` wrapper script), the
    first of $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, /usr/local/cuda-* that has them; torch's
    extension builder (and the child processes, through the environment) then use that one."""
    import torch.utils.cpp_extension as ce

    def ok(h):
        return bool(h) and Path(h, "include", "cuda_runtime_api.h").exists()

    if not ok(ce.CUDA_HOME):
        cands = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
        cands += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
        home = next((c for c in cands if ok(c)), None)
        if home:
            ce.CUDA_HOME = os.environ["CUDA_HOME"] = home
    return ce.CUDA_HOME


def _wheel_dirs(sub: str) -> list:
    """``nvidia/*/<sub>`` folders of the nvidia-* wheels (torch's CUDA dependencies)."""
    extra = os.environ.get("MMCV_CUDA_OPS_EXTRA_INCLUDE", "") if sub == "include" else ""
    out = [p for p in extra.split(":") if p]
    for s in dict.fromkeys(list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path):
        out += sorted(glob.glob(os.path.join(s, "nvidia", "*", sub)))
    return out


_LIB_HEADERS = ("cublas", "cusparse", "cusolver", "cufft", "curand")


def cuda_fixups(build_dir: Path) -> tuple:
    """(extra include folders, extra linker flags) for a CUDA toolkit that holds nvcc but lacks
    what torch's extension build expects from it: the cuBLAS / cuSPARSE / cuSOLVER headers that
    ``ATen/cuda/CUDAContext.h`` includes, or an unversioned ``lib64/libcudart.so`` for
    ``-lcudart``. The missing files are linked, from the nvidia-* wheels, into
    ``build_dir/cuda_extra_include`` / ``cuda_extra_lib``; ([], []) when nothing is missing."""
    home = _cuda_home()
    tk = [Path(home, "include"), Path(home, "targets/x86_64-linux/include")] if home else []
    inc, ld = [], []
    needed = ("cusparse.h", "cublas_v2.h", "cublasLt.h", "cusolverDn.h")
    if not all(any((d / h).exists() for d in tk) for h in needed):
        shim = build_dir / "cuda_extra_include"
        shutil.rmtree(shim, ignore_errors=True)
        shim.mkdir(parents=True)
        for r in _wheel_dirs("include"):
            for h in Path(r).glob("*.h"):   # only headers the toolkit lacks: none shadows its own
                if (h.name.startswith(_LIB_HEADERS) and not any((d / h.name).exists() for d in tk)
                        and not (shim / h.name).exists()):
                    (shim / h.name).symlink_to(h.resolve())
        inc = [str(shim)] if any(shim.iterdir()) else []
    if home and not any(Path(home, d, "libcudart.so").exists() for d in ("lib64", "lib")):
        libs = [p for r in _wheel_dirs("lib") for p in sorted(Path(r).glob("libcudart.so.*"))]
        if libs:
            shim = build_dir / "cuda_extra_lib"
            shutil.rmtree(shim, ignore_errors=True)
            shim.mkdir(parents=True)
            (shim / "libcudart.so").symlink_to(libs[0].resolve())
            ld = [f"-L{shim}", f"-Wl,-rpath,{libs[0].parent}"]
    return inc, ld


def _fixups(build_dir: Path) -> tuple:
    """``cuda_fixups`` once per process; a child of ``build()`` takes the parent's (env)."""
    env = os.environ.get("_UGS_MMCV_CUDA_FIXUPS")
    if env is None:
        os.environ["_UGS_MMCV_CUDA_FIXUPS"] = env = json.dumps(cuda_fixups(build_dir))
    inc, ld = json.loads(env)
    return list(inc), list(ld)


def _load(op: str, root: Path, build_dir: Path, verbose: bool):
    """``torch.utils.cpp_extension.load`` of one op (the same arguments in the child that
    compiles and in the parent that imports, so the parent's call finds it built)."""
    from torch.utils.cpp_extension import load

    csrc = root / CSRC
    out = build_dir / op / "build"
    out.mkdir(parents=True, exist_ok=True)
    inc, ld = _fixups(build_dir)
    flags = ["-O3", "-std=c++17", "-DMMCV_WITH_CUDA"]
    return load(name=f"ugs_mmcv_{op}",
                sources=[str(build_dir / op / "src" / f"{op}_binding.cpp")]
                + [str(csrc / "pytorch/cuda" / f) for f in OPS[op].cu],
                extra_include_paths=[str(csrc / "common"), str(csrc / "common/cuda")] + inc,
                extra_cflags=flags, extra_cuda_cflags=flags, extra_ldflags=ld,
                build_directory=str(out), with_cuda=True, verbose=verbose)


def build(src, build_dir=DEFAULT_BUILD_DIR, ops=None, jobs=None, log=print) -> dict:
    """Compile ``ops`` (default: all of ``OPS``, in priority order), each as its own extension,
    in up to ``jobs`` child processes at once (default: the CPU count), then import them here.
    Returns {op: module or the error text}; an op that failed does not stop the others."""
    build_dir = Path(build_dir).expanduser().resolve()
    ops = _check_ops(ops)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
    t0 = time.time()
    root = prepare_sources(src, build_dir, ops)
    os.environ.pop("_UGS_MMCV_CUDA_FIXUPS", None)   # look again: the build folder may be new
    _fixups(build_dir)
    jobs = max(1, jobs or os.cpu_count() or 1)
    # each op has two sources (its binding and its kernel file): ninja may run both at once
    env = dict(os.environ, PYTHONUNBUFFERED="1", MAX_JOBS=os.environ.get("MAX_JOBS", "2"))
    pending, running, status = list(ops), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            op = pending.pop(0)
            logf = open(build_dir / op / "build.log", "w")
            cmd = [sys.executable, os.path.abspath(__file__), "--_build-one", op,
                   "--src", str(root), "--build-dir", str(build_dir)]
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
            running[op] = (proc, logf, time.time())
        for op, (p, logf, ts) in list(running.items()):
            if p.poll() is not None:
                logf.close()
                status[op] = (p.returncode, time.time() - ts)
                del running[op]
                ok = "ok" if p.returncode == 0 else "FAILED"
                log(f"  built {op}: {ok} ({time.time() - ts:.0f} s)")
        time.sleep(0.2)
    result = {}
    for op in ops:
        logp = build_dir / op / "build.log"
        if status[op][0] != 0:
            tail = _error_lines(logp)
            result[op] = f"compile failed (log {logp}): {tail}"
            continue
        try:
            result[op] = _load(op, root, build_dir, verbose=False)
            _BUILT_AT[op] = (root, build_dir)
        except Exception as e:   # noqa: BLE001 - reported per op
            result[op] = f"import failed (log {logp}): {type(e).__name__}: {e}"
    summary = {op: ("ok" if not isinstance(r, str) else r) for op, r in result.items()}
    (build_dir / "build_summary.json").write_text(json.dumps(
        dict(ops=summary, seconds=round(time.time() - t0, 1), torch=torch.__version__,
             arch=os.environ.get("TORCH_CUDA_ARCH_LIST"), src=str(src)), indent=1) + "\n")
    return result


def _error_lines(logp: Path, n=3) -> str:
    try:
        lines = logp.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errs = [ln.strip() for ln in lines if "error:" in ln or "error :" in ln]   # the compiler's
    return " | ".join(errs[:n] or lines[-n:])[:600]


def _check_ops(ops):
    if ops is None:
        return list(OPS)
    bad = [o for o in ops if o not in OPS]
    if bad:
        raise ValueError(f"unknown ops {bad}; known: {list(OPS)}")
    return [o for o in OPS if o in ops]   # priority order


class ExtProxy(types.ModuleType):
    """Stands for an mmcv module's ``ext_module``: for a name in ``funcs``, calls with a CUDA
    tensor among their arguments go to the compiled function, all others to mmcv's original
    (its CPU op); any other name is the original's."""

    def __init__(self, original, funcs: dict):
        super().__init__(f"ugs_mmcv_cuda_ops_proxy({getattr(original, '__name__', '?')})")
        self._original, self._funcs = original, dict(funcs)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_original", "_funcs"):
            raise AttributeError(name)
        fn = self._funcs.get(name)
        if fn is None:
            return getattr(self._original, name)
        original = self._original

        def route(*args, **kwargs):
            on_cuda = any(isinstance(a, torch.Tensor) and a.is_cuda
                          for a in (*args, *kwargs.values()))
            return (fn if on_cuda else getattr(original, name))(*args, **kwargs)

        route.__name__ = name
        return route


def install(src=None, build_dir=DEFAULT_BUILD_DIR, ops=None, jobs=None, log=print) -> list:
    """Build ``ops`` from the mmcv source ``src`` (tarball or folder) and put them behind mmcv's
    ``ext_module`` names; returns the names of the ops installed (in ``OPS`` order). Ops that
    failed are in ``FAILED``. Several calls add up; ``uninstall()`` undoes them all."""
    import importlib

    try:
        importlib.import_module("mmcv._ext")
    except ImportError as e:
        raise RuntimeError(f"mmcv's _ext (its CPU ops) is not importable: {e}") from e
    built = build(src, build_dir, ops, jobs, log)
    for op, mod in built.items():
        if isinstance(mod, str):
            FAILED[op] = mod
            INSTALLED.pop(op, None)
        else:
            _attach(op, mod)
    return [op for op in OPS if op in INSTALLED]


def _attach(op: str, mod) -> bool:
    """Put the compiled module ``mod`` of ``op`` behind the ``ext_module`` of each mmcv module
    of ``OPS[op].modules`` (a proxy, see ``ExtProxy``); records it in ``INSTALLED`` (or why not
    in ``FAILED``)."""
    import importlib

    funcs = {name: getattr(mod, name) for name in OPS[op].defs}
    hit = []
    for mname in OPS[op].modules:
        try:
            m = importlib.import_module(mname)
        except ImportError:
            continue   # e.g. mmcv.ops.nms_rotated: in mmcv 2.0.1 nms_rotated is in mmcv.ops.nms
        cur = getattr(m, "ext_module", None)
        if cur is None:
            continue
        if isinstance(cur, ExtProxy):
            cur._funcs.update(funcs)
        else:
            _ORIGINAL.setdefault(mname, cur)
            m.ext_module = ExtProxy(cur, funcs)
        hit.append(mname)
    if hit:
        INSTALLED[op] = mod
        FAILED.pop(op, None)
    else:
        FAILED[op] = f"no mmcv module of {OPS[op].modules} has an ext_module"
    return bool(hit)


def uninstall():
    """Give each patched mmcv module its original ``ext_module`` back."""
    import importlib

    for mname, orig in _ORIGINAL.items():
        importlib.import_module(mname).ext_module = orig
    _ORIGINAL.clear()
    INSTALLED.clear()


def describe() -> dict:
    """What came from this build, for a benchmark's JSON."""
    return dict(installed=[op for op in OPS if op in INSTALLED],
                failed={op: FAILED[op] for op in OPS if op in FAILED},
                modules={op: getattr(INSTALLED[op], "__file__", None)
                         for op in OPS if op in INSTALLED},
                arch=os.environ.get("TORCH_CUDA_ARCH_LIST"))


# ---------------------------------------------------------------- smoke calls (CUDA)

def _rboxes(n, g):
    return torch.cat([torch.rand(n, 2, generator=g) * 20, torch.rand(n, 2, generator=g) * 8 + 2,
                      (torch.rand(n, 1, generator=g) - 0.5) * 3], 1)


def _maxdiff(a, b):
    return float((a.detach().double().cpu() - b.detach().double().cpu()).abs().max())


def _smoke(op, g):
    """One small call of ``op`` on CUDA through mmcv's public function; returns a short note.
    Raises on a failure or a result that disagrees with mmcv's CPU op (where there is one)."""
    import mmcv.ops as mo

    def close(a, b, tol, what):
        d = _maxdiff(a, b)
        if not d <= tol:
            raise AssertionError(f"{what}: CUDA vs CPU max diff {d:.3g} > {tol}")
        return f"{what} vs CPU {d:.1e}"

    dev = "cuda"
    if op == "diff_iou_rotated":
        a = _rboxes(64, g).to(dev).requires_grad_(True)
        iou = mo.diff_iou_rotated_2d(a[None], _rboxes(64, g).to(dev)[None])
        iou.sum().backward()
        assert torch.isfinite(iou).all() and torch.isfinite(a.grad).all()
        return f"iou mean {iou.mean().item():.3f}, grad finite"
    if op == "convex_iou":
        pts, polys = torch.rand(40, 18, generator=g) * 10, torch.rand(7, 8, generator=g) * 10
        iou = mo.convex_iou(pts.to(dev), polys.to(dev))
        giou, grad = mo.convex_giou(pts.to(dev), torch.rand(40, 8, generator=g).to(dev) * 10)
        assert iou.shape == (40, 7) and giou.shape == (40,) and grad.shape == (40, 18)
        assert torch.isfinite(iou).all() and torch.isfinite(giou).all()
        return "convex_iou + convex_giou ran"
    if op == "min_area_polygons":
        out = mo.min_area_polygons(torch.rand(30, 18, generator=g).to(dev) * 10)
        assert out.shape == (30, 8) and torch.isfinite(out).all()
        return "ran"
    if op == "chamfer_distance":
        # mmcv 2.0.1's kernels need float32, contiguous (B, N, 2) / (B, M, 2) point sets with
        # N and M even (forward: an odd count makes the kernel read past its shared-memory
        # tile) and, for the backward, N == M (its launcher passes the two counts swapped:
        # reads and writes out of bounds otherwise; this call once used N=50, M=40 and got an
        # illegal memory access). The binding refuses other inputs. mmrotate's Oriented
        # RepPoints calls it with 40 points on both sides.
        a, b = torch.rand(2, 48, 2, generator=g), torch.rand(2, 32, 2, generator=g)
        d1, d2, _, _ = mo.chamfer_distance(a.to(dev), b.to(dev))   # N != M: forward only
        ref = torch.cdist(a.double(), b.double()).pow(2)
        note = close(d1, ref.min(2).values, 1e-5, "dist1") + ", "
        note += close(d2, ref.min(1).values, 1e-5, "dist2") + "; "
        b = torch.rand(2, 48, 2, generator=g)   # N == M for the backward
        ah, bh = a.double().requires_grad_(True), b.double().requires_grad_(True)
        ac, bc = a.to(dev).requires_grad_(True), b.to(dev).requires_grad_(True)
        d1, d2, _, _ = mo.chamfer_distance(ac, bc)
        (d1.sum() + 2 * d2.sum()).backward()
        ref = torch.cdist(ah, bh).pow(2)
        (ref.min(2).values.sum() + 2 * ref.min(1).values.sum()).backward()
        return note + close(ac.grad, ah.grad, 1e-4, "grad a") + ", " + close(
            bc.grad, bh.grad, 1e-4, "grad b")
    if op == "nms_rotated":
        boxes, scores = _rboxes(200, g), torch.rand(200, generator=g)
        _, keep_c = mo.nms_rotated(boxes.to(dev), scores.to(dev), 0.3)
        _, keep_h = mo.nms_rotated(boxes, scores, 0.3)
        same = torch.equal(keep_c.cpu().sort().values, keep_h.sort().values)
        if not same:
            raise AssertionError(f"kept {len(keep_c)} on CUDA, {len(keep_h)} on CPU")
        return f"kept {len(keep_c)}/200, same as CPU"
    if op == "box_iou_rotated":
        b1, b2 = _rboxes(50, g), _rboxes(30, g)
        return close(mo.box_iou_rotated(b1.to(dev), b2.to(dev)), mo.box_iou_rotated(b1, b2),
                     1e-4, "iou")
    if op == "roi_align_rotated":
        feat = torch.rand(2, 4, 24, 24, generator=g)
        rois = torch.cat([torch.randint(0, 2, (10, 1), generator=g).float(), _rboxes(10, g)], 1)
        fc = feat.to(dev).requires_grad_(True)
        out_c = mo.roi_align_rotated(fc, rois.to(dev), (3, 3), 1.0, 2, True, False)
        out_c.sum().backward()
        fh = feat.clone().requires_grad_(True)
        out_h = mo.roi_align_rotated(fh, rois, (3, 3), 1.0, 2, True, False)
        out_h.sum().backward()
        return close(out_c, out_h, 1e-4, "out") + ", " + close(fc.grad, fh.grad, 1e-4, "grad")
    if op == "nms":
        xy = torch.rand(300, 2, generator=g) * 50
        boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=g) * 20 + 1], 1)
        scores = torch.rand(300, generator=g)
        _, keep_c = mo.nms(boxes.to(dev), scores.to(dev), 0.5)
        _, keep_h = mo.nms(boxes, scores, 0.5)
        if not torch.equal(keep_c.cpu(), keep_h):
            raise AssertionError(f"kept {len(keep_c)} on CUDA, {len(keep_h)} on CPU")
        return f"kept {len(keep_c)}/300, same as CPU"
    if op == "roi_align":
        feat = torch.rand(2, 4, 24, 24, generator=g)
        xy = torch.rand(10, 2, generator=g) * 15
        rois = torch.cat([torch.randint(0, 2, (10, 1), generator=g).float(), xy,
                          xy + torch.rand(10, 2, generator=g) * 8 + 1], 1)
        fc = feat.to(dev).requires_grad_(True)
        out_c = mo.roi_align(fc, rois.to(dev), (3, 3), 1.0, 2, "avg", True)
        out_c.sum().backward()
        fh = feat.clone().requires_grad_(True)
        out_h = mo.roi_align(fh, rois, (3, 3), 1.0, 2, "avg", True)
        out_h.sum().backward()
        return close(out_c, out_h, 1e-4, "out") + ", " + close(fc.grad, fh.grad, 1e-4, "grad")
    if op == "sigmoid_focal_loss":
        x = torch.randn(64, 5, generator=g)
        t = torch.randint(0, 6, (64,), generator=g)
        xc = x.to(dev).requires_grad_(True)
        loss = mo.sigmoid_focal_loss(xc, t.to(dev), 2.0, 0.25, None, "sum")
        loss.backward()
        onehot = torch.nn.functional.one_hot(t, 6)[:, :5].double()
        p = x.double().sigmoid()
        pt = p * (1 - onehot) + (1 - p) * onehot
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        ref = (bce(x.double(), onehot, reduction="none")
               * (0.25 * onehot + 0.75 * (1 - onehot)) * pt.pow(2)).sum()
        return close(loss, ref, 1e-3, "loss") + ", grad ran"
    if op == "ms_deform_attn":
        from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                      multi_scale_deformable_attn_pytorch)
        shapes = torch.tensor([[8, 8], [4, 4]])
        start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
        bs, nh, ch, nq, nl, npnt = 2, 2, 8, 5, 2, 3
        value = torch.rand(bs, int(shapes.prod(1).sum()), nh, ch, generator=g)
        loc = torch.rand(bs, nq, nh, nl, npnt, 2, generator=g)
        w = torch.rand(bs, nq, nh, nl, npnt, generator=g)
        w = w / w.sum((-1, -2), keepdim=True)
        vc = value.to(dev).requires_grad_(True)
        out_c = MultiScaleDeformableAttnFunction.apply(vc, shapes.to(dev), start.to(dev),
                                                       loc.to(dev), w.to(dev), 64)
        out_c.sum().backward()
        vh = value.clone().requires_grad_(True)
        out_h = multi_scale_deformable_attn_pytorch(vh, shapes, loc, w)
        out_h.sum().backward()
        return close(out_c, out_h, 1e-4, "out") + ", " + close(vc.grad, vh.grad, 1e-4, "grad")
    if op == "deform_conv":
        # Against mmcv's CPU op (mmcv 2.0.1 has deform_conv_forward / backward_* on CPU:
        # pytorch/cpu/deform_conv.cpp, the same front end). torchvision.ops.deform_conv2d uses
        # the same offset layout ((dy, dx) per kernel tap, per offset group; checked equal
        # to mmcv's CPU op to 1e-14 in float64), so either serves as the reference.
        # Two configurations: plain 3x3 with two im2col chunks, and stride / dilation /
        # group / deformable group, all with offsets of a few pixels (some outside the image).
        notes = []
        for (n, c, h, w, cout, k, s, p, d, grp, dg, step) in [
                (4, 6, 11, 9, 8, 3, 1, 1, 1, 1, 1, 2),
                (2, 8, 12, 10, 6, 3, 2, 2, 2, 2, 2, 32)]:
            ho, wo = (h + 2 * p - d * (k - 1) - 1) // s + 1, (w + 2 * p - d * (k - 1) - 1) // s + 1
            x = torch.rand(n, c, h, w, generator=g)
            off = torch.randn(n, 2 * dg * k * k, ho, wo, generator=g) * 2
            wt = torch.randn(cout, c // grp, k, k, generator=g) * 0.1
            gy = torch.randn(n, cout, ho, wo, generator=g)
            res = []
            for dv in (dev, "cpu"):
                xs, offs, ws = (t.to(dv).requires_grad_(True) for t in (x, off, wt))
                y = mo.deform_conv2d(xs, offs, ws, s, p, d, grp, dg, False, step)
                y.backward(gy.to(dv))
                res.append((y, xs.grad, offs.grad, ws.grad))
            notes.append(", ".join(close(a, b, 1e-4 if what == "out" else 1e-3, what)
                                   for a, b, what in zip(*res, ("out", "grad input",
                                                                "grad offset", "grad weight"))))
        return "; ".join(notes)
    raise KeyError(op)


def _error_note(e: BaseException) -> str:
    return f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:400]


def _smoke_here(op, seed) -> str:
    """``_smoke`` of ``op`` in this process, as ``'ok: ...'`` or ``'error: ...'``."""
    try:
        note = "ok: " + _smoke(op, torch.Generator().manual_seed(seed))
        torch.cuda.synchronize()   # an asynchronous kernel fault surfaces here, in the try
        return note
    except Exception as e:   # noqa: BLE001 - reported per op
        return _error_note(e)


_SMOKE_MARK = "UGS_MMCV_CUDA_SMOKE_RESULT "


def _smoke_child(op, root: Path, build_dir: Path, seed) -> int:
    """Body of ``--_smoke-one OP``: load the op as built (ninja finds it up to date), put it
    behind mmcv's ``ext_module``, run its smoke call and print the result on a marked line."""
    try:
        import importlib

        importlib.import_module("mmcv._ext")
        if not _attach(op, _load(op, root, build_dir, verbose=False)):
            raise RuntimeError(FAILED[op])
        note = _smoke_here(op, seed)
    except Exception as e:   # noqa: BLE001 - reported to the parent
        note = _error_note(e)
    print(_SMOKE_MARK + json.dumps(note), flush=True)
    return 0


def _child_note(op, rc, logp: Path) -> str:
    lines = logp.read_text(errors="replace").splitlines() if logp.exists() else []
    for ln in reversed(lines):
        if ln.startswith(_SMOKE_MARK):
            return json.loads(ln[len(_SMOKE_MARK):])
    tail = " | ".join(ln.strip() for ln in lines[-3:] if ln.strip())
    how = f"killed by signal {-rc}" if rc < 0 else f"exited with {rc}"
    return f"error: smoke process {how} without a result (log {logp}): {tail}"[:600]


def smoke(ops=None, seed=0, isolate=True, jobs=None, timeout=300) -> dict:
    """``{op: 'ok: ...' or 'error: ...'}`` for ``ops`` (default: every op of ``OPS``; one not
    installed reads ``error: not built: why``).

    With ``isolate`` (the default) each op's call runs in a child process of its own
    (``--_smoke-one OP``: it loads the op's module from this process's build folder, puts it
    behind mmcv's ``ext_module`` and runs the call), up to ``jobs`` at once (default: 6, or
    the CPU count if smaller), each given ``timeout`` seconds, its output in
    ``BUILD_DIR/<op>/smoke.log``: a kernel fault (an illegal memory access leaves the
    process's CUDA context unusable) or a crash then costs that op's result only.
    ``isolate=False`` runs them all here, one after the other."""
    ops = list(OPS) if ops is None else list(ops)
    res, todo = {}, []
    for op in ops:
        if op in INSTALLED:
            todo.append(op)
        else:
            res[op] = f"error: not built: {FAILED.get(op, 'not asked for')}"
    if not isolate:
        res.update({op: _smoke_here(op, seed) for op in todo})
        return {op: res[op] for op in ops}
    jobs = max(1, jobs or min(6, os.cpu_count() or 1))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = {}
    while todo or running:
        while todo and len(running) < jobs:
            op = todo.pop(0)
            root, build_dir = _BUILT_AT[op]
            logp = build_dir / op / "smoke.log"
            logf = open(logp, "w")
            cmd = [sys.executable, os.path.abspath(__file__), "--_smoke-one", op,
                   "--src", str(root), "--build-dir", str(build_dir), "--seed", str(seed)]
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
            running[op] = (proc, logf, logp, time.time())
        for op, (proc, logf, logp, ts) in list(running.items()):
            rc = proc.poll()
            if rc is None and time.time() - ts > timeout:
                proc.kill()
                rc = proc.wait()
                res[op] = f"error: smoke call took more than {timeout} s (log {logp})"
            if rc is not None:
                logf.close()
                res.setdefault(op, _child_note(op, rc, logp))
                del running[op]
        time.sleep(0.2)
    return {op: res[op] for op in ops}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="mmcv-2.0.1.tar.gz or its extracted folder")
    ap.add_argument("--build-dir", default=DEFAULT_BUILD_DIR)
    ap.add_argument("--ops", nargs="+", choices=list(OPS), help="default: all, in priority order")
    ap.add_argument("--jobs", type=int, help="ops compiled at once (default: the CPU count)")
    ap.add_argument("--dry-run", action="store_true",
                    help="only prepare the sources and bindings and print what would be compiled")
    ap.add_argument("--build-only", action="store_true",
                    help="only compile and import the ops (no CUDA device needed), no smoke calls")
    ap.add_argument("--out", help="write the per-op results as JSON")
    ap.add_argument("--smoke-jobs", type=int,
                    help="smoke calls run at once, each in its own process (default: 6 or the "
                         "CPU count if smaller)")
    ap.add_argument("--smoke-timeout", type=int, default=300,
                    help="seconds one op's smoke process may take (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the smoke calls' inputs")
    ap.add_argument("--_build-one", dest="build_one", help=argparse.SUPPRESS)
    ap.add_argument("--_smoke-one", dest="smoke_one", choices=list(OPS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    build_dir = Path(args.build_dir).expanduser().resolve()
    if args.build_one:   # child process of build(): compile one op, verbose log on stdout
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
        _load(args.build_one, Path(args.src), build_dir, verbose=True)
        return 0
    if args.smoke_one:   # child process of smoke(): one op's smoke call (--src: the copy)
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
        return _smoke_child(args.smoke_one, Path(args.src), build_dir, args.seed)
    ops = _check_ops(args.ops)
    if args.dry_run:
        root = prepare_sources(args.src, build_dir, ops)
        for op in ops:
            print(op, build_dir / op / "src" / f"{op}_binding.cpp",
                  *[root / CSRC / "pytorch/cuda" / f for f in OPS[op].cu])
        print("include:", root / CSRC / "common", root / CSRC / "common/cuda")
        return 0
    if args.build_only:
        built = build(args.src, build_dir, ops, args.jobs)
        for op in ops:
            print(f"{op}: {'built' if not isinstance(built[op], str) else built[op]}")
        return 0 if all(not isinstance(m, str) for m in built.values()) else 1
    if not torch.cuda.is_available():
        print("no CUDA device: these kernels cannot run here")
        return 2
    t0 = time.time()
    install(args.src, build_dir, ops, args.jobs)
    print(f"build + install: {time.time() - t0:.0f} s (logs under {build_dir})")
    res = smoke(ops, args.seed, jobs=args.smoke_jobs, timeout=args.smoke_timeout)
    for op in ops:
        print(f"{op}: {res[op]}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(dict(describe(), smoke=res, seconds=round(time.time() - t0, 1),
                           device=torch.cuda.get_device_name(0), torch=torch.__version__),
                      f, indent=1)
            f.write("\n")
    return 0 if all(v.startswith("ok") for v in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
