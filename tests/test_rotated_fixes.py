"""The fix of mmrotate 1.0.0rc1's ConvexAssigner (its index range made on the CPU whatever the
points' device; ugs.rotated.fixes): the assignment is unchanged, the range follows the points."""
import importlib

import pytest
import torch


@pytest.fixture(scope="module")
def convex():
    import ugs.rotated.runtime  # noqa: F401  (installs the fix)
    return importlib.import_module("mmrotate.models.task_modules.assigners.convex_assigner")


def _square(cx, cy, side):
    h = side / 2
    return [cx - h, cy - h, cx + h, cy - h, cx + h, cy + h, cx - h, cy + h]


def test_the_assignment_is_the_stock_one_on_the_cpu(convex):
    from mmengine.structures import InstanceData
    from ugs.rotated import fixes

    assert fixes.installed()
    # three stride-8 points; a 32-px square centred on the middle one: its level is
    # (log2(32 / 4) + log2(32 / 4)) / 2 = 3 = log2(8), and the nearest point (pos_num 1) is the
    # middle one -> gt 1 (1-based); the others stay background (0)
    points = torch.tensor([[10.0, 10, 8], [50, 50, 8], [90, 90, 8]])
    gts = InstanceData(bboxes=torch.tensor([_square(50, 50, 32)]), labels=torch.tensor([3]))
    assigner = convex.ConvexAssigner(scale=4, pos_num=1)
    fixed = assigner.assign(InstanceData(priors=points), gts)
    assert fixed.gt_inds.tolist() == [0, 1, 0] and fixed.labels.tolist() == [-1, 3, -1]
    stock = convex.ConvexAssigner.assign.__wrapped__(assigner, InstanceData(priors=points), gts)
    assert torch.equal(stock.gt_inds, fixed.gt_inds) and torch.equal(stock.labels, fixed.labels)
    assert convex.torch is torch                 # the module's name is given back


def test_the_range_is_made_on_the_points_device_and_the_name_restored_after_an_error(convex):
    from mmengine.structures import InstanceData
    from ugs.rotated import fixes

    stand_in = fixes._TorchOnDevice(torch.device("meta"))
    assert stand_in.arange(5).device.type == "meta"                   # the points' device
    assert stand_in.arange(5, device="cpu").device.type == "cpu"      # an explicit device wins
    assert stand_in.zeros is torch.zeros                              # everything else is torch's
    gts = InstanceData(bboxes=torch.zeros(1, 5), labels=torch.tensor([0]))   # not qboxes: the stock assert
    with pytest.raises(AssertionError, match="N \\* 8"):
        convex.ConvexAssigner().assign(InstanceData(priors=torch.tensor([[10.0, 10, 8]])), gts)
    assert convex.torch is torch
