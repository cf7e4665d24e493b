"""The rotated-box encodings of the kit (``ugs.rotated_coding``, ``ugs.rotated.heads``) and the
mmrotate 1.0.0rc1 coders they sit on, each against values worked out independently here:

* by hand (two-hot weights, the line-grid failure at the wrap, with numbers),
* by the formulas written out with numpy in float64 (Eq. 9, the coders' deltas, corners),
* by a brute-force second method (the two readings of a rectangle, corner sets).

No expected value comes from the function under test or its helpers.
"""
import math

import numpy as np
import pytest
import torch

import ugs.openmmlab.compat  # noqa: F401  (before mmrotate)
from mmrotate.models.task_modules.coders import (DeltaXYWHTRBBoxCoder,  # noqa: E402
                                                 DistanceAnglePointCoder, MidpointOffsetCoder)
from mmrotate.structures.bbox import RotatedBoxes  # noqa: E402

from ugs.distance_coding import DistanceCoder  # noqa: E402
from ugs.grid import IntervalGrid  # noqa: E402
from ugs.localization import localization_ce  # noqa: E402
from ugs.rotated.heads import midpoint_offset_alphas, xywht_delta_alphas  # noqa: E402
from ugs.rotated_coding import (EDGE_SWAP_ANGLE_BOUND, MIDPOINT_OFFSET_BOUND,  # noqa: E402
                                CircularGrid, DeltaGrids)

PI = math.pi
HALF = PI / 2
F64 = torch.float64
RCNN_STDS = (0.1, 0.1, 0.2, 0.2, 0.1)      # Oriented R-CNN's R-CNN stage
RETINA_STDS = (1.0,) * 5                   # Rotated RetinaNet
RPN_STDS = (1.0, 1.0, 1.0, 1.0, 0.5, 0.5)  # Oriented R-CNN's RPN (MidpointOffsetCoder)

#: gt angles at the ends of le90's range and around the edge-swap tie (|dt| = pi / 4)
EDGE_ANGLES = (-HALF + 1e-3, HALF - 1e-3, PI / 4 + 1e-3, PI / 4 - 1e-3, -PI / 4 + 1e-3,
               -PI / 4 - 1e-3, 0.0, 1.0, -1.2)


# ---------------------------------------------------------------- independent helpers (numpy)

def np_wrap(a):
    """Angles into [-pi/2, pi/2) (le90), float64."""
    return np.mod(np.asarray(a, np.float64) + HALF, PI) - HALF


def np_corners(boxes):
    """(N, 5) (cx, cy, w, h, t) -> (N, 4, 2): the local corners (+-w/2, +-h/2) rotated by t."""
    b = np.asarray(boxes, np.float64).reshape(-1, 5)
    cx, cy, w, h, t = b.T
    c, s = np.cos(t), np.sin(t)
    out = []
    for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1)):
        lx, ly = sx * w / 2, sy * h / 2
        out.append(np.stack([cx + c * lx - s * ly, cy + s * lx + c * ly], -1))
    return np.stack(out, 1)


def rect_gap(a, b):
    """Per box, the largest distance from a corner of one rectangle to the nearest corner of the
    other (0 iff the corner sets coincide, whatever the (w, h, t) reading)."""
    ca, cb = np_corners(a), np_corners(b)
    d = np.linalg.norm(ca[:, :, None] - cb[:, None], axis=-1)
    return np.maximum(d.min(2).max(1), d.min(1).max(1))


def np_le90(boxes):
    """The le90 reading of each box written out: swap w, h (and add pi/2) when w < h."""
    b = np.array(boxes, np.float64).reshape(-1, 5)
    swap = b[:, 2] < b[:, 3]
    b[swap, 2], b[swap, 3] = b[swap, 3].copy(), b[swap, 2].copy()
    b[swap, 4] += HALF
    b[:, 4] = np_wrap(b[:, 4])
    return b


def np_softmax_log(logits):
    x = np.asarray(logits, np.float64)
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def eq9_values(alpha, beta, n):
    """Eq. 9 written out: y_i = -alpha + 2 alpha i / n and
    sign(y) alpha (e^{beta |y|} - 1) / (e^{alpha beta} - 1)."""
    y = -alpha + 2 * alpha * np.arange(n + 1) / n
    if beta == 0:
        return y
    return np.sign(y) * alpha * (np.exp(beta * np.abs(y)) - 1) / (np.exp(alpha * beta) - 1)


def np_xywht_deltas(anchors, gts, stds, edge_swap=True, return_both=False):
    """DeltaXYWHTRBBoxCoder's deltas (le90, proj_xy) written out in float64. With the edge swap
    the gt's two readings (w, h, t) and (h, w, t + pi/2) are both tried (brute force) and the
    one with the smaller le90-wrapped angle change is kept."""
    a, g = np.asarray(anchors, np.float64), np.asarray(gts, np.float64)
    px, py, pw, ph, pt = a.T
    if not edge_swap:
        g = np_le90(g)
    gx, gy, gw, gh, gt = g.T
    c, s = np.cos(pt), np.sin(pt)
    dx = (c * (gx - px) + s * (gy - py)) / pw
    dy = (-s * (gx - px) + c * (gy - py)) / ph
    if edge_swap:
        readings = [(gw, gh, np_wrap(gt - pt)), (gh, gw, np_wrap(gt + HALF - pt))]
        if return_both:   # both readings' deltas and where they tie (|dt1| == |dt2| = pi/4)
            both = [np.stack([dx, dy, np.log(w_ / pw), np.log(h_ / ph), t_], -1)
                    / np.asarray(stds, np.float64) for w_, h_, t_ in readings]
            tie = np.abs(np.abs(readings[0][2]) - np.abs(readings[1][2])) < 1e-5
            return both[0], both[1], tie
        first = np.abs(readings[0][2]) < np.abs(readings[1][2])
        w_ = np.where(first, readings[0][0], readings[1][0])
        h_ = np.where(first, readings[0][1], readings[1][1])
        dt = np.where(first, readings[0][2], readings[1][2])
    else:
        w_, h_, dt = gw, gh, np_wrap(gt - pt)
    d = np.stack([dx, dy, np.log(w_ / pw), np.log(h_ / ph), dt], -1)
    return d / np.asarray(stds, np.float64)


