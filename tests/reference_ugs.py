"""An independent reference for the UGS equations, for tests only: Eq. 9 (the IN grid), Eq. 8
(the two-hot target, interpolation form), Eq. 10 (cross-entropy) and Eq. 12 (entropy), written
out from the paper's formulas in float64 with explicit loops. It imports nothing from ``ugs``,
so a test that compares the kit with it compares two independent implementations.
"""
import torch


def ref_grid(alpha, beta, n):
    """Eq. 9: the n + 1 points sign(y) alpha (e^(beta |y|) - 1) / (e^(alpha beta) - 1)."""
    import math
    ys = [-alpha + 2 * alpha * i / n for i in range(n + 1)]                       # uniform y_i
    if beta == 0:
        return ys                                                                 # Eq. 9's limit
    return [math.copysign(alpha * math.expm1(beta * abs(y)) / math.expm1(alpha * beta), y) if y else 0.0
            for y in ys]                                                          # Eq. 9


def ref_two_hot(t, grid):
    """Eq. 8 as linear interpolation between the two neighbouring points (targets clamped)."""
    t = min(max(t, grid[0]), grid[-1])                                            # clamp to the range
    for i in range(len(grid) - 1):
        if grid[i] <= t <= grid[i + 1]:
            w_r = (t - grid[i]) / (grid[i + 1] - grid[i])
            out = [0.0] * len(grid)
            out[i], out[i + 1] = 1 - w_r, w_r                                     # Eq. 8 (interpolation form)
            return out
    raise AssertionError("unreachable")


def ref_terms(logits, targets, grid):
    """(mean CE of Eq. 10, mean entropy of Eq. 12) over all targets."""
    flat_l, flat_t = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    ce, ent = 0.0, 0.0
    for row, t in zip(flat_l, flat_t.tolist()):
        log_p = row - torch.logsumexp(row, 0)
        ce = ce - sum(w * lp for w, lp in zip(ref_two_hot(t, grid), log_p))
        ent = ent - (log_p.exp() * log_p).sum()
    return ce / len(flat_t), ent / len(flat_t)


def ref_weighted_terms(logits, targets, weights, grid, avg_factor):
    """(sum of w * CE (Eq. 10), sum of w * entropy (Eq. 12)) over every (box, coordinate),
    divided by ``avg_factor``: the normalisation mmdet's L1 terms use. ``logits (P, 4, B)``,
    ``targets`` and ``weights (P, 4)``; differentiable in ``logits``."""
    ce, ent = 0.0, 0.0
    for lg, t, w in zip(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).tolist(),
                        weights.reshape(-1)):
        c, e = ref_terms(lg[None].double(), torch.tensor([t]), grid)
        ce, ent = ce + w * c, ent + w * e
    return ce / avg_factor, ent / avg_factor
