"""ugs.diagnostics: gradient maps, object sums, size buckets, streaming variance (hand values)."""
import math

import numpy as np
import pytest
import torch

from ugs.diagnostics import (BucketVariance, Welford, anchor_feature_gradient_norms,
                             box_cell_mask, bucket_means, coco_size_bucket, gradient_magnitude,
                             object_gradient_sums, t_interval, variance_ratio, width_bucket,
                             width_bucket_names)


def test_gradient_magnitude_is_l2_over_channels():
    g = torch.zeros(1, 2, 2, 3)
    g[0, 0, 1, 2], g[0, 1, 1, 2] = 3.0, -4.0          # a 3-4-5 triangle at cell (1, 2)
    g[0, 1, 0, 0] = -2.0
    m = gradient_magnitude(g)
    assert m.shape == (1, 2, 3)
    torch.testing.assert_close(m[0], torch.tensor([[2.0, 0, 0], [0, 0, 5.0]]))
    with pytest.raises(ValueError, match="expected"):
        gradient_magnitude(torch.zeros(4, 4))


def test_box_cell_mask_uses_cell_points():
    # stride 8, offset 0.5: cell points at 4, 12, 20, 28
    m = box_cell_mask((0, 0, 16, 16), (4, 4), 8)
    assert m.nonzero().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    # x in [13, 21) holds only the point 20 (column 2); y in [3, 30) holds all four rows
    assert box_cell_mask((13, 3, 21, 30), (4, 4), 8).nonzero().tolist() == [[0, 2], [1, 2], [2, 2], [3, 2]]
    # the right/bottom edges are open: x2 = 12 excludes the point 12
    assert box_cell_mask((0, 0, 12, 12), (4, 4), 8).nonzero().tolist() == [[0, 0]]
    # a box between points gets the cell of its centre (6, 14) -> row 1, column 0
    assert box_cell_mask((5, 13, 7, 15), (4, 4), 8).nonzero().tolist() == [[1, 0]]
    # offset 0: points at 0, 8, 16, 24
    assert box_cell_mask((1, 1, 9, 9), (4, 4), 8, offset=0).nonzero().tolist() == [[1, 1]]
    with pytest.raises(ValueError, match="x2 >= x1"):
        box_cell_mask((5, 0, 1, 4), (4, 4), 8)


def test_object_gradient_sums_add_cells_inside_each_box():
    mag = torch.arange(16.0).reshape(4, 4)
    boxes = torch.tensor([[0, 0, 16, 16], [13, 3, 21, 30], [5, 13, 7, 15]])
    s = object_gradient_sums(mag, boxes, 8)
    # 0 + 1 + 4 + 5;  2 + 6 + 10 + 14;  cell (1, 0) = 4
    assert s.tolist() == [10.0, 32.0, 4.0]
    assert object_gradient_sums(mag, torch.zeros(0, 4), 8).numel() == 0


def test_coco_size_and_width_buckets():
    assert coco_size_bucket([0, 1023.9, 1024, 9215.9, 9216, 1e6]).tolist() == [0, 0, 1, 1, 2, 2]
    assert width_bucket([0, 31.9, 32, 63.9, 64, 127, 128, 900]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert width_bucket_names() == ["w<32", "32<=w<64", "64<=w<128", "w>=128"]
    assert bucket_means([1.0, 3.0, 10.0], [0, 0, 2], 3) == [2.0, None, 10.0]
    with pytest.raises(ValueError, match="differ in length"):
        bucket_means([1.0], [0, 1], 2)


def test_welford_matches_numpy_var():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=257) * 1e-3
    w = Welford()
    w.extend(x)
    assert w.count == 257
    assert math.isclose(w.mean, float(np.mean(x)), rel_tol=1e-12)
    assert math.isclose(w.var(), float(np.var(x)), rel_tol=1e-10)
    assert math.isclose(w.var(1), float(np.var(x, ddof=1)), rel_tol=1e-10)
    assert math.isnan(Welford().var())
    with pytest.raises(ValueError, match="non-finite"):
        w.update(float("nan"))
    # hand values: 1, 2, 4 -> mean 7/3, population variance 14/9
    b = BucketVariance(["a", "b"])
    for v in (1.0, 2.0, None, 4.0):
        b.update("a", v)
    st = b.state()
    assert st["a"]["count"] == 3 and math.isclose(st["a"]["var"], 14 / 9)
    assert st["b"]["count"] == 0
    with pytest.raises(KeyError, match="unknown bucket"):
        b.update("c", 1.0)