def np_midpoint_deltas(hboxes, gts, stds, tie_px=0.1):
    """MidpointOffsetCoder's deltas written out: centre / size of the gt's horizontal hull against
    the horizontal anchor, da = (x of the top vertex - gx) / gw, db = (y of the right vertex - gy)
    / gh. mmrotate's tie rule: every vertex within ``tie_px`` pixels of the top (right) counts
    as top (right), the largest x (y) among them wins."""
    hb = np.asarray(hboxes, np.float64)
    px, py = (hb[:, 0] + hb[:, 2]) / 2, (hb[:, 1] + hb[:, 3]) / 2
    pw, ph = hb[:, 2] - hb[:, 0], hb[:, 3] - hb[:, 1]
    c = np_corners(gts)
    xs, ys = c[..., 0], c[..., 1]
    x1, x2, y1, y2 = xs.min(1), xs.max(1), ys.min(1), ys.max(1)
    gx, gy, gw, gh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    ga = np.where(np.abs(ys - y1[:, None]) <= tie_px, xs, -np.inf).max(1)
    gb = np.where(np.abs(xs - x2[:, None]) <= tie_px, ys, -np.inf).max(1)
    d = np.stack([(gx - px) / pw, (gy - py) / ph, np.log(gw / pw), np.log(gh / ph),
                  (ga - gx) / gw, (gb - gy) / gh], -1)
    return d / np.asarray(stds, np.float64)


def random_boxes(rng, n, lo, hi, angle_lo=-3 * PI, angle_hi=3 * PI, centre=100.0):
    xy = rng.uniform(-centre, centre, (n, 2))
    wh = rng.uniform(lo, hi, (n, 2))
    t = rng.uniform(angle_lo, angle_hi, (n, 1))
    return np.concatenate([xy, wh, t], 1)


def xywht_coder(stds, edge_swap=True, **kw):
    return DeltaXYWHTRBBoxCoder(target_means=(0.0,) * 5, target_stds=stds, angle_version="le90",
                                edge_swap=edge_swap, proj_xy=True, **kw)


def midpoint_coder():
    return MidpointOffsetCoder(target_means=(0.0,) * 6, target_stds=RPN_STDS,
                               angle_version="le90")


def rbox(a, dtype=torch.float32):
    """A fresh RotatedBoxes (mmrotate's encode regularizes the gt boxes in place)."""
    return RotatedBoxes(torch.tensor(np.asarray(a), dtype=dtype))


def two_hot_logits(p):
    return torch.log(p)   # softmax(log p) == p; log 0 = -inf gives probability 0


# ------------------------------------------------------------------------------ CircularGrid

STEP17 = PI / 17


def test_circular_grid_values_by_hand():
    g = CircularGrid(17)
    expected = np.array([-HALF + j * PI / 17 for j in range(17)])
    np.testing.assert_allclose(g.values.double().numpy(), expected, atol=1e-6)
    assert g.values.dtype == torch.float32 and g.num_bins == 17
    assert g.step == pytest.approx(PI / 17)


@pytest.mark.parametrize("dtype,atol", [(F64, 1e-12), (torch.float32, 1e-5)])
def test_circular_two_hot_by_hand(dtype, atol):
    g = CircularGrid(17)
    v = lambda j: -HALF + j * PI / 17  # noqa: E731  (bin j's angle, by hand)
    cases = [
        # (angle, {bin: weight}) worked out by hand
        (v(5), {5: 1.0}),                                 # exactly on a bin
        (-HALF, {0: 1.0}),                                # the first bin
        (HALF, {0: 1.0}),                                 # +pi/2 is -pi/2 on the circle
        (v(3) + 0.25 * STEP17, {3: 0.75, 4: 0.25}),       # inside the range
        (v(3) + 0.25 * STEP17 + 7 * PI, {3: 0.75, 4: 0.25}),   # + 7 periods
        (v(3) + 0.25 * STEP17 - 4 * PI, {3: 0.75, 4: 0.25}),   # - 4 periods
        (HALF - STEP17 / 2, {16: 0.5, 0: 0.5}),          # half way across the wrap
        (HALF - STEP17 / 4, {16: 0.25, 0: 0.75}),        # 3/4 of the way from bin 16 to bin 0
        (-HALF - STEP17 / 4, {16: 0.25, 0: 0.75}),       # the same angle from below -pi/2
        (-HALF + STEP17 / 4, {0: 0.75, 1: 0.25}),
        (HALF - STEP17 * 0.9, {16: 0.9, 0: 0.1}),
    ]
    theta = torch.tensor([c[0] for c in cases], dtype=dtype)
    p = g.encode(theta)
    assert p.shape == (len(cases), 17) and p.dtype == dtype
    expected = np.zeros((len(cases), 17))
    for i, (_, w) in enumerate(cases):
        for j, wj in w.items():
            expected[i, j] = wj
    np.testing.assert_allclose(p.double().numpy(), expected, atol=atol)


@pytest.mark.parametrize("dtype,atol", [(F64, 1e-12), (torch.float32, 2e-6)])
def test_circular_round_trip_dense_sweep(dtype, atol):
    g = CircularGrid(17)
    sweep = np.linspace(-3 * PI, 3 * PI, 60001)
    edges = np.array([HALF - 1e-4, HALF + 1e-4, -HALF - 1e-4, -HALF + 1e-4, HALF, -HALF,
                      0.0, 1e-9, -1e-9, HALF - 1e-9, -HALF + 1e-9])
    ks = np.arange(-3, 4)[:, None]
    edges = (edges[None] + ks * PI).ravel()        # the same angles theta + k pi
    theta_np = np.concatenate([sweep, edges])
    theta = torch.tensor(theta_np, dtype=dtype)
    out = g.decode(two_hot_logits(g.encode(theta)))
    assert out.dtype == dtype and out.shape == theta.shape
    # the decoded angle lies in [-pi/2, pi/2) (compared in the output's own precision)
    lo, hi = torch.tensor(-HALF, dtype=dtype), torch.tensor(HALF, dtype=dtype)
    assert bool((out >= lo).all()) and bool((out < hi).all())
    # ... and is the input wrapped into it: circular difference 0
    theta_in = theta.double().numpy()              # what the grid actually received
    err = np_wrap(out.double().numpy() - theta_in)
    assert np.abs(err).max() < atol * 10
    if dtype == F64:   # away from the seam the plain value is exactly the wrapped one
        np.testing.assert_allclose(out.numpy(), np_wrap(theta_in), atol=1e-12)


