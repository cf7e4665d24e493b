"""Eq. 12 (entropy as the uncertainty loss) and Eq. 13 (its gradient)."""
import math

import pytest
import torch

from ugs import entropy_logit_gradient, uncertainty_loss


def test_eq12_by_hand():
    # logits [0, log 3] -> p = [1/4, 3/4]; H = -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.5623351446
    loss = uncertainty_loss(torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64))
    assert loss.item() == pytest.approx(0.5623351446188083, abs=1e-12)


def test_eq12_extremes():
    # uniform over 11 bins: log 11; a near one-hot: ~0
    assert uncertainty_loss(torch.zeros(4, 11)).item() == pytest.approx(math.log(11), rel=1e-6)
    assert uncertainty_loss(torch.tensor([[100.0, 0.0, 0.0]])).item() < 1e-6  # H ~ 200 e^-100


def test_eq13_logit_gradient_matches_closed_form_and_finite_differences():
    torch.manual_seed(0)
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    uncertainty_loss(logits, reduction="sum").backward()
    closed = entropy_logit_gradient(logits.detach())            # -p (log p + H)
    torch.testing.assert_close(logits.grad, closed, rtol=0, atol=1e-12)
    # second method: central differences on one row
    h, row = 1e-6, logits.detach()[0]
    fd = torch.stack([
        (uncertainty_loss((row + h * e)[None], reduction="sum")
         - uncertainty_loss((row - h * e)[None], reduction="sum")) / (2 * h)
        for e in torch.eye(7, dtype=torch.float64)])
    torch.testing.assert_close(fd, closed[0], rtol=0, atol=1e-8)


def test_eq13_as_printed_is_the_derivative_with_respect_to_p_not_l():
    # Errata: -(log p_i + 1) is dH/dp_i (p a free vector); with respect to the logits the
    # gradient is -p_i (log p_i + H). p = [1/4, 3/4]: dH/dp = [0.386294, -0.712318],
    # dH/dl = -p (log p + H) = [0.25 * 0.8239592, -0.75 * 0.2746531] = [0.2059898, -0.2059898].
    p = torch.tensor([0.25, 0.75], dtype=torch.float64, requires_grad=True)
    (-(p * p.log()).sum()).backward()
    printed = -(p.detach().log() + 1)
    torch.testing.assert_close(p.grad, printed)
    torch.testing.assert_close(printed, torch.tensor([0.3862943611198906, -0.7123179275482191],
                                                     dtype=torch.float64))
    dl = entropy_logit_gradient(torch.log(p.detach()))
    torch.testing.assert_close(dl, torch.tensor([0.20598980, -0.20598980], dtype=torch.float64),
                               rtol=0, atol=1e-8)


def test_eq13_logit_gradient_is_bounded():
    # |p_i (log p_i + H)| <= max(1/e, log(n+1)) -> bounded at any logit scale
    torch.manual_seed(1)
    for scale in (1e-3, 1.0, 1e3):
        logits = (torch.randn(64, 11, dtype=torch.float64) * scale).requires_grad_()
        uncertainty_loss(logits, reduction="sum").backward()
        assert logits.grad.abs().max().item() <= math.log(11)


def test_eq12_empty_and_errors():
    logits = torch.zeros(0, 5, requires_grad=True)
    loss = uncertainty_loss(logits)
    assert loss.item() == 0.0
    loss.backward()
    with pytest.raises(ValueError, match="logits"):
        uncertainty_loss(torch.tensor(1.0))
    with pytest.raises(ValueError, match="reduction"):
        uncertainty_loss(torch.zeros(2, 5), reduction="max")


def test_eq12_bfloat16_matches_float32():
    torch.manual_seed(2)
    logits = torch.randn(16, 11)
    low = uncertainty_loss(logits.bfloat16())
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(uncertainty_loss(logits.bfloat16().float()).item(), rel=1e-6)


def test_eq12_masked_minus_inf_logits_contribute_zero():
    # a bin with logit -inf has p = 0 and adds 0 log 0 = 0: H([0, -inf, 0]) = log 2
    logits = torch.tensor([[0.0, -float("inf"), 0.0]], requires_grad=True)
    h = uncertainty_loss(logits)
    assert h.item() == pytest.approx(math.log(2), rel=1e-6)
    h.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.isfinite(entropy_logit_gradient(logits.detach())).all()
