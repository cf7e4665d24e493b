"""Pure-PyTorch stand-ins for mmcv CUDA kernels, for GPU machines whose mmcv was built without
its CUDA ops (e.g. mmcv 2.0.1 compiled for its CPU ops against a newer torch).

* ``use_pytorch_focal_loss()`` swaps mmcv's ``sigmoid_focal_loss`` CUDA kernel (used by mmdet's
  ``FocalLoss`` on CUDA tensors) for the same element-wise formula in PyTorch.
* ``use_pytorch_ops()`` does that and also routes, for CUDA tensors only, mmcv's ``nms`` to
  ``torchvision.ops.nms`` (plus mmcv's score threshold and ``max_num``), mmcv's ``roi_align``
  to ``torchvision.ops.roi_align`` (the same aligned / sampling-ratio semantics; mmcv's own
  ``RoIAlign(use_torchvision=True)`` does the same) and ``MultiScaleDeformableAttnFunction``
  to mmcv's own ``multi_scale_deformable_attn_pytorch``. CPU tensors keep mmcv's CPU ops.

``tests/test_torch_fallbacks.py`` checks each stand-in against mmcv's CPU op (or mmdet's
PyTorch focal loss) on the CPU. Benchmarks that use them say so in their output; they change
the speed of both arms of a comparison alike, not what is computed.
"""
import torch
import torch.nn.functional as F


def sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25, weight=None, reduction="none"):
    """mmcv's kernel: ``target`` holds class indices, ``num_classes`` meaning background."""
    t = F.one_hot(target, pred.size(1) + 1)[:, :pred.size(1)].type_as(pred)
    p = pred.sigmoid()
    modulator = ((1 - p) * t + p * (1 - t)).pow(gamma) * (alpha * t + (1 - alpha) * (1 - t))
    loss = F.binary_cross_entropy_with_logits(pred, t, reduction="none") * modulator
    if weight is not None:
        loss = loss * weight.view(-1, 1)
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def nms_indices(boxes, scores, iou_threshold, offset=0, score_threshold=0.0, max_num=-1):
    """mmcv's ``NMSop``: indices of the kept boxes, highest score first, after dropping scores
    not above ``score_threshold`` (mmcv keeps ``score > threshold``) and keeping ``max_num``."""
    from torchvision.ops import nms

    if offset != 0:
        raise ValueError("nms fallback: only offset 0 (mmdet's default) is supported")
    idx = torch.arange(len(boxes), device=boxes.device)
    if score_threshold > 0:
        valid = scores > score_threshold
        boxes, scores, idx = boxes[valid], scores[valid], idx[valid]
    keep = nms(boxes.float(), scores.float(), float(iou_threshold))
    if max_num > 0:
        keep = keep[:max_num]
    return idx[keep]


def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=0, pool_mode="avg",
              aligned=True):
    """mmcv's ``roi_align`` (average pooling) through ``torchvision.ops.roi_align``."""
    from torchvision.ops import roi_align as tv_roi_align

    if pool_mode != "avg":
        raise ValueError("roi_align fallback: only pool_mode 'avg' is supported")
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    return tv_roi_align(input, rois.to(input.dtype), size, spatial_scale, sampling_ratio, aligned)


def use_pytorch_focal_loss():
    import mmdet.models.losses.focal_loss as fl

    fl._sigmoid_focal_loss = sigmoid_focal_loss


def use_pytorch_ops():
    """Every stand-in above, for CUDA tensors (see the module docstring)."""
    import importlib

    use_pytorch_focal_loss()
    nms_mod = importlib.import_module("mmcv.ops.nms")
    roi_mod = importlib.import_module("mmcv.ops.roi_align")
    msda_mod = importlib.import_module("mmcv.ops.multi_scale_deform_attn")
    mmcv_nms, mmcv_roi_align = nms_mod.NMSop.apply, roi_mod.roi_align

    def nms_apply(boxes, scores, iou_threshold, offset, score_threshold, max_num):
        if boxes.is_cuda:
            return nms_indices(boxes, scores, iou_threshold, offset, score_threshold, max_num)
        return mmcv_nms(boxes, scores, iou_threshold, offset, score_threshold, max_num)

    def roi_align_any(input, rois, *args, **kwargs):
        return (roi_align if input.is_cuda else mmcv_roi_align)(input, rois, *args, **kwargs)

    def msda_apply(value, spatial_shapes, level_start_index, sampling_locations, attention_weights,
                   im2col_step):
        return msda_mod.multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations,
                                                            attention_weights)

    nms_mod.NMSop.apply = nms_apply
    roi_mod.roi_align = roi_align_any
    msda_mod.MultiScaleDeformableAttnFunction.apply = msda_apply