@pytest.mark.parametrize("dtype,atol", [(F64, 1e-12), (torch.float32, 1e-6)])
def test_circular_round_trip_at_the_seam_by_hand(dtype, atol):
    g = CircularGrid(17)
    theta = torch.tensor([HALF + 1e-4, -HALF - 1e-4, HALF - 1e-4, -HALF + 1e-4,
                          HALF + 1e-4 + 3 * PI, -HALF - 1e-4 - 2 * PI], dtype=dtype)
    expected = [-HALF + 1e-4, HALF - 1e-4, HALF - 1e-4, -HALF + 1e-4, -HALF + 1e-4, HALF - 1e-4]
    out = g.decode(two_hot_logits(g.encode(theta)))
    np.testing.assert_allclose(out.double().numpy(), expected, atol=atol * (1 + 10 * PI))


def test_circular_round_trip_keeps_shape_and_batches():
    g = CircularGrid(17)
    theta = torch.linspace(-2.0, 2.0, 24, dtype=F64).reshape(2, 3, 4)
    p = g.encode(theta)
    assert p.shape == (2, 3, 4, 17)
    np.testing.assert_allclose(p.sum(-1).numpy(), 1.0, atol=1e-12)
    assert int((p > 0).sum(-1).max()) <= 2
    out = g.decode(two_hot_logits(p))
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out.numpy(), np_wrap(theta.numpy()), atol=1e-12)


E_WRAP = 0.002   # the two boxes below are 2 e = 0.004 rad apart as orientations


def test_line_grid_is_wrong_at_the_wrap_the_circle_is_not():
    """The proof: -pi/2 + e and pi/2 - e are the same orientation up to 2 e. The uniform line
    grid on [-pi/2, pi/2] (17 points, step pi/16) puts them at its two ends."""
    e = E_WRAP
    a, b = -HALF + e, HALF - e
    line = IntervalGrid(alpha=HALF, beta=0, n=16)
    s = PI / 16
    # line two-hots by hand: a between points 0 and 1, b between points 15 and 16
    pa, pb = np.zeros(17), np.zeros(17)
    pa[0], pa[1] = 1 - e / s, e / s
    pb[15], pb[16] = e / s, 1 - e / s
    got = line.encode(torch.tensor([a, b], dtype=F64)).numpy()
    np.testing.assert_allclose(got, np.stack([pa, pb]), atol=1e-12)
    # an equal mixture of the two: the line decodes 0.5 a + 0.5 b = 0, the perpendicular
    mix_line = torch.tensor((pa + pb) / 2)
    dec_line = float(line.decode(torch.log(mix_line)))
    assert dec_line == pytest.approx(0.0, abs=1e-12)
    assert abs(np_wrap(dec_line - a)) == pytest.approx(HALF - e, abs=1e-12)   # 1.5688 rad off

    # the circle (17 bins, step pi/17): a is 0.9892 on bin 0 + 0.0108 on bin 1, b is 0.0108 on
    # bin 16 + 0.9892 on bin 0 (its right neighbour across the wrap)
    c = CircularGrid(17)
    r = e / STEP17
    ca, cb = np.zeros(17), np.zeros(17)
    ca[0], ca[1] = 1 - r, r
    cb[16], cb[0] = r, 1 - r
    got = c.encode(torch.tensor([a, b], dtype=F64)).numpy()
    np.testing.assert_allclose(got, np.stack([ca, cb]), atol=1e-12)
    # their mixture: 1 - r on bin 0, r/2 on each neighbour -> -pi/2 exactly, e from both boxes
    dec_circ = float(c.decode(torch.log(torch.tensor((ca + cb) / 2))))
    assert np_wrap(dec_circ - (-HALF)) == pytest.approx(0.0, abs=1e-12)
    assert abs(np_wrap(dec_circ - a)) == pytest.approx(e, abs=1e-12)
    assert abs(np_wrap(dec_circ - b)) == pytest.approx(e, abs=1e-12)

    # CE of a prediction sharp at b (0.99 on b's two-hot + 0.01 spread uniformly) against a
    floor = 0.01 / 17
    q_line = 0.99 * pb + floor
    ce_line = float(localization_ce(torch.log(torch.tensor(q_line))[None],
                                    torch.tensor([a], dtype=F64), line))
    # by hand: a's two-hot sits on points 0 and 1 where the prediction has only the floor
    assert ce_line == pytest.approx(math.log(1700.0), rel=1e-12)          # 7.438
    q_circ = 0.99 * cb + floor
    ce_circ = float(c.ce(torch.log(torch.tensor(q_circ))[None], torch.tensor([a], dtype=F64)))
    hand = -(1 - r) * math.log(0.99 * (1 - r) + floor) - r * math.log(floor)
    assert ce_circ == pytest.approx(hand, rel=1e-12)                       # 0.100
    assert ce_circ == pytest.approx(0.1003, abs=5e-4)
    assert ce_line > 70 * ce_circ
    # on the circle the prediction at b is nearly as good for a as for b itself
    ce_self = float(c.ce(torch.log(torch.tensor(q_circ))[None], torch.tensor([b], dtype=F64)))
    hand_self = -(1 - r) * math.log(0.99 * (1 - r) + floor) - r * math.log(0.99 * r + floor)
    assert ce_self == pytest.approx(hand_self, rel=1e-12)                  # 0.069
    assert ce_circ - ce_self < 0.05


