"""Eq. 9: the interval non-uniform grid. Expected values worked out by hand (calculator)."""
import math

import pytest
import torch

from ugs import IntervalGrid, interval_grid_values


def test_eq9_alpha2_beta1_n4_by_hand():
    # y = [-2, -1, 0, 1, 2]; p(1) = 2 (e - 1) / (e^2 - 1) = 2 / (e + 1) = 0.53788284274
    v = interval_grid_values(2.0, 1.0, 4)
    expected = torch.tensor([-2.0, -0.5378828427399902, 0.0, 0.5378828427399902, 2.0],
                            dtype=torch.float64)
    torch.testing.assert_close(v, expected, rtol=0, atol=1e-12)


def test_eq9_table7_rcnn_grid_alpha5_beta1_n5_by_hand():
    # y = [-5, -3, -1, 1, 3, 5]; p(1) = 5 (e - 1)/(e^5 - 1) = 0.0582811548,
    # p(3) = 5 (e^3 - 1)/(e^5 - 1) = 0.6473484809
    v = interval_grid_values(5.0, 1.0, 5)
    expected = torch.tensor([-5.0, -0.647348480942163, -0.05828115478019803,
                             0.05828115478019803, 0.647348480942163, 5.0], dtype=torch.float64)
    torch.testing.assert_close(v, expected, rtol=0, atol=1e-12)


def test_eq9_table7_rpn_grid_alpha2_beta1_n10_by_hand():
    # y_i = -2 + 0.4 i; p(0.4) = 2 (e^0.4 - 1)/(e^2 - 1) = 0.15395848464
    v = interval_grid_values(2.0, 1.0, 10)
    assert v[5].item() == 0.0                                  # the centre point is exactly 0
    assert v[6].item() == pytest.approx(0.15395848464175751, abs=1e-12)
    assert v[9].item() == pytest.approx(1.2374386335586387, abs=1e-12)


def test_eq9_beta0_is_the_uniform_grid():
    # beta = 0: y_i = -alpha + 2 alpha i / n, here -3, -1.5, 0, 1.5, 3
    v = interval_grid_values(3.0, 0.0, 4)
    torch.testing.assert_close(v, torch.tensor([-3.0, -1.5, 0.0, 1.5, 3.0], dtype=torch.float64))


def test_eq9_small_beta_tends_to_uniform():
    # (e^{beta|y|} - 1)/(e^{alpha beta} - 1) -> |y| / alpha as beta -> 0
    v = interval_grid_values(3.0, 1e-7, 4)
    torch.testing.assert_close(v, interval_grid_values(3.0, 0.0, 4), rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha,beta,n", [(2, 1.0, 10), (5, 1.5, 5), (1, 3.0, 7), (4, 0.0, 1)])
def test_eq9_grid_is_increasing_symmetric_and_ends_at_alpha(alpha, beta, n):
    v = IntervalGrid(alpha, beta, n).values
    assert v.shape == (n + 1,)
    assert bool((v[1:] > v[:-1]).all())
    assert v[0].item() == -alpha and v[-1].item() == alpha
    torch.testing.assert_close(v, -v.flip(0), rtol=0, atol=0)


def test_eq9_larger_beta_is_denser_near_zero():
    # Sec. 3.2.1: a larger beta gives denser grids near zero (Sec. 4.8 says the opposite).
    # Innermost gap for alpha=2, n=10: beta=0 -> 0.4; beta=1 -> 0.1540; beta=1.5 -> smaller.
    gaps = [interval_grid_values(2.0, b, 10)[6].item() for b in (0.0, 1.0, 1.5, 3.0)]
    assert gaps[0] == pytest.approx(0.4)
    assert gaps == sorted(gaps, reverse=True) and len(set(gaps)) == 4


@pytest.mark.parametrize("kwargs,name", [
    (dict(alpha=0.0, beta=1.0, n=4), "alpha"), (dict(alpha=-1.0, beta=1.0, n=4), "alpha"),
    (dict(alpha=float("inf"), beta=1.0, n=4), "alpha"),
    (dict(alpha=2.0, beta=-0.5, n=4), "beta"), (dict(alpha=2.0, beta=1.0, n=0), "n"),
    (dict(alpha=2.0, beta=1.0, n=2.5), "n"), (dict(alpha=1000.0, beta=1.0, n=4), "beta"),
])
def test_eq9_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        IntervalGrid(**kwargs)


def test_eq9_grid_moves_with_the_module():
    grid = IntervalGrid(2.0, 1.0, 4).to(torch.float64)
    assert grid.values.dtype == torch.float64
    assert grid.num_bins == 5
    assert "alpha=2.0" in repr(grid)
