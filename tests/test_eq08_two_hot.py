"""Eq. 8 (two-hot soft targets) and the expectation decoding after Eq. 10."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ugs import IntervalGrid

grids = st.tuples(st.floats(0.1, 20.0), st.floats(0.0, 3.0), st.integers(1, 32))


def test_eq8_uniform_grid_by_hand():
    # grid [-2, -1, 0, 1, 2]; T = 0.25 lies between 0 and 1: 0.75 on 0, 0.25 on 1
    grid = IntervalGrid(2.0, 0.0, 4)
    p = grid.encode(torch.tensor([0.25]))
    torch.testing.assert_close(p, torch.tensor([[0.0, 0.0, 0.75, 0.25, 0.0]]))


def test_eq8_in_grid_by_hand():
    # IN grid alpha=2, beta=1, n=4: [-2, -0.53788, 0, 0.53788, 2]. T = 0.26894 is the
    # midpoint of [0, 0.53788]: 0.5 / 0.5. T = -1.26894 is the midpoint of [-2, -0.53788].
    grid = IntervalGrid(2.0, 1.0, 4)
    p = grid.encode(torch.tensor([0.2689414213699951, -1.2689414213699951], dtype=torch.float64))
    torch.testing.assert_close(p, torch.tensor([[0, 0, 0.5, 0.5, 0], [0.5, 0.5, 0, 0, 0]],
                                               dtype=torch.float64))


def test_eq8_target_on_a_grid_point_is_one_hot():
    grid = IntervalGrid(2.0, 0.0, 4)
    p = grid.encode(torch.tensor([-2.0, -1.0, 0.0, 2.0]))
    torch.testing.assert_close(p, torch.eye(5)[[0, 1, 2, 4]])


@settings(max_examples=200, deadline=None)
@given(grids, st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=20))
def test_eq8_expectation_recovers_target_and_weights_are_a_two_hot(g, fracs):
    alpha, beta, n = g
    grid = IntervalGrid(alpha, beta, n)
    t = torch.tensor(fracs, dtype=torch.float64) * alpha
    p = grid.encode(t)
    values = grid._values_like(t)
    assert bool((p >= 0).all())
    torch.testing.assert_close(p.sum(-1), torch.ones_like(t), rtol=0, atol=1e-12)
    torch.testing.assert_close((p * values).sum(-1), t, rtol=0, atol=1e-9 * alpha)
    nonzero = p > 0
    assert bool((nonzero.sum(-1) <= 2).all())
    # the (at most) two non-zero weights sit on neighbouring grid points
    idx = torch.where(nonzero.sum(-1) == 2)[0]
    for i in idx.tolist():
        j = torch.nonzero(p[i]).flatten()
        assert j[1] - j[0] == 1


def test_eq8_out_of_range_targets_are_clamped_and_counted():
    grid = IntervalGrid(2.0, 1.0, 4)
    p, num = grid.encode(torch.tensor([3.0, -2.5, 1.0, 2.0]), return_num_clamped=True)
    assert num.item() == 2                       # 3.0 and -2.5 lie outside [-2, 2]; 2.0 does not
    torch.testing.assert_close(p[0], torch.tensor([0.0, 0, 0, 0, 1]))
    torch.testing.assert_close(p[1], torch.tensor([1.0, 0, 0, 0, 0]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_eq8_non_finite_targets_raise(bad):
    with pytest.raises(ValueError, match="NaN/inf"):
        IntervalGrid(2.0, 1.0, 4).encode(torch.tensor([0.0, bad]))


def test_eq8_integer_targets_raise():
    with pytest.raises(ValueError, match="floating"):
        IntervalGrid(2.0, 1.0, 4).encode(torch.tensor([1, 2]))


def test_eq8_shapes_and_empty():
    grid = IntervalGrid(2.0, 1.0, 10)
    assert grid.encode(torch.zeros(2, 3, 4)).shape == (2, 3, 4, 11)
    assert grid.encode(torch.zeros(0, 4)).shape == (0, 4, 11)
    assert grid.encode(torch.tensor(0.5)).shape == (11,)


def test_eq8_bfloat16_is_close_to_float32():
    grid = IntervalGrid(2.0, 1.0, 10)
    t = torch.linspace(-1.9, 1.9, 50)
    p16 = grid.encode(t.bfloat16())
    assert p16.dtype == torch.bfloat16
    # the bfloat16 input itself is rounded (8 bits of mantissa): compare with its exact encoding
    torch.testing.assert_close(p16.float(), grid.encode(t.bfloat16().float()), atol=4e-3, rtol=0)


def test_eq8_printed_form_does_not_recover_the_target():
    # Errata: Eq. 8 as printed puts |y_i - T| (n+1)/(2 alpha) on each neighbour.
    # Uniform grid [-2, -1, 0, 1, 2], T = 0.25: printed weights 0.25*5/4 = 0.3125 on 0 and
    # 0.75*5/4 = 0.9375 on 1 -> sum 1.25 and expectation 0.9375, not 0.25.
    y_l, y_r, t, n, alpha = 0.0, 1.0, 0.25, 4, 2.0
    w_l, w_r = abs(y_l - t) * (n + 1) / (2 * alpha), abs(y_r - t) * (n + 1) / (2 * alpha)
    assert (w_l, w_r) == (0.3125, 0.9375)
    assert w_l * y_l + w_r * y_r == 0.9375
    p = IntervalGrid(alpha, 0.0, n).encode(torch.tensor([t]))
    assert (p[0] * torch.tensor([-2.0, -1, 0, 1, 2])).sum().item() == t


def test_decode_is_the_expectation():
    grid = IntervalGrid(2.0, 0.0, 4)
    # equal logits -> uniform p -> mean of a symmetric grid = 0
    assert grid.decode(torch.zeros(3, 5)).abs().max().item() < 1e-7
    # logits log([1, 0+, 0+, 3, 0+]) -> p = [0.25, 0, 0, 0.75, 0] -> -0.5 + 0.75 = 0.25
    logits = torch.log(torch.tensor([[1.0, 1e-30, 1e-30, 3.0, 1e-30]]))
    assert grid.decode(logits).item() == pytest.approx(0.25, abs=1e-6)


def test_decode_inverts_encode_through_log_of_two_hot():
    grid = IntervalGrid(5.0, 1.0, 5)
    t = torch.linspace(-4.9, 4.9, 23, dtype=torch.float64)
    logits = torch.log(grid.encode(t).clamp_min(1e-300))
    torch.testing.assert_close(grid.decode(logits), t, rtol=0, atol=1e-9)


def test_decode_rejects_wrong_width():
    with pytest.raises(ValueError, match="n \\+ 1 = 5"):
        IntervalGrid(2.0, 1.0, 4).decode(torch.zeros(3, 4))
