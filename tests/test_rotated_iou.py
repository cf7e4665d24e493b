"""Rotated IoU (``ugs.evaluation.rotated_iou``) against shapely's polygon clipping, and on cases
worked out by hand: identical, nested, touching, disjoint and degenerate boxes (where mmcv's CPU
kernel is known to err), invariance to a common rotation, and the candidate-pair sweep against
the dense hull test."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ugs.evaluation.rotated_iou import (candidate_pairs, rbox_corners, rbox_hulls, rotated_iou_matrix,
                                        rotated_iou_pairs)

shapely_geometry = pytest.importorskip("shapely.geometry")


def shapely_iou(b1, b2):
    p1, p2 = (shapely_geometry.Polygon(c) for c in rbox_corners(np.array([b1, b2])))
    inter = p1.intersection(p2).area
    union = p1.area + p2.area - inter
    return inter / union if union > 0 else 0.0


def random_boxes(rng, n, span=40.0):
    return np.c_[rng.uniform(0, span, (n, 2)), rng.uniform(0.5, 20, (n, 2)), rng.uniform(-4, 4, n)]


def test_agrees_with_shapely_on_random_pairs():
    rng = np.random.default_rng(0)
    b1, b2 = random_boxes(rng, 2000), random_boxes(rng, 2000)
    want = np.array([shapely_iou(a, b) for a, b in zip(b1, b2)])
    got = rotated_iou_pairs(b1, b2)
    assert (want > 0).sum() > 300                         # the fixture overlaps often enough
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_hand_cases():
    # identical boxes: 1 (mmcv's CPU kernel has returned wrong values here)
    same = np.array([[10.0, 10.0, 8.0, 3.0, a] for a in (0.0, 0.3, math.pi / 4, math.pi / 2, -1.2)])
    np.testing.assert_allclose(rotated_iou_pairs(same, same), 1.0, atol=1e-12)
    # nested: a 4 x 2 box inside a 10 x 10 one, any angles: 8 / 100
    assert rotated_iou_pairs([[0, 0, 10, 10, 0.3]], [[0, 0, 4, 2, 1.0]])[0] == pytest.approx(0.08, abs=1e-12)
    # touching along an edge, and at a corner: 0
    assert rotated_iou_pairs([[0, 0, 2, 2, 0]], [[2, 0, 2, 2, 0]])[0] == 0.0
    assert rotated_iou_pairs([[0, 0, 2, 2, 0]], [[2, 2, 2, 2, 0]])[0] == 0.0
    # half overlap of two unit squares shifted by 0.5: inter 0.5, union 1.5
    assert rotated_iou_pairs([[0, 0, 1, 1, 0]], [[0.5, 0, 1, 1, 0]])[0] == pytest.approx(1 / 3, abs=1e-12)
    # a square and the same square turned 45 degrees about its centre: inter = the regular
    # octagon of the square with its corners cut, area 2 (sqrt 2 - 1) s^2 ... for side s = 2:
    # octagon area 8 (sqrt 2 - 1); union 8 - 8 (sqrt 2 - 1)
    inter = 8 * (math.sqrt(2) - 1)
    assert rotated_iou_pairs([[0, 0, 2, 2, 0]], [[0, 0, 2, 2, math.pi / 4]])[0] == pytest.approx(inter / (8 - inter), abs=1e-12)
    # degenerate (a zero side): 0, also with itself
    assert rotated_iou_pairs([[0, 0, 0, 2, 0]], [[0, 0, 0, 2, 0]])[0] == 0.0
    assert rotated_iou_pairs([[0, 0, 4, 0, 0.2]], [[0, 0, 4, 4, 0.2]])[0] == 0.0
    # disjoint
    assert rotated_iou_pairs([[0, 0, 2, 2, 0.5]], [[50, 50, 2, 2, 0.5]])[0] == 0.0


def test_angle_periodicity_and_edge_swap_give_the_same_box():
    b = np.array([[5.0, 7.0, 9.0, 4.0, 0.4]])
    for other in ([5.0, 7.0, 9.0, 4.0, 0.4 + math.pi], [5.0, 7.0, 4.0, 9.0, 0.4 + math.pi / 2],
                  [5.0, 7.0, 4.0, 9.0, 0.4 - math.pi / 2]):
        assert rotated_iou_pairs(b, [other])[0] == pytest.approx(1.0, abs=1e-12)


def test_candidate_pairs_equal_the_dense_hull_test_and_the_matrix_uses_them():
    rng = np.random.default_rng(3)
    b1, b2 = random_boxes(rng, 300, span=400), random_boxes(rng, 200, span=400)
    h1, h2 = rbox_hulls(b1), rbox_hulls(b2)
    dense = ((np.minimum(h1[:, None, 2], h2[None, :, 2]) > np.maximum(h1[:, None, 0], h2[None, :, 0]))
             & (np.minimum(h1[:, None, 3], h2[None, :, 3]) > np.maximum(h1[:, None, 1], h2[None, :, 1])))
    i, j = candidate_pairs(b1, b2)
    di, dj = np.nonzero(dense)
    assert np.array_equal(i, di) and np.array_equal(j, dj) and i.size > 20
    m = rotated_iou_matrix(b1, b2)
    want = np.array([[shapely_iou(a, b) for b in b2] for a in b1])
    np.testing.assert_allclose(m, want, atol=1e-12)


box = st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(0.5, 30), st.floats(0.5, 30), st.floats(-7, 7))


@settings(max_examples=1000, deadline=None)
@given(box, box, st.floats(-7, 7), st.floats(-100, 100), st.floats(-100, 100))
def test_properties(b1, b2, turn, dx, dy):
    a, b = np.array([b1]), np.array([b2])
    iou = rotated_iou_pairs(a, b)[0]
    assert 0.0 <= iou <= 1.0
    assert iou == pytest.approx(rotated_iou_pairs(b, a)[0], abs=1e-9)                     # symmetric
    assert rotated_iou_pairs(a, a)[0] == pytest.approx(1.0, abs=1e-9)                      # 1 on itself

    def moved(x):                     # rotate both about the origin by `turn`, then shift
        c, s = math.cos(turn), math.sin(turn)
        return np.array([[c * x[0, 0] - s * x[0, 1] + dx, s * x[0, 0] + c * x[0, 1] + dy, x[0, 2], x[0, 3],
                          x[0, 4] + turn]])
    assert rotated_iou_pairs(moved(a), moved(b))[0] == pytest.approx(iou, abs=1e-9)       # rigid invariance
