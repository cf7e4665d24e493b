"""Eq. 16: the whole UGS localization objective."""
import pytest
import torch
from torch import nn

from ugs import IntervalGrid, UGSLoss, localization_ce, refine_perturbation, uncertainty_loss


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


def test_eq16_terms_equal_the_components_computed_separately():
    feats, branch, logits, targets = _setup()
    crit = UGSLoss(2.0, 1.0, 10, lam=0.3, gamma=0.7, rho=0.4)
    out = crit(logits, targets, features=feats, predict=branch)
    grid = IntervalGrid(2.0, 1.0, 10)
    ce = localization_ce(logits, targets, grid)
    um = uncertainty_loss(logits)
    deltas = refine_perturbation(um, feats, 0.4)
    logits_p = branch([f + d for f, d in zip(feats, deltas)])
    ur = localization_ce(logits_p, targets, grid) + 0.3 * uncertainty_loss(logits_p)
    torch.testing.assert_close(out["loss_ce"], ce)
    torch.testing.assert_close(out["loss_um"], 0.3 * um)
    torch.testing.assert_close(out["loss_ur"], 0.7 * ur)
    assert out["num_clamped"].item() == (targets.abs() > 2.0).sum().item()
    assert out["num_clamped"].item() > 0


def test_eq16_entropy_objective_and_switching_refinement_off():
    feats, branch, logits, targets = _setup(1)
    out = UGSLoss(2.0, 1.0, 10, ur_objective="entropy")(logits, targets, features=feats,
                                                         predict=branch)
    deltas = refine_perturbation(uncertainty_loss(logits), feats, 0.5)
    expect = 0.5 * uncertainty_loss(branch([f + d for f, d in zip(feats, deltas)]))
    torch.testing.assert_close(out["loss_ur"], expect)
    off = UGSLoss(2.0, 1.0, 10, gamma=0.0)(logits, targets, features=feats, predict=branch)
    assert "loss_ur" not in off
    no_feats = UGSLoss(2.0, 1.0, 10)(logits, targets)
    assert "loss_ur" not in no_feats


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
