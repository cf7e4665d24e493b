"""Eq. 10 (classification-based localization) and Eq. 11 (its bounded logit gradient)."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_ugs import ref_grid, ref_two_hot
from ugs import IntervalGrid, localization_ce


def gfl_distribution_focal_loss(pred, label):
    """GFL V1's DFL written out from Li et al. (NeurIPS 2020), Eq. 6, independently of ugs:
    label y in [0, reg_max); y_l = floor(y), y_r = y_l + 1;
    DFL = -((y_r - y) log S_l + (y - y_l) log S_r), S = softmax(pred)."""
    dis_left = label.floor().long()
    dis_right = dis_left + 1
    w_left = dis_right.float() - label
    w_right = label - dis_left.float()
    return (F.cross_entropy(pred, dis_left, reduction="none") * w_left
            + F.cross_entropy(pred, dis_right, reduction="none") * w_right)


def test_eq10_by_hand():
    # grid [-2, -1, 0, 1, 2], T = 0.25 -> p* = 0.75 on 0, 0.25 on 1; zero logits -> p = 1/5:
    # CE = -(0.75 + 0.25) log(1/5) = log 5 = 1.6094379
    grid = IntervalGrid(2.0, 0.0, 4)
    loss = localization_ce(torch.zeros(1, 5), torch.tensor([0.25]), grid)
    assert loss.item() == pytest.approx(math.log(5), abs=1e-6)


def test_eq10_equals_gfl_distribution_focal_loss_on_the_integer_grid():
    # mmdet's GFL reg_max = 16: 17 bins at 0..16. The UGS grid alpha=8, beta=0, n=16 is
    # -8..8, so a GFL label y is the UGS target y - 8.
    torch.manual_seed(0)
    pred = torch.randn(64, 17, dtype=torch.float64)
    label = torch.rand(64, dtype=torch.float64) * 15.9
    dfl = gfl_distribution_focal_loss(pred, label)
    ugs = localization_ce(pred, label - 8, IntervalGrid(8.0, 0.0, 16), reduction="none")
    torch.testing.assert_close(ugs, dfl, rtol=0, atol=1e-10)


def test_eq11_gradient_is_softmax_minus_two_hot():
    torch.manual_seed(1)
    grid = IntervalGrid(2.0, 1.0, 10)
    logits = torch.randn(8, 11, dtype=torch.float64, requires_grad=True)
    t = torch.rand(8, dtype=torch.float64) * 4 - 2
    localization_ce(logits, t, grid, reduction="sum").backward()
    # p* from the independent reference (tests/reference_ugs.py), not from grid.encode
    p_star = torch.tensor([ref_two_hot(v, ref_grid(2.0, 1.0, 10)) for v in t.tolist()], dtype=torch.float64)
    expected = torch.softmax(logits.detach(), -1) - p_star
    torch.testing.assert_close(logits.grad, expected, rtol=0, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(-1.0, 1.0), st.integers(0, 2**31 - 1))
def test_eq11_gradient_is_bounded_by_one_at_every_scale(log10_scale, frac, seed):
    # |dL/dl_i| <= 1 whatever the logit scale (confident or flat predictions) and target.
    g = torch.Generator().manual_seed(seed)
    grid = IntervalGrid(5.0, 1.0, 5)
    logits = (torch.randn(4, 6, generator=g, dtype=torch.float64)
              * 10 ** log10_scale).requires_grad_()
    t = torch.full((4,), frac * 5.0, dtype=torch.float64)
    localization_ce(logits, t, grid, reduction="sum").backward()
    assert logits.grad.abs().max().item() <= 1.0 + 1e-12
    torch.testing.assert_close(logits.grad.sum(-1), torch.zeros(4, dtype=torch.float64),
                               rtol=0, atol=1e-9)   # p and p* both sum to one


def test_eq10_reductions_and_weight():
    grid = IntervalGrid(2.0, 0.0, 4)
    logits, t = torch.zeros(2, 3, 5), torch.zeros(2, 3)
    assert localization_ce(logits, t, grid, reduction="none").shape == (2, 3)
    # every element is log 5; weights 1 and 3 on the two rows: sum = 3*log5 + 9*log5
    w = torch.tensor([[1.0], [3.0]])
    total = localization_ce(logits, t, grid, reduction="sum", weight=w)
    assert total.item() == pytest.approx(12 * math.log(5), rel=1e-6)
    assert localization_ce(logits, t, grid, weight=w).item() == pytest.approx(2 * math.log(5), rel=1e-6)


def test_eq10_empty_input_is_zero_with_a_gradient():
    grid = IntervalGrid(2.0, 1.0, 4)
    logits = torch.zeros(0, 5, requires_grad=True)
    loss = localization_ce(logits, torch.zeros(0), grid)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad.shape == (0, 5)


@pytest.mark.parametrize("logits,targets,match", [
    (torch.zeros(3, 4), torch.zeros(3), "n \\+ 1 = 5"),
    (torch.zeros(3, 5), torch.zeros(4), "targets must have shape"),
])
def test_eq10_shape_mismatch_raises(logits, targets, match):
    with pytest.raises(ValueError, match=match):
        localization_ce(logits, targets, IntervalGrid(2.0, 1.0, 4))


def test_eq10_bad_reduction_and_bad_weight_raise():
    grid = IntervalGrid(2.0, 1.0, 4)
    with pytest.raises(ValueError, match="reduction"):
        localization_ce(torch.zeros(3, 5), torch.zeros(3), grid, reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        localization_ce(torch.zeros(3, 5), torch.zeros(3), grid, weight=torch.ones(4))


def test_eq10_bfloat16_matches_float32():
    torch.manual_seed(2)
    grid = IntervalGrid(2.0, 1.0, 10)
    logits, t = torch.randn(32, 11), torch.rand(32) * 3.8 - 1.9
    ref = localization_ce(logits.bfloat16().float(), t.bfloat16().float(), grid)
    low = localization_ce(logits.bfloat16().requires_grad_(), t.bfloat16(), grid)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(ref.item(), rel=1e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_eq10_cuda_matches_cpu():
    torch.manual_seed(3)
    grid = IntervalGrid(2.0, 1.0, 10)
    logits, t = torch.randn(32, 11), torch.rand(32) * 3.8 - 1.9
    cpu = localization_ce(logits, t, grid)
    gpu = localization_ce(logits.cuda(), t.cuda(), grid.cuda())
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-5)


def test_eq10_masked_minus_inf_logit_off_target_is_finite():
    # target on grid point 0 of [-2..2]; logit -inf on the far end: CE = log 4 (uniform on 4)
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, -float("inf")]], requires_grad=True)
    loss = localization_ce(logits, torch.tensor([0.0]), IntervalGrid(2.0, 0.0, 4))
    assert loss.item() == pytest.approx(math.log(4), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
