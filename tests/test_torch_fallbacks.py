"""The PyTorch stand-ins for mmcv's CUDA kernels (benchmarks/torch_fallbacks.py, used by the GPU
check on machines whose mmcv has no CUDA ops) against mmcv's CPU ops and mmdet's PyTorch focal
loss, on the CPU: the stand-ins must compute what the kernels they replace compute."""
import os
import sys

import pytest
import torch

pytest.importorskip("mmcv.ops")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import torch_fallbacks as tf  # noqa: E402
from mmcv.ops import nms as mmcv_nms  # noqa: E402
from mmcv.ops import roi_align as mmcv_roi_align  # noqa: E402


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = 5 + torch.rand(n, 2, generator=g) * 40
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize("iou, score_thr, max_num", [(0.5, 0.0, -1), (0.3, 0.2, 10), (0.7, 0.05, 3)])
def test_nms_keeps_what_mmcvs_nms_keeps(iou, score_thr, max_num):
    boxes, scores = _boxes(300, seed=int(iou * 10))
    _, want = mmcv_nms(boxes, scores, iou, score_threshold=score_thr, max_num=max_num)
    got = tf.nms_indices(boxes, scores, iou, 0, score_thr, max_num)
    assert len(want) > 0
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("aligned, sampling_ratio, scale", [(True, 0, 0.25), (True, 2, 0.125), (False, 0, 0.5)])
def test_roi_align_equals_mmcvs_cpu_roi_align(aligned, sampling_ratio, scale):
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 8, 40, 48, generator=g)
    boxes, _ = _boxes(30, seed=2)
    rois = torch.cat([torch.randint(0, 2, (30, 1), generator=g).float(), boxes], 1)
    want = mmcv_roi_align(feats, rois, 7, scale, sampling_ratio, "avg", aligned)
    got = tf.roi_align(feats, rois, 7, scale, sampling_ratio, "avg", aligned)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_focal_loss_equals_mmdets_pytorch_focal_loss():
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    g = torch.Generator().manual_seed(3)
    pred = torch.randn(50, 10, generator=g)
    labels = torch.randint(0, 11, (50,), generator=g)          # 10 = background
    target = torch.nn.functional.one_hot(labels, 11)[:, :10].float()
    want = py_sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25, reduction="sum")
    got = tf.sigmoid_focal_loss(pred, labels, 2.0, 0.25, None, "sum")
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_use_pytorch_ops_leaves_cpu_tensors_on_mmcvs_ops():
    import importlib

    roi_mod = importlib.import_module("mmcv.ops.roi_align")
    nms_mod = importlib.import_module("mmcv.ops.nms")
    saved = roi_mod.roi_align, nms_mod.NMSop.apply
    try:
        tf.use_pytorch_ops()
        boxes, scores = _boxes(100, seed=4)
        _, want = mmcv_nms(boxes, scores, 0.5)           # the public function, now patched inside
        assert want.tolist() == tf.nms_indices(boxes, scores, 0.5).tolist()
        assert roi_mod.roi_align is not saved[0]
    finally:
        roi_mod.roi_align, nms_mod.NMSop.apply = saved
        import mmdet.models.losses.focal_loss as fl
        from mmcv.ops import sigmoid_focal_loss
        fl._sigmoid_focal_loss = sigmoid_focal_loss