def test_circular_ce_is_continuous_across_the_wrap():
    torch.manual_seed(0)
    logits = torch.randn(17, dtype=F64) * 2
    lq = np_softmax_log(logits.numpy())
    c = CircularGrid(17)
    line = IntervalGrid(alpha=HALF, beta=0, n=16)
    gaps = []
    for d in (1e-1, 1e-2, 1e-3, 1e-4, 1e-6):
        lo = float(c.ce(logits[None], torch.tensor([-HALF + d], dtype=F64)))
        hi = float(c.ce(logits[None], torch.tensor([HALF - d], dtype=F64)))
        r = d / STEP17
        assert lo == pytest.approx(-(1 - r) * lq[0] - r * lq[1], rel=1e-10)
        assert hi == pytest.approx(-r * lq[16] - (1 - r) * lq[0], rel=1e-10)
        gaps.append(abs(lo - hi))
        assert abs(lo - hi) <= r * (abs(lq[1]) + abs(lq[16])) + 1e-12
        # the line grid, for contrast: the two targets are its two ends
        s = PI / 16
        lo_l = float(localization_ce(logits[None], torch.tensor([-HALF + d], dtype=F64), line))
        hi_l = float(localization_ce(logits[None], torch.tensor([HALF - d], dtype=F64), line))
        assert lo_l == pytest.approx(-(1 - d / s) * lq[0] - d / s * lq[1], rel=1e-10)
        assert hi_l == pytest.approx(-(d / s) * lq[15] - (1 - d / s) * lq[16], rel=1e-10)
    assert all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-4
    at_seam = [float(c.ce(logits[None], torch.tensor([t], dtype=F64))) for t in (-HALF, HALF)]
    assert at_seam[0] == pytest.approx(-lq[0], rel=1e-12)
    assert at_seam[1] == pytest.approx(-lq[0], rel=1e-12)
    # the line does not close: a gap of |log q_0 - log q_16| stays
    assert abs(lq[0] - lq[16]) > 0.1


def test_circular_ce_weight_and_avg_factor_by_hand():
    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.normal(size=(6, 17)) * 1.5)
    theta = torch.tensor(rng.uniform(-4, 4, 6))
    w = torch.tensor(rng.uniform(0.1, 1.0, 6))
    c = CircularGrid(17)
    lq = np_softmax_log(logits.numpy())
    per = []
    for i, t in enumerate(theta.numpy()):
        u = (np_wrap(t) + HALF) / STEP17
        j = int(np.floor(u)) % 17
        fr = u - np.floor(u)
        per.append(-(1 - fr) * lq[i, j] - fr * lq[i, (j + 1) % 17])
    per = np.array(per)
    assert float(c.ce(logits, theta)) == pytest.approx(per.mean(), rel=1e-10)
    got = float(c.ce(logits, theta, weight=w, avg_factor=2.5))
    assert got == pytest.approx((per * w.numpy()).sum() / 2.5, rel=1e-10)


def test_circular_grid_errors():
    c = CircularGrid(17)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            c.encode(torch.tensor([0.1, bad]))
        with pytest.raises(ValueError):
            c.ce(torch.zeros(2, 17), torch.tensor([0.1, bad]))
    with pytest.raises(ValueError):
        c.encode(torch.tensor([1, 2]))                 # integer angles
    for width in (16, 18):
        with pytest.raises(ValueError):
            c.decode(torch.zeros(3, width))
        with pytest.raises(ValueError):
            c.ce(torch.zeros(3, width), torch.zeros(3))
    with pytest.raises(ValueError):
        c.decode(torch.tensor(0.0))                    # 0-d
    with pytest.raises(ValueError):
        c.decode(torch.zeros(3, 17, dtype=torch.long))
    with pytest.raises(ValueError):
        c.ce(torch.zeros(3, 17), torch.zeros(4))        # theta shape
    for n in (2, 1, 0, -5, True, 3.0, "17"):
        with pytest.raises(ValueError):
            CircularGrid(n)
    for period in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            CircularGrid(17, period)
    assert CircularGrid(3).num_bins == 3


# -------------------------------------------------------------------------------- DeltaGrids

ALPHAS5 = [2.0, 2.0, 2.0, 2.0, PI / 4]


def test_delta_grids_values_are_eq9_per_delta():
    dg = DeltaGrids(ALPHAS5, 1.0, 10)
    assert dg.num_deltas == 5 and dg.num_bins == 11
    for g, a in zip(dg.grids, ALPHAS5):
        np.testing.assert_allclose(g.values.double().numpy(), eq9_values(a, 1.0, 10), atol=1e-6)


def test_delta_grids_two_hot_and_round_trip_inside_each_range():
    dg = DeltaGrids(ALPHAS5, 1.0, 10)
    rng = np.random.default_rng(2)
    t = rng.uniform(-1, 1, (64, 5)) * np.array(ALPHAS5) * 0.999
    t[0] = [0.0, 2.0, -2.0, 1e-6, -PI / 4]              # ends and centre of each range
    p = dg.encode(torch.tensor(t))
    assert p.shape == (64, 5, 11) and p.dtype == F64
    pn = p.numpy()
    for k, a in enumerate(ALPHAS5):
        vals = eq9_values(a, 1.0, 10)
        # weights >= 0, sum 1, expectation on the hand grid = target, support = bracketing pair
        assert (pn[:, k] >= 0).all()
        np.testing.assert_allclose(pn[:, k].sum(-1), 1.0, atol=1e-12)
        np.testing.assert_allclose(pn[:, k] @ vals, t[:, k], atol=1e-12)
        left = np.clip(np.searchsorted(vals, t[:, k], side="right") - 1, 0, 9)
        mask = np.zeros_like(pn[:, k], bool)
        mask[np.arange(64), left] = mask[np.arange(64), left + 1] = True
        assert (pn[:, k][~mask] == 0).all()
    out = dg.decode(two_hot_logits(p))
    assert out.shape == (64, 5)
    np.testing.assert_allclose(out.numpy(), t, atol=1e-12)


def test_delta_grids_clamp_each_delta_to_its_own_alpha():
    dg = DeltaGrids(ALPHAS5, 1.0, 10)
    t = torch.tensor([[3.0, -3.0, 2.5, -10.0, 1.0],
                      [1.0, 1.0, 1.0, 1.0, -1.0],
                      [0.5, 0.5, 0.5, 0.5, 0.5]], dtype=F64)
    expected = [[2.0, -2.0, 2.0, -2.0, PI / 4],       # clamped to 2 and to pi/4
                [1.0, 1.0, 1.0, 1.0, -PI / 4],        # 1 is inside dx's grid, outside dtheta's
                [0.5, 0.5, 0.5, 0.5, 0.5]]
    out = dg.decode(two_hot_logits(dg.encode(t)))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("with_weight", [False, True])
