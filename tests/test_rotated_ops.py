"""The CPU versions of mmcv's CUDA-only rotated ops (``ugs.rotated_ops``) against shapely (values)
and against finite differences of shapely's numbers (gradients), and their installation behind
mmcv's and mmrotate's names (``ugs.rotated.cpu_ops``)."""
import math

import numpy as np
import pytest
import torch

from ugs import rotated_ops as ops

geometry = pytest.importorskip("shapely.geometry")
MultiPoint, Polygon = geometry.MultiPoint, geometry.Polygon


def corners(b):
    cx, cy, w, h, a = b
    c, s = math.cos(a), math.sin(a)
    return [(cx + c * x - s * y, cy + s * x + c * y) for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2),
                                                                   (-w / 2, h / 2))]


def shapely_iou(p, q):
    inter = p.intersection(q).area
    union = p.area + q.area - inter
    return inter / union if union > 0 else 0.0


def random_boxes(rng, n):
    return np.c_[rng.uniform(0, 20, (n, 2)), rng.uniform(1, 10, (n, 2)), rng.uniform(-3.5, 3.5, n)]


def test_convex_hull_against_shapely_with_collinear_and_repeated_points():
    rng = np.random.default_rng(0)
    sets = rng.uniform(0, 10, (400, 9, 2))
    sets[:50, 3:6] = sets[:50, 0:1] + np.linspace(0.2, 0.6, 3)[:, None] * (sets[:50, 1:2] - sets[:50, 0:1])  # collinear
    sets[50:100, 4] = sets[50:100, 2]                                                                        # repeated
    sets[100:110] = sets[100:110, :1]                                                                        # all equal
    hull, count = ops.convex_hull(torch.tensor(sets))
    area = ops.polygon_area(hull, count).numpy()
    want = np.array([MultiPoint(s.tolist()).convex_hull.area for s in sets])
    np.testing.assert_allclose(area, want, atol=1e-12)
    assert (area[100:110] == 0).all()


def test_diff_iou_rotated_values_and_gradient():
    rng = np.random.default_rng(1)
    b1, b2 = random_boxes(rng, 800), random_boxes(rng, 800)
    got = ops.diff_iou_rotated_2d(torch.tensor(b1)[None], torch.tensor(b2)[None])[0].numpy()
    want = np.array([shapely_iou(Polygon(corners(x)), Polygon(corners(y))) for x, y in zip(b1, b2)])
    assert (want > 0).sum() > 100
    np.testing.assert_allclose(got, want, atol=1e-12)
    # gradient: central differences of shapely's IoU, on overlapping pairs in general position
    pick = np.nonzero((want > 0.05) & (want < 0.95))[0][:10]
    x = torch.tensor(b1[pick], requires_grad=True)
    ops.diff_iou_rotated_2d(x[None], torch.tensor(b2[pick])[None]).sum().backward()
    eps = 1e-6
    for r, i in enumerate(pick):
        for k in range(5):
            up, dn = b1[i].copy(), b1[i].copy()
            up[k] += eps
            dn[k] -= eps
            fd = (shapely_iou(Polygon(corners(up)), Polygon(corners(b2[i])))
                  - shapely_iou(Polygon(corners(dn)), Polygon(corners(b2[i])))) / (2 * eps)
            assert x.grad[r, k].item() == pytest.approx(fd, abs=1e-6)


def quads(rng, n):
    """Convex quadrilaterals (rotated rectangles), half of them clockwise."""
    q = np.array([corners(b) for b in random_boxes(rng, n)])
    q[::2] = q[::2, ::-1]
    return q


def test_convex_iou_against_shapely():
    rng = np.random.default_rng(2)
    pts = rng.uniform(0, 20, (40, 9, 2))
    qs = quads(rng, 9)
    got = ops.convex_iou(torch.tensor(pts.reshape(40, 18)), torch.tensor(qs.reshape(9, 8))).numpy()
    want = np.array([[shapely_iou(MultiPoint(p.tolist()).convex_hull, Polygon(q.tolist())) for q in qs] for p in pts])
    assert (want > 0).sum() > 50
    np.testing.assert_allclose(got, want, atol=1e-12)


def shapely_giou(p9, q4):
    hull, quad = MultiPoint(p9.tolist()).convex_hull, Polygon(q4.tolist())
    inter = hull.intersection(quad).area
    union = hull.area + quad.area - inter
    enclose = MultiPoint(np.r_[p9, q4].tolist()).convex_hull.area
    return inter / union - (enclose - union) / enclose


