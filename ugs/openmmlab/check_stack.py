"""Import every framework the kit's tables need and run one compiled op; print versions.

    python -m ugs.openmmlab.check_stack

Exits non-zero with the failing import's message when the environment is broken.
"""
import sys


def main() -> int:
    from ugs.openmmlab import compat  # noqa: F401  (before mmrotate)

    import mmcv
    import mmdet
    import mmdet.models  # noqa: F401
    import mmengine
    import mmrotate
    import mmrotate.models  # noqa: F401
    import mmyolo
    import mmyolo.models  # noqa: F401
    import numpy
    import torch
    import torchvision
    from mmcv.ops import nms

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)[1].tolist()
    if keep != [0, 2]:
        print(f"mmcv.ops.nms gave {keep}, expected [0, 2]", file=sys.stderr)
        return 1
    versions = dict(python=sys.version.split()[0], torch=torch.__version__,
                    torchvision=torchvision.__version__, numpy=numpy.__version__,
                    mmengine=mmengine.__version__, mmcv=mmcv.__version__,
                    mmdet=mmdet.__version__, mmyolo=mmyolo.__version__,
                    mmrotate=mmrotate.__version__, cuda=torch.cuda.is_available())
    print("stack ok: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