def test_delta_grids_terms_by_hand(with_weight):
    dg = DeltaGrids(ALPHAS5, 1.0, 10)
    rng = np.random.default_rng(3)
    P, avg = 7, 3.5
    logits = torch.tensor(rng.normal(size=(P, 5, 11)) * 2, requires_grad=True)
    targets = torch.tensor(rng.uniform(-2.5, 2.5, (P, 5)))   # some outside their ranges
    weight = torch.tensor(rng.uniform(0.0, 1.0, (P, 5))) if with_weight else None
    ce, um = dg.terms(logits, targets, weight, avg)
    ce_exp = sum(localization_ce(logits[:, k].detach(), targets[:, k], g,
                                 weight=None if weight is None else weight[:, k],
                                 avg_factor=avg)
                 for k, g in enumerate(dg.grids))
    assert float(ce) == pytest.approx(float(ce_exp), rel=1e-12)
    lp = np_softmax_log(logits.detach().numpy())
    H = -(np.exp(lp) * lp).sum(-1)                          # (P, 5), by hand
    w = np.ones((P, 5)) if weight is None else weight.numpy()
    assert float(um) == pytest.approx((w * H).sum() / avg, rel=1e-12)
    (ce + um).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_delta_grids_shape_errors():
    dg = DeltaGrids(ALPHAS5, 1.0, 10)
    for shape in ((4, 4, 11), (4, 5, 10), (4, 6, 11), (11,)):
        with pytest.raises(ValueError):
            dg.decode(torch.zeros(shape))
        with pytest.raises(ValueError):
            dg.terms(torch.zeros(shape), torch.zeros(4, 5), None, 1.0)
    with pytest.raises(ValueError):
        dg.terms(torch.zeros(4, 5, 11), torch.zeros(4, 4), None, 1.0)
    with pytest.raises(ValueError):
        dg.terms(torch.zeros(4, 5, 11), torch.zeros(3, 5), None, 1.0)
    with pytest.raises(ValueError):
        DeltaGrids([], 1.0, 10)
    with pytest.raises(ValueError):
        DeltaGrids([1.0, 0.0], 1.0, 10)
    with pytest.raises(ValueError):
        dg.encode(torch.tensor([[0.0, 0.0, 0.0, 0.0, float("nan")]]))


def test_delta_grids_encode_rejects_wrong_number_of_deltas():
    dg = DeltaGrids(ALPHAS5, 1.0, 10)
    for width in (6, 4):
        with pytest.raises(ValueError):
            dg.encode(torch.zeros(3, width))


# -------------------------------------------------- DeltaXYWHTRBBoxCoder (le90, edge swap)

def _anchor_gt_cases():
    """Hand-picked anchors (RetinaNet's, angle 0, incl. w < h; rotated proposals at the ends of
    the range) against gts at the edge angles, in both w > h and w < h readings."""
    anchors = [[0, 0, 32, 32, 0], [0, 0, 45, 22, 0], [0, 0, 22, 45, 0],
               [3, -2, 40, 20, -HALF + 1e-3], [1, 1, 40, 20, HALF - 1e-3],
               [0, 0, 40, 25, PI / 4], [-2, 5, 30, 20, -0.7]]
    gts = []
    for t in EDGE_ANGLES:
        gts += [[4, -3, 50, 20, t], [-5, 2, 18, 36, t]]      # w > h and w < h
    A = [a for a in anchors for _ in gts]
    G = [g for _ in anchors for g in gts]
    return np.array(A, np.float64), np.array(G, np.float64)


@pytest.mark.parametrize("stds", [RCNN_STDS, RETINA_STDS], ids=["rcnn", "retina"])
def test_xywht_encode_matches_hand_formula(stds):
    A, G = _anchor_gt_cases()
    rng = np.random.default_rng(4)
    A2, G2 = random_boxes(rng, 500, 8, 80, -HALF, HALF), random_boxes(rng, 500, 8, 80)
    A, G = np.concatenate([A, A2]), np.concatenate([G, G2])
    coder = xywht_coder(stds)
    got = coder.encode(rbox(A), rbox(G)).double().numpy()
    # float32 inputs as the coder sees them
    A32, G32 = A.astype(np.float32).astype(np.float64), G.astype(np.float32).astype(np.float64)
    exp = np_xywht_deltas(A32, G32, stds)
    tol = dict(atol=2e-5 / min(stds), rtol=1e-5)
    first, second, tie = np_xywht_deltas(A32, G32, stds, return_both=True)
    # the hand-picked cases hold exact ties (anchor at pi/2 - 1e-3, gt at pi/4 - 1e-3: the
    # angle change is -pi/4 or +pi/4 in the other reading); there either reading is right
    assert tie.sum() >= 3
    np.testing.assert_allclose(got[~tie], exp[~tie], **tol)
    close = lambda x, y: np.isclose(x, y, **tol).all(1)  # noqa: E731
    assert (close(got[tie], first[tie]) | close(got[tie], second[tie])).all()
    np.testing.assert_allclose(np.abs(got[tie, 4]) * stds[4], PI / 4, atol=1e-6)


@pytest.mark.parametrize("stds", [RCNN_STDS, RETINA_STDS], ids=["rcnn", "retina"])
def test_xywht_decode_encode_recovers_gt_as_rectangle(stds):
    A, G = _anchor_gt_cases()
    coder = xywht_coder(stds)
    out = coder.decode(torch.tensor(A, dtype=torch.float32),
                       coder.encode(rbox(A), rbox(G)))
    assert isinstance(out, RotatedBoxes)
    o = out.tensor.double().numpy()
    scale = G[:, 2:4].max(1)
    assert (rect_gap(o, G) / scale).max() < 1e-5
    # the same, compared after writing both as le90 (w >= h, t in [-pi/2, pi/2))
    assert (o[:, 2] >= o[:, 3]).all()
    assert (o[:, 4] >= -HALF - 1e-6).all() and (o[:, 4] < HALF + 1e-6).all()
    ref = np_le90(G)
    np.testing.assert_allclose(o[:, :4], ref[:, :4], rtol=1e-5, atol=1e-4)
    assert np.abs(np_wrap(o[:, 4] - ref[:, 4])).max() < 1e-5


