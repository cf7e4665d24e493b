"""Pure-PyTorch stand-ins for mmcv CUDA kernels, for GPU machines whose mmcv was built without
its CUDA ops (e.g. mmcv 2.0.1 compiled for its CPU ops against a newer torch).

``use_pytorch_focal_loss()`` swaps mmcv's ``sigmoid_focal_loss`` CUDA kernel (used by mmdet's
``FocalLoss`` on CUDA tensors) for the same element-wise formula in PyTorch. Benchmarks that
use it say so in their output; it changes the speed of both arms alike, not what is computed.
"""
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


def use_pytorch_focal_loss():
    import mmdet.models.losses.focal_loss as fl

    fl._sigmoid_focal_loss = sigmoid_focal_loss
