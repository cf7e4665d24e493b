"""Eq. 14-15: the uncertainty-guided refinement perturbation."""
import math

import pytest
import torch
from torch import nn

from ugs import IntervalGrid, refine_perturbation, uncertainty_loss


def test_eq15_linear_loss_by_hand():
    # loss = sum(c * f) has gradient c; per sample: epsilon = rho * c_b / ||c_b||.
    # Sample 0: c = (3, 4) -> (0.6, 0.8) * rho; sample 1: c = (0, 2) -> (0, 1) * rho.
    f = torch.zeros(2, 2, requires_grad=True)
    c = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    (eps,) = refine_perturbation((c * f).sum(), [f], rho=0.5)
    torch.testing.assert_close(eps, torch.tensor([[0.3, 0.4], [0.0, 0.5]]))


def test_eq15_level_norm_by_hand():
    # norm="level": one norm over the whole level, ||(3, 4, 0, 2)|| = sqrt(29)
    f = torch.zeros(2, 2, requires_grad=True)
    c = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    (eps,) = refine_perturbation((c * f).sum(), [f], rho=1.0, norm="level")
    torch.testing.assert_close(eps, c / math.sqrt(29.0))


def _toy_head_features(seed=0):
    torch.manual_seed(seed)
    feats = [torch.randn(3, 8, s, s, requires_grad=True) for s in (8, 4, 2)]
    head = nn.Conv2d(8, 11, 1)
    logits = [head(f).permute(0, 2, 3, 1) for f in feats]
    loss = sum(uncertainty_loss(l, reduction="sum") for l in logits)
    return feats, head, loss


def test_eq15_norm_is_rho_per_sample_and_level_and_points_along_the_gradient():
    feats, head, loss = _toy_head_features()
    grads = torch.autograd.grad(loss, feats, retain_graph=True)    # independent gradient
    deltas = refine_perturbation(loss, feats, rho=0.5)
    for d, g in zip(deltas, grads):
        norms = d.flatten(1).norm(dim=1)
        torch.testing.assert_close(norms, torch.full((3,), 0.5), rtol=1e-5, atol=0)
        cos = torch.nn.functional.cosine_similarity(d.flatten(1), g.flatten(1), dim=1)
        torch.testing.assert_close(cos, torch.ones(3), rtol=0, atol=1e-5)


def test_eq14_first_order_step_beats_random_directions_of_the_same_norm():
    # Eq. 15 maximises the linearised inner problem of Eq. 14: to first order no other
    # direction of norm rho raises L_UM more. Check with a tiny rho against 200 random ones.
    feats, head, loss = _toy_head_features(seed=1)
    rho = 1e-3
    deltas = refine_perturbation(loss, feats, rho=rho)

    def um(levels):
        return sum(uncertainty_loss(head(f).permute(0, 2, 3, 1), reduction="sum") for f in levels)

    with torch.no_grad():
        base = um(feats)
        best = um([f + d for f, d in zip(feats, deltas)]) - base
        torch.manual_seed(2)
        for _ in range(200):
            rand = [torch.randn_like(f) for f in feats]
            rand = [r / r.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * rho for r in rand]
            assert um([f + r for f, r in zip(feats, rand)]) - base <= best
        assert best > 0


def test_eq15_keeps_the_graph_and_computes_no_weight_gradients():
    feats, head, loss = _toy_head_features()
    refine_perturbation(loss, feats, rho=0.5)
    assert head.weight.grad is None and all(f.grad is None for f in feats)
    loss.backward()                     # retain_graph=True left the graph usable
    assert head.weight.grad is not None


def test_eq15_perturbation_is_detached():
    feats, head, loss = _toy_head_features()
    assert not any(d.requires_grad for d in refine_perturbation(loss, feats, rho=0.5))


def test_eq15_zero_and_missing_gradients_give_zero_perturbations():
    f_used = torch.zeros(2, 3, requires_grad=True)
    f_unused = torch.ones(2, 3, requires_grad=True)
    deltas = refine_perturbation((f_used * 0).sum(), [f_used, f_unused], rho=0.5)
    assert all(bool((d == 0).all()) for d in deltas)
    deltas = refine_perturbation((f_used * 2).sum(), [f_used], rho=0.0)
    assert bool((deltas[0] == 0).all())


def test_eq15_bfloat16_levels():
    f = torch.randn(2, 4, 3, 3).bfloat16().requires_grad_()
    (d,) = refine_perturbation((f.float() ** 2).sum(), [f], rho=0.5)
    assert d.dtype == torch.bfloat16
    torch.testing.assert_close(d.float().flatten(1).norm(dim=1), torch.full((2,), 0.5), rtol=1e-2, atol=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(rho=-1.0), "rho"), (dict(rho=0.5, norm="batch"), "norm"),
])
def test_eq15_bad_arguments(kwargs, match):
    f = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=match):
        refine_perturbation((f * 2).sum(), [f], **kwargs)


def test_eq15_bad_inputs():
    f = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="empty"):
        refine_perturbation((f * 2).sum(), [], rho=0.5)
    with pytest.raises(ValueError, match="0-d"):
        refine_perturbation(f * 2, [f], rho=0.5)
    with pytest.raises(ValueError, match="does not require grad"):
        refine_perturbation(torch.tensor(1.0), [f], rho=0.5)
    with pytest.raises(ValueError, match=r"features\[0\]"):
        refine_perturbation((f * 2).sum(), [torch.zeros(2, 3)], rho=0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_eq15_cuda():
    f = torch.randn(2, 4, 3, 3, device="cuda", requires_grad=True)
    (d,) = refine_perturbation((f ** 2).sum(), [f], rho=0.5)
    torch.testing.assert_close(d.flatten(1).norm(dim=1), torch.full((2,), 0.5, device="cuda"))