def test_xywht_angle_delta_bound_with_edge_swap():
    rng = np.random.default_rng(5)
    n = 20000
    # RetinaNet: horizontal anchors (angle 0; ratios 0.5, 1, 2) against gts at any angle
    base = rng.uniform(8, 128, n)
    ratio = rng.choice([0.5, 1.0, 2.0], n)
    retina = np.stack([rng.uniform(-50, 50, n), rng.uniform(-50, 50, n),
                       base / np.sqrt(ratio), base * np.sqrt(ratio), np.zeros(n)], 1)
    # R-CNN: rotated proposals (any reading, w < h too) against gts
    proposals = random_boxes(rng, n, 4, 200, -HALF, HALF)
    gts = random_boxes(rng, n, 4, 200)
    A_edge, G_edge = _anchor_gt_cases()
    for anchors, stds in ((retina, RETINA_STDS), (proposals, RCNN_STDS)):
        A = np.concatenate([anchors, A_edge])
        G = np.concatenate([gts, G_edge])
        coder = xywht_coder(stds)
        dt = coder.encode(rbox(A), rbox(G))[:, 4].double().numpy() * stds[4]
        assert np.abs(dt).max() <= PI / 4 + 1e-6
        assert np.abs(dt).max() > PI / 4 - 1e-2           # and the bound is tight
        # the kit's alphas: the angle grid is exactly the bound over the std
        alphas = xywht_delta_alphas(coder, 2.0)
        assert alphas[:4] == [2.0] * 4
        assert alphas[4] == pytest.approx((PI / 4) / stds[4], rel=1e-12)
        # ... and it covers every angle target (no clamping on the angle grid)
        dg = DeltaGrids(alphas, 1.0, 10)
        d = coder.encode(rbox(A), rbox(G)).double()
        _, clamped = dg.grids[4].encode(d[:, 4], return_num_clamped=True)
        assert int(clamped) == 0
        # without the edge swap the angle change reaches pi/2
        dt_ns = xywht_coder(stds, edge_swap=False).encode(rbox(A), rbox(G))[:, 4] * stds[4]
        assert float(dt_ns.abs().max()) > 1.5 and float(dt_ns.abs().max()) <= HALF + 1e-6


def test_xywht_delta_alphas_values():
    assert xywht_delta_alphas(xywht_coder(RETINA_STDS), 2.0) == \
        pytest.approx([2, 2, 2, 2, PI / 4], rel=1e-15)
    a = xywht_delta_alphas(xywht_coder(RCNN_STDS), 5.0)
    assert a[:4] == [5.0] * 4 and a[4] == pytest.approx(7.853981633974483, rel=1e-12)
    a = xywht_delta_alphas(xywht_coder(RETINA_STDS, edge_swap=False), 2.0)
    assert a[4] == pytest.approx(HALF, rel=1e-15)
    a = xywht_delta_alphas(xywht_coder(RCNN_STDS, edge_swap=False), 5.0)
    assert a[4] == pytest.approx(HALF / 0.1, rel=1e-12)
    # with norm_factor the coder divides dt by norm_factor * pi (so does the bound)
    a = xywht_delta_alphas(xywht_coder(RETINA_STDS, norm_factor=0.5), 2.0)
    assert a[4] == pytest.approx((PI / 4) / (0.5 * PI), rel=1e-12)
    assert EDGE_SWAP_ANGLE_BOUND == PI / 4 and MIDPOINT_OFFSET_BOUND == 0.5
    with pytest.raises(ValueError):
        xywht_delta_alphas(DeltaXYWHTRBBoxCoder(angle_version="oc", edge_swap=True), 2.0)
    with pytest.raises(ValueError):
        xywht_delta_alphas(DeltaXYWHTRBBoxCoder(target_means=(0, 0, 0, 0, 0.1),
                                                angle_version="le90"), 2.0)
    with pytest.raises(ValueError):
        xywht_delta_alphas(midpoint_coder(), 2.0)


# --------------------------------------------------------------- MidpointOffsetCoder (le90)

def _midpoint_cases(rng, n=150):
    """Rotated gts whose vertices are nowhere near a tie of mmrotate's 0.1 px rule (every edge
    at least 1 px off the axes), plus the +-pi/4 +- 1e-3 cases and w < h readings."""
    g = random_boxes(rng, n, 10, 120)
    sides = np.minimum(g[:, 2], g[:, 3])
    off = sides * np.minimum(np.abs(np.sin(g[:, 4])), np.abs(np.cos(g[:, 4])))
    g = g[off > 1.0]
    hand = [[5, -4, 60, 24, t] for t in (PI / 4 + 1e-3, PI / 4 - 1e-3, -PI / 4 + 1e-3,
                                         -PI / 4 - 1e-3, 0.4, -1.1)]
    hand += [[-3, 2, 24, 60, t] for t in (PI / 4 + 1e-3, -PI / 4 - 1e-3, 0.4)]   # w < h
    g = np.concatenate([np.array(hand, np.float64), g])
    c = np_corners(g)
    hull = np.stack([c[..., 0].min(1), c[..., 1].min(1), c[..., 0].max(1), c[..., 1].max(1)], 1)
    # horizontal anchors around each hull (scale and shift within the RPN's grid)
    wh = (hull[:, 2:] - hull[:, :2]) * rng.uniform(0.6, 1.6, (len(g), 2))
    ctr = (hull[:, 2:] + hull[:, :2]) / 2 + rng.uniform(-0.3, 0.3, (len(g), 2)) * wh
    anchors = np.concatenate([ctr - wh / 2, ctr + wh / 2], 1)
    return anchors, g


def test_midpoint_encode_matches_hand_formula():
    rng = np.random.default_rng(6)
    anchors, g = _midpoint_cases(rng)
    # near-axis gts too: the hand formula follows mmrotate's 0.1 px tie rule
    near = [[0, 0, 40, 20, 1e-3], [0, 0, 40, 20, -HALF + 1e-3], [0, 0, 40, 20, HALF - 1e-3],
            [0, 0, 150, 20, 1e-3], [0, 0, 150, 20, -HALF + 1e-3], [0, 0, 40, 20, 0.0]]
    anchors = np.concatenate([anchors, [[-30, -30, 30, 30]] * len(near)])
    g = np.concatenate([g, near])
    coder = midpoint_coder()
    got = coder.encode(torch.tensor(anchors, dtype=torch.float32), rbox(g)).double().numpy()
    exp = np_midpoint_deltas(anchors.astype(np.float32), g.astype(np.float32), RPN_STDS)
    np.testing.assert_allclose(got, exp, atol=2e-5, rtol=1e-5)