def test_anchor_feature_gradients_match_autograd():
    # 3 anchors x 2 outputs on a 1x1 conv over 5 channels: W_a^T g_a is the gradient of the
    # feature when only anchor a's outputs at one cell enter the loss
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 6, 1)
    x = torch.randn(2, 5, 3, 4, requires_grad=True)
    out = conv(x)
    g = torch.zeros_like(out)
    g[1, 2:4, 2, 3] = torch.tensor([0.5, -1.5])       # image 1, anchor 1, cell (2, 3)
    g[0, 4:6, 0, 1] = torch.tensor([2.0, 0.0])        # image 0, anchor 2, cell (0, 1)
    norms, active = anchor_feature_gradient_norms(g, conv.weight, 3)
    assert norms.shape == active.shape == (2, 3 * 4 * 3)
    (fx,) = torch.autograd.grad(out, x, g)
    # prior order (row, column, anchor): index (r * W + c) * A + a
    i1, i0 = (2 * 4 + 3) * 3 + 1, (0 * 4 + 1) * 3 + 2
    torch.testing.assert_close(norms[1, i1], fx[1, :, 2, 3].norm())
    torch.testing.assert_close(norms[0, i0], fx[0, :, 0, 1].norm())
    assert active.sum() == 2 and active[1, i1] and active[0, i0]
    assert float(norms.sum()) == pytest.approx(float(norms[1, i1] + norms[0, i0]))
    with pytest.raises(ValueError, match="1x1 conv"):
        anchor_feature_gradient_norms(g, conv.weight, 4)


def test_ratio_and_t_interval():
    assert variance_ratio(6.0, 2.0) == 3.0
    assert math.isnan(variance_ratio(1.0, 0.0)) and math.isnan(variance_ratio(None, 1.0))
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    # s = 1, t_{0.975, 2} = 4.302653 (t table) -> half width 4.302653 / sqrt(3)
    assert m == 2.0 and hi - m == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert lo == pytest.approx(2 * m - hi)
    assert t_interval([5.0]) == (5.0, 5.0, 5.0)


def test_convergence_readings_by_hand():
    from ugs.diagnostics import convergence_readings

    def run(first_small, first_medium, last_small, last_medium):
        return {"first": {"small": {"mean": first_small}, "medium": {"mean": first_medium}, "large": {"mean": None}},
                "last": {"small": {"mean": last_small}, "medium": {"mean": last_medium}, "large": {"mean": None}}}

    # seed 0, L2: small 2 -> 1 (halves), medium 4 -> 1 (quarters): small falls less, ratio 0.5 / 0.25 = 2;
    # last-epoch salience small / medium: L2 1 / 1 = 1, UGS 1 / 4 = 0.25 -> UGS over L2 = 0.25
    l2 = {0: run(2.0, 4.0, 1.0, 1.0), 1: run(1.0, 1.0, 1.0, 1.0), 7: run(1.0, 1.0, 1.0, 1.0)}
    ugs = {0: run(1.0, 1.0, 1.0, 4.0), 1: run(3.0, 1.0, 3.0, 1.0)}         # seed 7 has no UGS run: left out
    got = convergence_readings(l2, ugs)
    assert sorted(got) == ["l2_small_vs_medium", "ugs_small_vs_medium", "ugs_vs_l2_small_salience"]
    base, treat = got["l2_small_vs_medium"]
    assert sorted(base) == [0, 1] and math.exp(treat[0] - base[0]) == pytest.approx(2.0)
    assert math.exp(treat[1] - base[1]) == pytest.approx(1.0)
    base, treat = got["ugs_small_vs_medium"]
    assert math.exp(treat[0] - base[0]) == pytest.approx(0.25)                # medium x4, small x1
    base, treat = got["ugs_vs_l2_small_salience"]
    assert math.exp(treat[0] - base[0]) == pytest.approx(0.25) and math.exp(treat[1] - base[1]) == pytest.approx(3.0)
    # a size without objects gives NaN, not an error
    l2[1]["last"]["medium"]["mean"] = None
    assert math.isnan(convergence_readings(l2, ugs)["l2_small_vs_medium"][0][1])


@pytest.mark.parametrize("low, high, side, want", [
    (1.2, 3.0, +1, "holds"), (0.2, 0.8, +1, "contradicted"), (0.8, 1.3, +1, "not resolved"),
    (0.2, 0.8, -1, "holds"), (1.2, 3.0, -1, "contradicted"), (0.8, 1.3, -1, "not resolved"),
    (float("nan"), float("nan"), +1, "not resolved"), (1.0, 2.0, +1, "not resolved"),
])
def test_claim_verdict_reads_the_interval_against_the_claims_side(low, high, side, want):
    from ugs.diagnostics import claim_verdict
    assert claim_verdict(low, high, side) == want


@pytest.mark.parametrize("side, want", [(+1, "above"), (-1, "below")])
def test_claim_words_name_the_side_claim_verdict_reads(side, want):
    from ugs.diagnostics import claim_verdict, claim_words
    assert claim_words(side) == want
    # the same side read by claim_verdict: an interval wholly on the named side holds
    assert claim_verdict(*((1.5, 2.0) if want == "above" else (0.5, 0.7)), side) == "holds"


@pytest.mark.parametrize("side", [0, 2, "above"])
def test_claim_words_refuses_a_side_other_than_plus_or_minus_one(side):
    from ugs.diagnostics import claim_words
    with pytest.raises(ValueError, match="side must be"):
        claim_words(side)