def test_convex_giou_values_and_its_gradient_against_finite_differences():
    rng = np.random.default_rng(3)
    qs = quads(rng, 12)
    pts = np.array([q.mean(0) + rng.normal(0, 3, (9, 2)) for q in qs])        # near their polygon
    giou, grad = ops.convex_giou(torch.tensor(pts.reshape(12, 18)), torch.tensor(qs.reshape(12, 8)))
    want = np.array([shapely_giou(p, q) for p, q in zip(pts, qs)])
    np.testing.assert_allclose(giou.numpy(), want, atol=1e-12)
    eps = 1e-6
    for i in range(12):
        for k in range(18):
            up, dn = pts[i].reshape(18).copy(), pts[i].reshape(18).copy()
            up[k] += eps
            dn[k] -= eps
            fd = (shapely_giou(up.reshape(9, 2), qs[i]) - shapely_giou(dn.reshape(9, 2), qs[i])) / (2 * eps)
            assert grad[i, k].item() == pytest.approx(fd, abs=1e-5)


def test_min_area_polygons_against_shapely():
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 10, (200, 9, 2)) * np.array([1.0, 0.3]) @ np.array([[0.8, 0.6], [-0.6, 0.8]])
    got = ops.min_area_polygons(torch.tensor(pts.reshape(200, 18))).numpy().reshape(200, 4, 2)
    for p, r in zip(pts, got):
        rect = Polygon(r.tolist())
        assert rect.area == pytest.approx(MultiPoint(p.tolist()).minimum_rotated_rectangle.area, abs=1e-9)
        assert rect.buffer(1e-9).contains(MultiPoint(p.tolist()))               # every point inside
        sides = np.linalg.norm(np.roll(r, -1, 0) - r, axis=1)
        assert sides[0] == pytest.approx(sides[2], abs=1e-9) and sides[1] == pytest.approx(sides[3], abs=1e-9)


def test_chamfer_distance_by_brute_force():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 7, 2)), rng.normal(size=(2, 5, 2))
    d1, d2, i1, i2 = ops.chamfer_distance(torch.tensor(a), torch.tensor(b))
    for n in range(2):
        full = ((a[n][:, None] - b[n][None]) ** 2).sum(-1)
        np.testing.assert_allclose(d1[n].numpy(), full.min(1), atol=1e-12)
        np.testing.assert_allclose(d2[n].numpy(), full.min(0), atol=1e-12)
        assert i1[n].tolist() == full.argmin(1).tolist() and i2[n].tolist() == full.argmin(0).tolist()
        assert i1.dtype == torch.int32


def test_install_routes_cpu_calls_and_mmrotate_losses_run():
    pytest.importorskip("mmrotate")
    from ugs.rotated.cpu_ops import BINDINGS, install, installed

    done = install()
    assert installed() and done == {k: list(v) for k, v in BINDINGS.items()}
    install()                                                       # idempotent
    import mmcv.ops
    from mmrotate.models.losses import ConvexGIoULoss, RotatedIoULoss

    b = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.3]])
    assert mmcv.ops.diff_iou_rotated_2d(b[None], b[None]).item() == pytest.approx(1.0, abs=1e-6)
    pred = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.3], [20.0, 20.0, 6.0, 6.0, 0.1]], requires_grad=True)
    target = torch.tensor([[10.5, 10.0, 8.0, 4.0, 0.35], [20.0, 21.0, 6.0, 5.0, 0.0]])
    loss = RotatedIoULoss(mode="linear")(pred, target)
    loss.backward()
    want = 1 - np.mean([shapely_iou(Polygon(corners(p)), Polygon(corners(t)))
                        for p, t in zip(pred.detach().double().numpy(), target.double().numpy())])
    assert loss.item() == pytest.approx(want, abs=1e-5) and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # ConvexGIoULoss: mean of 1 - GIoU, and its backward is mmcv's convention: -grad / N
    pts = (torch.rand(3, 18, dtype=torch.float64) * 8).requires_grad_(True)
    poly = torch.tensor([[0.0, 0, 8, 0, 8, 8, 0, 8]] * 3, dtype=torch.float64)
    lg = ConvexGIoULoss()(pts, poly)
    lg.backward()
    giou, grad = ops.convex_giou(pts.detach(), poly)
    assert lg.item() == pytest.approx((1 - giou).mean().item(), abs=1e-9)
    torch.testing.assert_close(pts.grad, -grad / 3)