def test_midpoint_offsets_bounded_by_half():
    rng = np.random.default_rng(7)
    g = random_boxes(rng, 20000, 2, 300)
    g[:50, 4] = rng.choice(EDGE_ANGLES, 50)
    anchors = np.tile([[-40.0, -40, 40, 40]], (len(g), 1))
    d = midpoint_coder().encode(torch.tensor(anchors, dtype=torch.float32), rbox(g))
    raw = d[:, 4:].double().numpy() * np.array(RPN_STDS[4:])     # before the std
    assert np.abs(raw).max() <= 0.5 + 1e-5                        # float32 rounding only
    assert np.abs(raw).max() > 0.5 - 1e-3                         # tight
    assert midpoint_offset_alphas(midpoint_coder(), 2.0) == [2.0, 2.0, 2.0, 2.0, 1.0, 1.0]
    assert np.abs(d[:, 4:].numpy()).max() <= 1.0 + 2e-5
    other = MidpointOffsetCoder(target_stds=(1, 1, 1, 1, 0.25, 1.0), angle_version="le90")
    assert midpoint_offset_alphas(other, 3.0) == [3.0] * 4 + [2.0, 0.5]
    with pytest.raises(ValueError):
        midpoint_offset_alphas(xywht_coder(RETINA_STDS), 2.0)


def test_midpoint_decode_encode_recovers_gt_as_rectangle():
    rng = np.random.default_rng(8)
    anchors, g = _midpoint_cases(rng)
    coder = midpoint_coder()
    a = torch.tensor(anchors, dtype=torch.float32)
    out = coder.decode(a, coder.encode(a, rbox(g))).tensor.double().numpy()
    assert (rect_gap(out, g) / g[:, 2:4].max(1)).max() < 1e-4
    assert (out[:, 2] >= out[:, 3]).all()                     # le90 reading


def test_midpoint_near_axis_gt_by_hand():
    """Boxes 1e-3 rad off the axes (40 x 20): within mmrotate's 0.1 px tie rule. Worked out by
    hand from the corners: at t = 1e-3 and -pi/2 + 1e-3 the vertex with the larger x (y) is not
    the top (right) one, both offsets snap to +0.5 and the decoded box is the gt's horizontal
    hull; at t = -1e-3 and pi/2 - 1e-3 it is, and the round trip is exact."""
    gts = np.array([[0, 0, 40, 20, 1e-3], [0, 0, 40, 20, -HALF + 1e-3],
                    [0, 0, 40, 20, -1e-3], [0, 0, 40, 20, HALF - 1e-3], [0, 0, 60, 30, 0.0]])
    coder = midpoint_coder()
    a = torch.tensor([[-30.0, -30, 30, 30]] * len(gts))
    d = coder.encode(a, rbox(gts)).double().numpy()
    # hull of a 40 x 20 box turned by 1e-3: 40 cos + 20 sin = 40.02, 40 sin + 20 cos = 20.04
    W, H = 40 * math.cos(1e-3) + 20 * math.sin(1e-3), 40 * math.sin(1e-3) + 20 * math.cos(1e-3)
    # top vertex x and right vertex y when they are the true ones: 20 cos - 10 sin over W, ...
    ta = (20 * math.cos(1e-3) - 10 * math.sin(1e-3)) / W
    tb = (10 * math.cos(1e-3) - 20 * math.sin(1e-3)) / H
    raw = d[:, 4:] * 0.5
    np.testing.assert_allclose(raw[0], [0.5, 0.5], atol=1e-5)        # snapped
    np.testing.assert_allclose(raw[1], [0.5, 0.5], atol=1e-5)        # snapped
    np.testing.assert_allclose(raw[2], [ta, tb], atol=1e-5)          # 0.4985, 0.4985
    np.testing.assert_allclose(raw[3], [tb, ta], atol=1e-5)          # the swapped sides
    np.testing.assert_allclose(raw[4], [0.5, 0.5], atol=1e-6)        # axis-aligned
    out = coder.decode(a, coder.encode(a, rbox(gts))).tensor.double().numpy()
    hull = np.array([[0, 0, W, H, 0.0], [0, 0, H, W, 0.0]])
    assert rect_gap(out[:2], hull).max() < 1e-3
    # hull corner (20.01, -10.02) vs the gt's (20.01, -9.98): 40 sin(1e-3) = 0.04 px, 1e-3 of
    # the long side (> the 1e-4 relative of an exact round trip)
    assert rect_gap(out[:2], gts[:2]).max() == pytest.approx(40 * math.sin(1e-3), abs=1e-4)
    assert rect_gap(out[2:], gts[2:]).max() < 1e-3


@pytest.mark.xfail(strict=True, reason="upstream bug in mmrotate 1.0.0rc1 MidpointOffsetCoder "
                   "(delta_midpointoffset_rbbox_coder.py bbox2delta, the 0.1 px vertex tie "
                   "rule): a long thin gt 1e-3 rad off the axis (150 x 20 at t = 1e-3 or "
                   "-pi/2 + 1e-3) snaps only one of da/db, and decode(encode(gt)) is a "
                   "151.4 x 0.003 sliver instead of the 150 x 20 box")
def test_midpoint_round_trip_long_thin_near_axis_box():
    gts = np.array([[0, 0, 150, 20, 1e-3], [0, 0, 150, 20, -HALF + 1e-3]])
    coder = midpoint_coder()
    a = torch.tensor([[-30.0, -30, 30, 30]] * 2)
    out = coder.decode(a, coder.encode(a, rbox(gts))).tensor.double().numpy()
    assert rect_gap(out, gts).max() < 0.5


# ---------------------------------------------------------- DistanceAnglePointCoder (le90)

def test_distance_angle_decode_matches_hand_formula():
    rng = np.random.default_rng(9)
    n = 400
    pts = rng.uniform(-200, 200, (n, 2))
    ltrb = rng.uniform(0.5, 80, (n, 4))
    ang = np.concatenate([np.array(EDGE_ANGLES), [HALF + 1e-3, -HALF - 1e-3, 2.0, -2.5, 4.0],
                          rng.uniform(-HALF, HALF, n - len(EDGE_ANGLES) - 5)])
    coder = DistanceAnglePointCoder(angle_version="le90")
    out = coder.decode(torch.tensor(pts), torch.tensor(np.concatenate([ltrb, ang[:, None]], 1)))
    out = out.numpy()
    l, t, r, b = ltrb.T
    ox, oy = (r - l) / 2, (b - t) / 2
    c, s = np.cos(ang), np.sin(ang)
    exp = np.stack([pts[:, 0] + c * ox - s * oy, pts[:, 1] + s * ox + c * oy, l + r, t + b,
                    np_wrap(ang)], 1)
    np.testing.assert_allclose(out[:, :4], exp[:, :4], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out[:, 4], exp[:, 4], atol=1e-12)
    # batched (B, N, 5) form
    out_b = coder.decode(torch.tensor(pts).reshape(2, -1, 2),
                         torch.tensor(np.concatenate([ltrb, ang[:, None]], 1)).reshape(2, -1, 5))
    np.testing.assert_allclose(out_b.reshape(-1, 5).numpy(), out, atol=1e-12)


