"""Eq. 16: the whole UGS localization objective."""
import pytest
import torch
from torch import nn

from ugs import UGSLoss


class ToyRegBranch(nn.Module):
    """A 1x1-conv regression branch on 2 FPN levels, 4 sides x (n + 1) logits per location,
    gathered at a fixed set of 'positive' locations (what a detector head does)."""

    def __init__(self, channels=6, bins=11):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4 * bins, 1)
        self.bins = bins

    def forward(self, levels):
        out = [self.conv(f).permute(0, 2, 3, 1).reshape(-1, 4, self.bins) for f in levels]
        return torch.cat(out)[::3]          # the positives: every third location


def _setup(seed=0):
    torch.manual_seed(seed)
    feats = [torch.randn(2, 6, 4, 4, requires_grad=True), torch.randn(2, 6, 2, 2, requires_grad=True)]
    branch = ToyRegBranch()
    logits = branch(feats)
    targets = torch.rand(logits.shape[:-1]) * 5 - 2.5      # some outside [-2, 2]
    return feats, branch, logits, targets


def test_eq16_defaults_are_table6_best_row():
    loss = UGSLoss(2.0, 1.0, 10)
    assert (loss.lam, loss.gamma, loss.rho) == (0.5, 0.5, 0.5)


# ---- an independent reference: tests/reference_ugs.py (Eq. 8-13 from the paper's formulas);
# torch.autograd only for Eq. 15's gradient.
from reference_ugs import ref_grid as _ref_grid, ref_terms as _ref_terms, ref_two_hot as _ref_two_hot  # noqa: E402


def _ref_perturb(um, feats, rho):
    """Eq. 15 with the kit's documented norm: per image and per FPN level."""
    grads = torch.autograd.grad(um, feats, retain_graph=True)
    return [rho * g / (g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12) for g in grads]


def _setup64(seed):
    feats, branch, _, targets = _setup(seed)
    branch = branch.double()
    feats = [f.detach().double().requires_grad_(True) for f in feats]
    return feats, branch, branch(feats), targets.double()


@pytest.mark.parametrize("seed", [0, 5])
def test_eq16_terms_match_an_independent_reference(seed):
    feats, branch, logits, targets = _setup64(seed)
    out = UGSLoss(2.0, 1.0, 10, lam=0.3, gamma=0.7, rho=0.4)(logits, targets, features=feats, predict=branch)
    grid = _ref_grid(2.0, 1.0, 10)
    ce, um = _ref_terms(logits, targets, grid)
    deltas = _ref_perturb(um, feats, 0.4)
    ce_p, um_p = _ref_terms(branch([f + d for f, d in zip(feats, deltas)]), targets, grid)
    torch.testing.assert_close(out["loss_ce"], ce, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["loss_um"], 0.3 * um, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["loss_ur"], 0.7 * (ce_p + 0.3 * um_p), rtol=1e-9, atol=1e-12)
    # the clamped count, by hand: targets drawn in [-2.5, 2.5], the range is [-2, 2]
    assert out["num_clamped"].item() == sum(abs(t) > 2.0 for t in targets.reshape(-1).tolist()) > 0
    # each level's perturbation has norm rho per image (Eq. 15), checked on the reference
    assert all(torch.allclose(d.flatten(1).norm(dim=1), torch.full((2,), 0.4, dtype=torch.float64)) for d in deltas)


def test_eq16_entropy_objective_and_switching_refinement_off():
    feats, branch, logits, targets = _setup64(1)
    out = UGSLoss(2.0, 1.0, 10, ur_objective="entropy")(logits, targets, features=feats, predict=branch)
    grid = _ref_grid(2.0, 1.0, 10)
    _, um = _ref_terms(logits, targets, grid)
    _, um_p = _ref_terms(branch([f + d for f, d in zip(feats, _ref_perturb(um, feats, 0.5))]), targets, grid)
    torch.testing.assert_close(out["loss_ur"], 0.5 * um_p, rtol=1e-9, atol=1e-12)     # gamma * H(perturbed)
    off = UGSLoss(2.0, 1.0, 10, gamma=0.0)(logits, targets, features=feats, predict=branch)
    assert "loss_ur" not in off
    no_feats = UGSLoss(2.0, 1.0, 10)(logits, targets)
    assert "loss_ur" not in no_feats


def test_eq16_reference_grid_and_two_hot_by_hand():
    # the reference itself, against numbers worked out by hand: alpha 2, beta 1, n 4 ->
    # y = -2, -1, 0, 1, 2 -> IN points +-2 (e^1 - 1)/(e^2 - 1) = +-0.5379, +-2, 0
    import math
    g = _ref_grid(2.0, 1.0, 4)
    assert g[2] == 0.0 and g[0] == -2.0 and g[4] == 2.0
    assert abs(g[3] - 2 * (math.e - 1) / (math.e ** 2 - 1)) < 1e-15 and abs(g[3] - 0.537882842739990) < 1e-12
    # T = 1.0 lies between 0.5379 and 2: weight on 2 is (1 - 0.53788) / (2 - 0.53788) = 0.46212 / 1.46212 = 0.31606
    w = _ref_two_hot(1.0, g)
    assert w[:3] == [0.0, 0.0, 0.0] and abs(w[4] - 0.316060279) < 1e-8 and abs(w[3] + w[4] - 1) < 1e-15


def test_eq16_refinement_term_trains_features_and_weights():
    feats, branch, logits, targets = _setup(2)
    out = UGSLoss(2.0, 1.0, 10)(logits, targets, features=feats, predict=branch)
    out["loss_ur"].backward()
    assert branch.conv.weight.grad.abs().sum() > 0
    assert all(f.grad.abs().sum() > 0 for f in feats)


def test_eq16_weight_is_applied_to_every_term():
    feats, branch, logits, targets = _setup(3)
    crit = UGSLoss(2.0, 1.0, 10)
    zero = crit(logits, targets, weight=torch.zeros(targets.shape), features=feats, predict=branch)
    assert zero["loss_ce"].item() == 0 and zero["loss_um"].item() == 0
    assert zero["loss_ur"].item() == 0


def test_eq16_empty_positives_give_zero_losses_with_gradients():
    feats, branch, _, _ = _setup(4)
    empty = lambda levels: branch(levels)[:0]          # noqa: E731
    logits = empty(feats)
    out = UGSLoss(2.0, 1.0, 10)(logits, torch.zeros(0, 4), features=feats, predict=empty)
    total = sum(v for k, v in out.items() if k.startswith("loss"))
    assert total.item() == 0.0
    total.backward()


@pytest.mark.parametrize("kwargs,match", [
    (dict(lam=-0.1), "lam"), (dict(gamma=-1.0), "gamma"), (dict(rho=-0.5), "rho"),
    (dict(refine_norm="x"), "refine_norm"), (dict(ur_objective="x"), "ur_objective"),
    (dict(alpha=0.0), "alpha"), (dict(n=0), "n must"),
])
def test_eq16_bad_arguments(kwargs, match):
    args = dict(alpha=2.0, beta=1.0, n=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        UGSLoss(**args)


def test_eq16_features_without_predict_raise():
    feats, branch, logits, targets = _setup()
    with pytest.raises(ValueError, match="predict"):
        UGSLoss(2.0, 1.0, 10)(logits, targets, features=feats)
