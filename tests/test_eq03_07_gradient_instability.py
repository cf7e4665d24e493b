"""Eq. 3, 4, 6, 7: curvature of L2 and IoU box losses, checked by sympy and by autograd."""
import math

import pytest
import sympy as sp
import torch

from ugs import instability as ins

D = torch.float64


def _second_derivative(fn, x0):
    x = torch.tensor(x0, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
    (h,) = torch.autograd.grad(g, x)
    return g.item(), h.item()


@pytest.mark.parametrize("w_a,x_hat", [(4.0, 10.3), (16.0, 3.0), (128.0, -40.0)])
def test_eq3_l2_centre_hessian_is_2_over_anchor_squared(w_a, x_hat):
    # by hand: L = ((x - x_hat)/w_a)^2 -> d2L/dx_hat^2 = 2 / w_a^2 (w_a = 4: 0.125)
    x, x_a = torch.tensor(12.0, dtype=D), torch.tensor(11.0, dtype=D)
    _, h = _second_derivative(lambda xh: ins.l2_offset_loss(xh, x, x_a, torch.tensor(w_a, dtype=D)), x_hat)
    assert h == pytest.approx(2 / w_a ** 2, rel=1e-12)
    assert ins.l2_center_hessian(w_a) == pytest.approx(2 / w_a ** 2)


def test_eq3_sympy():
    x, xh, xa, wa = sp.symbols("x xhat x_a w_a", positive=True)
    L = ((x - xa) / wa - (xh - xa) / wa) ** 2
    assert sp.simplify(sp.diff(L, xh, 2) - 2 / wa ** 2) == 0


def test_eq4_l2_size_hessian_holds_at_the_minimum_only():
    # d2/dw_hat2 (log w - log w_hat)^2 = 2 (1 + log(w / w_hat)) / w_hat^2
    w, wh, wa = sp.symbols("w what w_a", positive=True)
    L = (sp.log(w / wa) - sp.log(wh / wa)) ** 2
    h = sp.diff(L, wh, 2)
    assert sp.simplify(sp.expand_log(h - 2 * (1 + sp.log(w) - sp.log(wh)) / wh ** 2, force=True)) == 0
    assert sp.simplify(h.subs(wh, w) - 2 / w ** 2) == 0          # Eq. 4 at w_hat = w
    # autograd at w = 20: at w_hat = 20 Eq. 4 holds (2/400 = 0.005); at w_hat = 10 it does not:
    # derived 2 (1 + ln 2) / 100 = 0.0338629, printed 2 / 100 = 0.02
    w0, wa0 = torch.tensor(20.0, dtype=D), torch.tensor(16.0, dtype=D)
    _, h_min = _second_derivative(lambda v: ins.l2_log_size_loss(v, w0, wa0), 20.0)
    _, h_off = _second_derivative(lambda v: ins.l2_log_size_loss(v, w0, wa0), 10.0)
    assert h_min == pytest.approx(ins.l2_size_hessian(20.0), rel=1e-12) == pytest.approx(0.005)
    assert h_off == pytest.approx(0.03386294361119891, rel=1e-12)
    assert float(ins.l2_size_hessian_derived(10.0, 20.0)) == pytest.approx(h_off, rel=1e-12)
    assert ins.l2_size_hessian(10.0) == pytest.approx(0.02) != pytest.approx(h_off)


def _iou_sympy():
    w, d, xh = sp.symbols("w d xhat", positive=True)
    x = xh + d                                      # x > x_hat, so |x - x_hat| = d
    L = -sp.log(w * (w - (x - xh)) / (2 * w ** 2 - w * (w - (x - xh))))
    xs = sp.Symbol("xs")
    Lx = L.subs(xh, xs)                              # differentiate in x_hat with x fixed
    Lx = -sp.log(w * (w - (x - xs)) / (2 * w ** 2 - w * (w - (x - xs))))
    g = sp.simplify(sp.diff(Lx, xs).subs(xs, xh))
    h = sp.simplify(sp.diff(Lx, xs, 2).subs(xs, xh))
    return w, d, g, h


def test_eq6_iou_gradient_derived_and_printed():
    w, d, g, h = _iou_sympy()
    assert sp.simplify(g + 2 * w / (w ** 2 - d ** 2)) == 0        # dL/dx_hat = -2w/(w^2-d^2)
    assert sp.simplify(sp.Abs(g) - 2 / (w ** 2 - d ** 2)) != 0   # the printed Eq. 6 is not it
    # autograd, w = 8, d = 2 (x = 5, x_hat = 3): |dL/dx_hat| = 16 / 60 = 0.266667
    gx, _ = _second_derivative(lambda xh: ins.iou_loss_shifted_squares(xh, torch.tensor(5.0, dtype=D),
                                                                     torch.tensor(8.0, dtype=D)), 3.0)
    assert gx == pytest.approx(-16 / 60, rel=1e-12)             # negative: moving right helps
    assert ins.iou_loss_gradient_derived(8.0, 2.0) == pytest.approx(16 / 60)
    assert ins.iou_loss_gradient(8.0, 2.0) == pytest.approx(2 / 60)   # printed: off by w


def test_eq7_iou_hessian_derived_and_printed():
    w, d, g, h = _iou_sympy()
    assert sp.simplify(h - 4 * w * d / (w ** 2 - d ** 2) ** 2) == 0
    # autograd, w = 8, d = 2: 4*8*2 / 60^2 = 0.0177778; printed 4*8/3600 = 0.0088889
    _, hx = _second_derivative(lambda xh: ins.iou_loss_shifted_squares(xh, torch.tensor(5.0, dtype=D),
                                                                     torch.tensor(8.0, dtype=D)), 3.0)
    assert hx == pytest.approx(64 / 3600, rel=1e-12)
    assert ins.iou_loss_hessian_derived(8.0, 2.0) == pytest.approx(64 / 3600)
    assert ins.iou_loss_hessian(8.0, 2.0) == pytest.approx(32 / 3600)
    # printed Eq. 7 is not the derivative of printed Eq. 6 either: d/dx_hat of
    # 2 sign(x - x_hat)/(w^2 - d^2) with d = x - x_hat > 0 is -4d/(w^2 - d^2)^2
    xs = sp.Symbol("xs")
    x = sp.Symbol("x")
    printed6 = 2 / (w ** 2 - (x - xs) ** 2)
    assert sp.simplify(sp.diff(printed6, xs).subs(x, xs + d) + 4 * d / (w ** 2 - d ** 2) ** 2) == 0


def test_eq6_eq7_scaling_with_object_size_at_fixed_pixel_error():
    # what survives: for d = 1 px, gradient ~ 2/w and curvature ~ 4d/w^3 as w grows
    ws = torch.tensor([8.0, 16.0, 32.0, 64.0, 128.0], dtype=D)
    g = ins.iou_loss_gradient_derived(ws, 1.0)
    h = ins.iou_loss_hessian_derived(ws, 1.0)
    assert bool((g[1:] < g[:-1]).all()) and bool((h[1:] < h[:-1]).all())
    assert (g[-1] * 128 / 2).item() == pytest.approx(1.0, rel=1e-3)
    assert (h[-1] * 128 ** 3 / 4).item() == pytest.approx(1.0, rel=1e-3)