# ----------------------------------------------------------------- UGS round trips (coders)

def _filter_inside(d, alphas, margin=0.995):
    return (np.abs(d) < np.asarray(alphas) * margin).all(1)


@pytest.mark.parametrize("stds,alpha,n", [(RETINA_STDS, 2.0, 10), (RCNN_STDS, 5.0, 5)],
                         ids=["retina", "rcnn"])
def test_ugs_round_trip_xywht(stds, alpha, n):
    rng = np.random.default_rng(10)
    N = 600
    if stds == RETINA_STDS:
        base, ratio = rng.uniform(16, 96, N), rng.choice([0.5, 1.0, 2.0], N)
        A = np.stack([rng.uniform(-50, 50, N), rng.uniform(-50, 50, N), base / np.sqrt(ratio),
                      base * np.sqrt(ratio), np.zeros(N)], 1)
    else:
        A = random_boxes(rng, N, 16, 96, -HALF, HALF)
    # gts near their anchor (any angle), plus the hand-picked edge cases
    G = A.copy()
    G[:, :2] += rng.uniform(-0.3, 0.3, (N, 2)) * A[:, 2:4].min(1, keepdims=True)
    G[:, 2:4] = A[:, 2:4] * np.exp(rng.uniform(-0.6, 0.6, (N, 2)))
    G[:, 4] = rng.uniform(-3 * PI, 3 * PI, N)
    A_e, G_e = _anchor_gt_cases()
    A, G = np.concatenate([A_e, A]), np.concatenate([G_e, G])
    coder = xywht_coder(stds)
    alphas = xywht_delta_alphas(coder, alpha)
    exp_d = np_xywht_deltas(A.astype(np.float32), G.astype(np.float32), stds)  # hand, selection
    keep = _filter_inside(exp_d, alphas)
    assert keep.sum() > 0.6 * len(A) and keep[:len(A_e)].sum() > 0.5 * len(A_e)
    assert set(np.round(G[:len(A_e)][keep[:len(A_e)], 4], 6)) == set(np.round(EDGE_ANGLES, 6))
    A, G = A[keep], G[keep]
    deltas = coder.encode(rbox(A), rbox(G)).double()
    dg = DeltaGrids(alphas, 1.0, n)
    dec = dg.decode(two_hot_logits(dg.encode(deltas)))
    np.testing.assert_allclose(dec.numpy(), deltas.numpy(), atol=1e-9)
    out = coder.decode(torch.tensor(A, dtype=F64), dec).tensor.numpy()
    rel = rect_gap(out, G) / G[:, 2:4].max(1)
    assert rel.max() < 1e-4


def test_ugs_round_trip_midpoint_offset():
    rng = np.random.default_rng(11)
    anchors, g = _midpoint_cases(rng, 300)
    coder = midpoint_coder()
    alphas = midpoint_offset_alphas(coder, 2.0)
    keep = _filter_inside(np_midpoint_deltas(anchors, g, RPN_STDS), alphas)
    assert keep.mean() > 0.8
    anchors, g = anchors[keep], g[keep]
    a = torch.tensor(anchors, dtype=torch.float32)
    deltas = coder.encode(a, rbox(g)).double()
    dg = DeltaGrids(alphas, 1.0, 10)
    dec = dg.decode(two_hot_logits(dg.encode(deltas)))
    np.testing.assert_allclose(dec.numpy(), deltas.numpy(), atol=1e-9)
    # (cv2.minAreaRect inside decode takes float32 only)
    out = coder.decode(a, dec.float()).tensor.double().numpy()
    assert (rect_gap(out, g) / g[:, 2:4].max(1)).max() < 1e-4


def test_ugs_round_trip_rotated_fcos():
    rng = np.random.default_rng(12)
    N = 500
    stride = rng.choice([8.0, 16.0, 32.0, 64.0, 128.0], N)
    w = stride * rng.uniform(1.0, 16.0, N)
    h = stride * rng.uniform(1.0, 16.0, N)
    t = np.concatenate([np.array(EDGE_ANGLES), rng.uniform(-HALF, HALF, N - len(EDGE_ANGLES))])
    ctr = rng.uniform(-500, 500, (N, 2))
    G = np.concatenate([ctr, w[:, None], h[:, None], t[:, None]], 1)
    # a location inside each gt: centre + R(t) (u w/2, v h/2), |u|, |v| <= 0.8
    u, v = rng.uniform(-0.8, 0.8, N) * w / 2, rng.uniform(-0.8, 0.8, N) * h / 2
    pts = np.stack([ctr[:, 0] + np.cos(t) * u - np.sin(t) * v,
                    ctr[:, 1] + np.sin(t) * u + np.cos(t) * v], 1)
    coder = DistanceAnglePointCoder(angle_version="le90")
    target = coder.encode(torch.tensor(pts), torch.tensor(G))         # (l, t, r, b, angle)
    # hand: distances in strides lie inside the log grid's [e^-3, e^3]
    ltrb_hand = np.stack([w / 2 + u, h / 2 + v, w / 2 - u, h / 2 - v], 1)
    np.testing.assert_allclose(target[:, :4].numpy(), ltrb_hand, rtol=1e-9, atol=1e-9)
    ins = ltrb_hand / stride[:, None]
    assert ins.min() > math.exp(-3) and ins.max() < math.exp(3)
    dist_coder = DistanceCoder(3.0, "log")
    grid = IntervalGrid(3.0, 1.0, 16)
    circ = CircularGrid(17)
    s = torch.tensor(stride)[:, None]
    d_grid = dist_coder.to_grid(target[:, :4] / s)
    d_dec = dist_coder.from_grid(grid.decode(two_hot_logits(grid.encode(d_grid)))) * s
    a_dec = circ.decode(two_hot_logits(circ.encode(target[:, 4])))
    out = coder.decode(torch.tensor(pts), torch.cat([d_dec, a_dec[:, None]], 1)).numpy()
    assert (rect_gap(out, G) / G[:, 2:4].max(1)).max() < 1e-4
