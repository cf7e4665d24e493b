# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Gradient instability of box regression on small objects (UGS, Sec. 3.1)
#
# Sec. 3.1 of *Uncertainty-Aware Gradient Stabilization for Small Object Detection*
# (Sun et al., ICCV 2025) explains why box regression is unstable on small objects. The
# argument rests on four closed forms: the curvature of the L2 loss on the centre offset
# (Eq. 3) and on the log-size (Eq. 4), and the gradient (Eq. 6) and curvature (Eq. 7) of the
# IoU loss. Sec. 3.2.1 then says the classification-based objective (Eq. 10) fixes this
# because its gradient with respect to the logits (Eq. 11) lies in [0, 1] whatever the object
# size.
#
# This notebook re-derives each closed form from the loss it is stated for, with `sympy`,
# and checks every result against `torch.autograd` in float64. It shows:
#
# * **Eq. 3 is exact**: the L2 curvature of the centre offset is `2 / w_a^2`.
# * **Eq. 4 holds only at the minimum** `w_hat = w`; in general the curvature is
#   `2 (1 + log(w / w_hat)) / w_hat^2`.
# * **Eq. 6 and Eq. 7 as printed are not the derivatives of Eq. 5**: wrong units, wrong
#   sign, and Eq. 7 is not the derivative of Eq. 6. The derivatives of Eq. 5 still give the
#   paper's conclusion (gradient ~ 1/w, curvature ~ 1/w^3 for a fixed pixel error).
# * A **size sweep**: what the last layer receives for a 2-pixel error, as the object shrinks
#   from 256 to 4 pixels, under L2, Smooth-L1, IoU and the classification objective.
#
# The equations live in `ugs/instability.py` (printed forms plus `*_derived` twins),
# `ugs/grid.py` (Eq. 8-9) and `ugs/localization.py` (Eq. 10-11); this notebook is their
# derivation and their test.

# %%
# Make the repository root importable when the kit is not pip-installed
# (the notebook runs from notebooks/ or from the repository root).
import pathlib
import sys

try:
    import ugs  # noqa: F401
except ImportError:
    for _candidate in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
        if (_candidate / "ugs" / "__init__.py").is_file():
            sys.path.insert(0, str(_candidate))
            break
    import ugs  # noqa: F401

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch
from torch.autograd.functional import hessian

from ugs.grid import IntervalGrid, interval_grid_values
from ugs.instability import (
    iou_loss_gradient,
    iou_loss_gradient_derived,
    iou_loss_hessian,
    iou_loss_hessian_derived,
    iou_loss_shifted_squares,
    l2_center_hessian,
    l2_log_size_loss,
    l2_offset_loss,
    l2_size_hessian,
    l2_size_hessian_derived,
)
from ugs.localization import localization_ce

torch.set_num_threads(1)  # every tensor here is tiny; one thread is enough
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters
#
# Every knob is in the next cell (papermill's `parameters` cell). This notebook is pure
# mathematics on a few hundred scalars, so the *quick* and the *paper* profiles are the
# same: there is nothing to shorten.

# %% tags=["parameters"]
output_dir = "outputs/01_gradient_instability"  # figures are written here (created if missing)
sizes_px = [4.0, 256.0]  # [min, max] object size w in pixels for the size sweep (min > pixel_error)
n_sizes = 200  # number of log-spaced sizes in the sweep
pixel_error = 2.0  # fixed centre displacement |x - x_hat| in pixels used in the size sweep
smooth_l1_beta = 1.0 / 9  # Smooth-L1 beta: mmdetection's AnchorHead/RPN default for Faster R-CNN
grid_alpha = 5.0  # Eq. 9 range [-alpha, alpha] of the classification objective (Table 7, R-CNN best)
grid_beta = 1.0  # Eq. 9 IN modulator beta (Table 7, R-CNN best)
grid_n = 5  # Eq. 9 number of intervals n; the grid has n + 1 points (Table 7, R-CNN best)
sharp_pred_eps = 0.02  # smoothing mass of the "confident" CE prediction in the sweep
seed = 0  # seeds the random boxes of the autograd spot checks

# %%
output_path = pathlib.Path(output_dir)
output_path.mkdir(parents=True, exist_ok=True)
torch.manual_seed(seed)
rng = torch.Generator().manual_seed(seed)
assert 0 < pixel_error < sizes_px[0] < sizes_px[1], "need 0 < pixel_error < min size < max size"
DT = torch.float64  # every autograd check runs in float64


def fmt(v, digits=5):
    """Round a number for printing so that the text is identical on every machine."""
    v = float(v)
    if v == 0.0:
        return "0"
    return f"{v:.{digits}g}"


def print_table(header, rows, digits=5):
    """Print rows of numbers as a fixed-width text table."""
    cells = [[c if isinstance(c, str) else fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(wd) for h, wd in zip(header, widths)))
    for r in cells:
        print("  ".join(c.rjust(wd) for c, wd in zip(r, widths)))


def scalar_hessian(f, at):
    """d^2 f / dz^2 at the float ``at`` (float64 autograd)."""
    return float(hessian(f, torch.tensor(at, dtype=DT)))


def scalar_grad(f, at):
    """df / dz at the float ``at`` (float64 autograd)."""
    z = torch.tensor(at, dtype=DT, requires_grad=True)
    (g,) = torch.autograd.grad(f(z), z)
    return float(g)


# %% [markdown]
# ## 1 · L2 on the centre offset (Eq. 1-3)
#
# Anchor-based detectors regress offsets normalised by the anchor (Eq. 1):
# `T_x = (x - x_a) / w_a` for the ground truth and `T_hat_x = (x_hat - x_a) / w_a` for the
# prediction, with the L2 loss `(T_x - T_hat_x)^2` (Eq. 2). We differentiate twice with
# respect to the predicted pixel coordinate `x_hat`. Sizes are positive symbols,
# coordinates real.

# %%
# NBVAL_CHECK_OUTPUT
x, x_hat, x_a = sp.symbols("x x_hat x_a", real=True)
w_a = sp.symbols("w_a", positive=True)

T_x = (x - x_a) / w_a
T_hat_x = (x_hat - x_a) / w_a
L2_center = (T_x - T_hat_x) ** 2
grad_center = sp.simplify(sp.diff(L2_center, x_hat))
H_center = sp.simplify(sp.diff(L2_center, x_hat, 2))
print("dL2/dx_hat     =", sp.sstr(sp.factor(grad_center)))
print("d2L2/dx_hat2   =", sp.sstr(H_center))
print("equals Eq. 3 (2/w_a^2):", sp.simplify(H_center - 2 / w_a**2) == 0)
assert sp.simplify(H_center - 2 / w_a**2) == 0

# %% [markdown]
# The loss is quadratic in `x_hat`, so the curvature is the same everywhere and Eq. 3 is
# exact. Its gradient, `2 (x_hat - x) / w_a^2`, is `2 e / w_a^2` for a pixel error `e`: the
# same 2-pixel miss is penalised 64 times harder on an 8-pixel anchor than on a 64-pixel one.
#
# Autograd check on a few concrete boxes (`x`, `x_a`, `w_a` in pixels, evaluated at `x_hat`),
# against `ugs.instability.l2_center_hessian`:

# %%
# NBVAL_CHECK_OUTPUT
boxes_center = [  # (x, x_a, w_a, x_hat)
    (10.0, 8.0, 4.0, 9.0),
    (100.0, 96.0, 16.0, 97.5),
    (300.0, 280.0, 64.0, 290.0),
    (700.0, 650.0, 256.0, 600.0),
]
rows = []
for bx, bxa, bwa, bxh in boxes_center:
    auto = scalar_hessian(
        lambda z: l2_offset_loss(z, torch.tensor(bx, dtype=DT), torch.tensor(bxa, dtype=DT),
                                 torch.tensor(bwa, dtype=DT)), bxh)
    closed = l2_center_hessian(bwa)
    symb = float(H_center.subs(w_a, bwa))
    assert np.isclose(auto, closed, rtol=1e-12, atol=0), (auto, closed)
    assert np.isclose(symb, closed, rtol=1e-12, atol=0)
    rows.append((bwa, bxh, closed, auto))
print_table(["w_a", "x_hat", "Eq.3 2/w_a^2", "autograd"], rows)

# %%
# Spot check on random boxes as well (rtol 1e-10, float64).
for _ in range(20):
    bwa = float(torch.empty(1, dtype=DT).uniform_(2.0, 512.0, generator=rng))
    bx, bxa, bxh = (float(v) for v in torch.empty(3, dtype=DT).uniform_(0.0, 1000.0, generator=rng))
    auto = scalar_hessian(
        lambda z: l2_offset_loss(z, torch.tensor(bx, dtype=DT), torch.tensor(bxa, dtype=DT),
                                 torch.tensor(bwa, dtype=DT)), bxh)
    assert np.isclose(auto, l2_center_hessian(bwa), rtol=1e-10, atol=0)
print("Eq. 3 matches autograd on 20 random boxes")

# %% [markdown]
# ## 2 · L2 on the log-size (Eq. 4)
#
# For the size, Eq. 1 regresses `T_w = log(w / w_a)` with prediction
# `T_hat_w = log(w_hat / w_a)`. Eq. 4 prints the curvature as `2 / w_hat^2`. Differentiating
# `(log(w / w_a) - log(w_hat / w_a))^2` twice in `w_hat` gives one more term:

# %%
# NBVAL_CHECK_OUTPUT
w, w_hat = sp.symbols("w w_hat", positive=True)

L2_size = (sp.log(w / w_a) - sp.log(w_hat / w_a)) ** 2
H_size = sp.factor(sp.expand_log(sp.diff(L2_size, w_hat, 2), force=True))
H_size_expected = 2 * (1 + sp.log(w / w_hat)) / w_hat**2
eq4_printed = 2 / w_hat**2

print("d2L2/dw_hat2             =", sp.sstr(H_size))
print("= 2(1 + log(w/w_hat))/w_hat^2:",
      sp.simplify(sp.expand_log(H_size - H_size_expected, force=True)) == 0)
print("equals Eq. 4 for all w_hat:", sp.simplify(sp.expand_log(H_size - eq4_printed, force=True)) == 0)
print("at the minimum w_hat = w  =", sp.sstr(sp.simplify(H_size.subs(w_hat, w))))
print("Hessian == 0 at w_hat     =", sp.sstr(sp.solve(sp.Eq(H_size, 0), w_hat)))
assert sp.simplify(sp.expand_log(H_size - H_size_expected, force=True)) == 0
assert sp.simplify(H_size.subs(w_hat, w) - eq4_printed.subs(w_hat, w)) == 0

# %% [markdown]
# So Eq. 4 is the curvature **at the minimum** `w_hat = w`, where the log term vanishes;
# it does not depend on the anchor. Away from the minimum the curvature shrinks for
# `w_hat > w` and even turns negative beyond `w_hat = e * w` (the L2 on log-sizes is not
# convex in `w_hat`). The paper's reading survives: near convergence, the curvature of the
# size loss is `2 / w^2`, large for small objects.
#
# Both closed forms against autograd (`l2_size_hessian` is the printed Eq. 4,
# `l2_size_hessian_derived` the full second derivative):

# %%
# NBVAL_CHECK_OUTPUT
boxes_size = [  # (w, w_hat, w_a)
    (8.0, 8.0, 6.0),
    (8.0, 10.0, 6.0),
    (32.0, 24.0, 32.0),
    (128.0, 100.0, 90.0),
    (16.0, 50.0, 16.0),
]
rows = []
for bw, bwh, bwa in boxes_size:
    auto = scalar_hessian(
        lambda z: l2_log_size_loss(z, torch.tensor(bw, dtype=DT), torch.tensor(bwa, dtype=DT)), bwh)
    printed = l2_size_hessian(bwh)
    derived = float(l2_size_hessian_derived(torch.tensor(bwh, dtype=DT), torch.tensor(bw, dtype=DT)))
    symb = float(H_size.subs({w: bw, w_hat: bwh}))
    assert np.isclose(auto, derived, rtol=1e-10, atol=1e-15), (auto, derived)
    assert np.isclose(symb, derived, rtol=1e-10, atol=1e-15)
    assert np.isclose(auto, printed, rtol=1e-10) == (bw == bwh)  # Eq. 4 only at the minimum
    rows.append((bw, bwh, printed, derived, auto))
print_table(["w", "w_hat", "Eq.4 printed", "derived", "autograd"], rows)

# %% [markdown]
# ## 3 · The IoU loss (Eq. 5-7)
#
# Following Xu et al. (2021), Sec. 3.1 takes two `w x w` squares, aligned, whose centres
# differ by `d = |x - x_hat|` along `x` (`0 < d < w`). The intersection is `I = w (w - d)`,
# the union `U = 2 w^2 - I = w (w + d)`, and Eq. 5 is `L = -ln(I / U)`. We take
# `x > x_hat` (prediction left of the target), write the loss in `x_hat`, differentiate,
# then put `x = x_hat + d`.

# %%
# NBVAL_CHECK_OUTPUT
d, k = sp.symbols("d k", positive=True)

shift = x - x_hat  # = d > 0 on this branch
inter = w * (w - shift)
union = 2 * w**2 - inter
L_iou = -sp.log(inter / union)

on_branch = {x: x_hat + d}
g_iou = sp.factor(sp.simplify(sp.diff(L_iou, x_hat).subs(on_branch)))
H_iou = sp.factor(sp.simplify(sp.diff(L_iou, x_hat, 2).subs(on_branch)))
print("U                 =", sp.sstr(sp.factor(union.subs(on_branch))))
print("dL/dx_hat         =", sp.sstr(g_iou))
print("d2L/dx_hat2       =", sp.sstr(H_iou))

g_iou_expected = -2 * w / (w**2 - d**2)
H_iou_expected = 4 * w * d / (w**2 - d**2) ** 2
assert sp.simplify(g_iou - g_iou_expected) == 0
assert sp.simplify(H_iou - H_iou_expected) == 0
print("= -2w/(w^2-d^2):", sp.simplify(g_iou - g_iou_expected) == 0,
      "  = 4wd/(w^2-d^2)^2:", sp.simplify(H_iou - H_iou_expected) == 0)

# %% [markdown]
# The printed equations are Eq. 6, `2 / (w^2 - d^2) * sign(x - x_hat)`, and Eq. 7,
# `4 w / (w^2 - d^2)^2`. Three independent checks say they are not the derivatives of Eq. 5:
#
# 1. **Units.** The loss is dimensionless and `x_hat` is a length, so a gradient must scale
#    as 1/length and a curvature as 1/length^2. Scaling every length by `k` shows the power
#    of `k` each expression carries.
# 2. **Sign.** Moving `x_hat` towards `x` lowers the loss, so for `x > x_hat` the gradient is
#    negative; the printed Eq. 6 is positive there.
# 3. **Consistency.** The printed Eq. 7 should be the `x_hat`-derivative of the printed
#    Eq. 6; it is not.

# %%
# NBVAL_CHECK_OUTPUT
eq6_printed = 2 / (w**2 - d**2)  # times sign(x - x_hat) = +1 on this branch
eq7_printed = 4 * w / (w**2 - d**2) ** 2


def length_power(expr):
    """Exponent p such that expr(k*w, k*d) = k**p * expr(w, d)."""
    ratio = sp.simplify(expr.subs({w: k * w, d: k * d}, simultaneous=True) / expr)
    return sp.simplify(sp.expand_log(sp.log(ratio), force=True) / sp.log(k))


print("1. units (power of length; must be -1 for a gradient, -2 for a curvature)")
print_table(["expression", "power"], [
    ["printed Eq. 6", sp.sstr(length_power(eq6_printed))],
    ["derived dL/dx_hat", sp.sstr(length_power(g_iou))],
    ["printed Eq. 7", sp.sstr(length_power(eq7_printed))],
    ["derived d2L/dx_hat2", sp.sstr(length_power(H_iou))],
])
assert length_power(g_iou) == -1 and length_power(H_iou) == -2
assert length_power(eq6_printed) == -2 and length_power(eq7_printed) == -3

print("\n2. sign for x > x_hat: printed Eq. 6 is", "positive" if eq6_printed.subs({w: 3, d: 1}) > 0 else "negative",
      "| derived gradient is", "positive" if g_iou.subs({w: 3, d: 1}) > 0 else "negative")
assert eq6_printed.subs({w: 3, d: 1}) > 0 > g_iou.subs({w: 3, d: 1})

eq6_as_function = 2 / (w**2 - (x - x_hat) ** 2)
d_eq6 = sp.factor(sp.simplify(sp.diff(eq6_as_function, x_hat).subs(on_branch)))
print("\n3. d(printed Eq. 6)/dx_hat =", sp.sstr(d_eq6))
print("   equals printed Eq. 7:", sp.simplify(d_eq6 - eq7_printed) == 0)
assert sp.simplify(d_eq6 - eq7_printed) != 0

print("\nrelations: printed Eq. 6 = |derived gradient| / w:", sp.simplify(eq6_printed - (-g_iou) / w) == 0,
      "| printed Eq. 7 = derived curvature / d:", sp.simplify(eq7_printed - H_iou / d) == 0)

# %% [markdown]
# **What survives.** The sentence after Eq. 7 says "the gradient scales inversely with `w`
# and the Hessian with `w^3`". For a fixed pixel error `d` (a detector's residual error is a
# few pixels whatever the object size) and `d << w`, the derived forms give exactly that:
# `|dL/dx_hat| -> 2/w` and `d2L/dx_hat2 -> 4d/w^3`. The printed Eq. 6 instead behaves as
# `2/w^2`, which contradicts the paper's own sentence. Leading terms as `w -> oo` at fixed
# `d`:

# %%
# NBVAL_CHECK_OUTPUT
lead = [
    ("|derived gradient|", -g_iou, 1),
    ("derived curvature", H_iou, 3),
    ("printed Eq. 6", eq6_printed, 2),
    ("printed Eq. 7", eq7_printed, 3),
]
rows = []
for name, expr, p in lead:
    c = sp.limit(expr * w**p, w, sp.oo)
    rows.append([name, f"{sp.sstr(c)} / " + ("w" if p == 1 else f"w^{p}")])
print_table(["expression", "leading term"], rows)
assert sp.limit(-g_iou * w, w, sp.oo) == 2
assert sp.simplify(sp.limit(H_iou * w**3, w, sp.oo) - 4 * d) == 0

# %% [markdown]
# One more property of this loss matters for stability: near the target it behaves like
# `2 d / w`, an L1-shaped "V". The gradient magnitude tends to `2 / w`, not to zero, as the
# prediction reaches the ground truth, and it flips sign across `x_hat = x`; the curvature
# `4 w d / (w^2 - d^2)^2` vanishes on both sides and all the bending sits in the kink. A
# fixed learning rate therefore makes steps of size `~ lr * 2 / w` around the target: the
# smaller the object, the larger the oscillation.
#
# Numerical check of the derived forms (and of the `ugs.instability` closed forms) against
# autograd on `iou_loss_shifted_squares`. Gradients are signed, for `x > x_hat`:

# %%
# NBVAL_CHECK_OUTPUT
cases_iou = [(4.0, 2.0), (8.0, 2.0), (16.0, 2.0), (64.0, 2.0), (256.0, 2.0), (32.0, 16.0)]  # (w, d)
rows = []
for bw, bd in cases_iou:
    tx = torch.tensor(100.0, dtype=DT)
    tw = torch.tensor(bw, dtype=DT)
    f = lambda z: iou_loss_shifted_squares(z, tx, tw)  # noqa: E731
    at = 100.0 - bd  # x_hat = x - d, so x > x_hat
    g_auto, h_auto = scalar_grad(f, at), scalar_hessian(f, at)
    g_printed = iou_loss_gradient(bw, bd) * 1.0  # sign(x - x_hat) = +1
    g_derived = -iou_loss_gradient_derived(bw, bd)  # the helper returns the magnitude
    h_printed, h_derived = iou_loss_hessian(bw, bd), iou_loss_hessian_derived(bw, bd)
    assert np.isclose(g_auto, g_derived, rtol=1e-10, atol=0), (g_auto, g_derived)
    assert np.isclose(h_auto, h_derived, rtol=1e-8, atol=0), (h_auto, h_derived)
    assert np.isclose(g_derived, float(g_iou.subs({w: bw, d: bd})), rtol=1e-12)
    assert np.isclose(h_derived, float(H_iou.subs({w: bw, d: bd})), rtol=1e-12)
    assert not np.isclose(g_auto, g_printed, rtol=1e-3) and not np.isclose(h_auto, h_printed, rtol=1e-3)
    rows.append((bw, bd, g_printed, g_derived, g_auto, h_printed, h_derived, h_auto))
print_table(["w", "d", "Eq.6 printed", "grad derived", "grad autograd",
             "Eq.7 printed", "Hess derived", "Hess autograd"], rows)

# %% [markdown]
# ## 4 · Size sweep: what the last layer receives
#
# Fix the centre error at `pixel_error` pixels and shrink the object. The anchor is as large
# as the object (`w_a = w`), as in a well-matched assignment, and its centre sits on the
# prediction (`x_a = x_hat`), so that the target offset of Eq. 1 is `T = pixel_error / w`
# and the prediction's offset is 0. For each loss we take the derivatives, by autograd in
# float64, with respect to what the regression head outputs:
#
# * **L2** (Eq. 2) on the Eq. 1 offset; gradient `2 e / w^2`, curvature `2 / w^2`.
# * **Smooth-L1** on the same offset, in mmdetection's form
#   (`0.5 t^2 / beta` if `|t| < beta`, else `|t| - 0.5 beta`, with `t = T - T_hat`). Once
#   `e / w > beta` (here `w < e / beta`) it is in its linear branch: gradient `1 / w`,
#   curvature 0 (not drawn on the log axis).
# * **IoU loss** (Eq. 5), shifted squares, the derived forms of Sec. 3.
# * **Classification objective** (Eq. 10) on the UGS interval non-uniform grid (Eq. 9). Its
#   inputs are the `n + 1` logits, not a coordinate, so its gradient is with respect to the
#   logits (Eq. 11): `max_i |dL_CE / dl_i| = max_i |p_i - p*_i|`, bounded by 1. The two
#   quantities have different units; what the comparison shows is the size of the signal
#   the last layer of the head receives in each case. We use two predictions that both
#   decode to `T_hat = 0` (the anchor centre, i.e. the prediction `x_hat`):
#   * *uncertain*: all-zero logits, the uniform distribution (maximal uncertainty);
#   * *confident*: the two-hot encoding of 0, mixed with `sharp_pred_eps` of uniform mass.
#
#   The CE curvature with respect to the logits is `diag(p) - p p^T`, which depends on the
#   prediction only, never on the target or the object size; its largest eigenvalue is
#   drawn as well.
#
# The CE gradient is drawn in its own panel because it is a different derivative.

# %%
sizes = torch.logspace(math.log10(sizes_px[0]), math.log10(sizes_px[1]), n_sizes, dtype=DT)
e = pixel_error


def sweep_coordinate_loss(loss_fn):
    """|dL/dx_hat| and d2L/dx_hat2 for every size (the loss is elementwise in x_hat)."""
    gt_x = torch.zeros_like(sizes)
    pred_x = (gt_x - e).requires_grad_(True)
    loss = loss_fn(pred_x, gt_x, sizes)
    (g,) = torch.autograd.grad(loss.sum(), pred_x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), pred_x, allow_unused=True)
    h = torch.zeros_like(sizes) if h is None else h
    return g.detach().abs(), h.detach()


def smooth_l1(t, beta):
    """mmdetection's smooth L1 on a residual t."""
    a = t.abs()
    return torch.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


curves = {
    # anchor centre at the prediction (x_a = x_hat), anchor width = object width
    "L2": sweep_coordinate_loss(lambda xh, xg, s: l2_offset_loss(xh, xg, xh.detach(), s)),
    "Smooth-L1": sweep_coordinate_loss(
        lambda xh, xg, s: smooth_l1((xg - xh.detach()) / s - (xh - xh.detach()) / s, smooth_l1_beta)),
    "IoU": sweep_coordinate_loss(lambda xh, xg, s: iou_loss_shifted_squares(xh, xg, s)),
}

# closed-form checks of the sweep (float64, rtol 1e-9)
g, h = curves["L2"]
assert torch.allclose(g, 2 * e / sizes**2, rtol=1e-9) and torch.allclose(h, l2_center_hessian(sizes), rtol=1e-9)
g, h = curves["IoU"]
assert torch.allclose(g, iou_loss_gradient_derived(sizes, e), rtol=1e-9)
assert torch.allclose(h, iou_loss_hessian_derived(sizes, e), rtol=1e-7)
g, h = curves["Smooth-L1"]
quad = e / sizes < smooth_l1_beta
assert torch.allclose(g, torch.where(quad, e / (smooth_l1_beta * sizes**2), 1 / sizes), rtol=1e-9)
assert torch.allclose(h, torch.where(quad, 1 / (smooth_l1_beta * sizes**2), torch.zeros_like(sizes)), rtol=1e-9)
print(f"Smooth-L1 is in its linear branch for w < e/beta = {e / smooth_l1_beta:.4g} px")

# %%
grid = IntervalGrid(grid_alpha, grid_beta, grid_n)
grid_values = interval_grid_values(grid_alpha, grid_beta, grid_n)  # float64
targets = e / sizes  # Eq. 1 offset of the ground truth, relative to x_a = x_hat
n_clamped = int((targets.abs() > grid_alpha).sum())
if n_clamped:
    print(f"note: {n_clamped} targets lie outside [-alpha, alpha] and are clamped by the grid")

uniform_logits = torch.zeros(n_sizes, grid.num_bins, dtype=DT)
sharp_prob = (1 - sharp_pred_eps) * grid.encode(torch.zeros((), dtype=DT)) + sharp_pred_eps / grid.num_bins
sharp_logits = sharp_prob.log().expand(n_sizes, -1).clone()
for lg in (uniform_logits, sharp_logits):
    assert torch.allclose(grid.decode(lg), torch.zeros(n_sizes, dtype=DT), atol=1e-12)  # both decode to 0


def ce_logit_gradient(logits):
    """Gradient of Eq. 10 w.r.t. the logits (autograd), checked against Eq. 11."""
    lg = logits.clone().requires_grad_(True)
    loss = localization_ce(lg, targets, grid, reduction="sum")
    (g,) = torch.autograd.grad(loss, lg)
    eq11 = torch.softmax(logits, -1) - grid.encode(targets)
    assert torch.allclose(g, eq11, rtol=0, atol=1e-12)  # Eq. 11
    return g


ce_curves = {}
for name, lg in [("uncertain (uniform p)", uniform_logits), ("confident (two-hot of 0)", sharp_logits)]:
    g = ce_logit_gradient(lg)
    ce_curves[name] = g.abs().amax(-1)
    assert bool((ce_curves[name] >= 0).all() and (ce_curves[name] <= 1).all())  # Eq. 11 bound


def ce_logit_hessian_top_eig(logits_row, target):
    """Largest eigenvalue of d2 L_CE / dl^2 for one target (autograd)."""
    H = hessian(lambda lg: localization_ce(lg[None], target[None], grid, reduction="sum"), logits_row)
    return float(torch.linalg.eigvalsh(H).max())


top_eigs = [ce_logit_hessian_top_eig(uniform_logits[0], targets[i]) for i in (0, n_sizes // 2, n_sizes - 1)]
assert np.allclose(top_eigs, top_eigs[0], rtol=1e-12)  # independent of the target, so of the size
ce_hess_top = top_eigs[0]
print("grid points (Eq. 9):", [fmt(v, 4) for v in grid_values.tolist()])
print("largest eigenvalue of the CE logit Hessian, uniform p:", fmt(ce_hess_top, 4))

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
styles = {"L2": dict(color="C0"), "Smooth-L1": dict(color="C1"), "IoU": dict(color="C2")}
sz = sizes.numpy()
for name, (g, h) in curves.items():
    axes[0].loglog(sz, g.numpy(), label=name, **styles[name])
    hv = h.numpy().copy()
    hv[hv <= 0] = np.nan  # Smooth-L1's linear branch has zero curvature
    axes[1].loglog(sz, hv, label=name, **styles[name])
axes[0].set_title(f"|dL/dx_hat|, fixed error {e:g} px")
axes[0].set_ylabel("1 / px")
axes[1].set_title(f"d²L/dx_hat², fixed error {e:g} px")
axes[1].set_ylabel("1 / px²")
for ax in axes[:2]:
    ax.axvline(e / smooth_l1_beta, color="C1", ls=":", lw=1)
for name, c in ce_curves.items():
    axes[2].semilogx(sz, c.numpy(), label=f"max_i |dL_CE/dl_i|, {name}")
axes[2].axhline(ce_hess_top, color="k", ls="--", lw=1, label="top eigenvalue of CE logit Hessian (uniform p)")
axes[2].axhline(1.0, color="r", ls=":", lw=1, label="Eq. 11 bound")
axes[2].set_ylim(0, 1.5)
axes[2].set_title(f"CE (Eq. 10) w.r.t. logits, IN grid α={grid_alpha:g}, β={grid_beta:g}, n={grid_n}")
axes[2].set_ylabel("dimensionless")
for ax in axes:
    ax.set_xlabel("object size w = anchor size w_a (px)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center" if ax is axes[2] else "best")
fig.suptitle("Gradient and curvature vs object size. Panels 1-2: w.r.t. the predicted coordinate; "
             "panel 3: w.r.t. the CE logits (a different derivative)", fontsize=10)
fig.tight_layout()
fig_path = output_path / "size_sweep.png"
fig.savefig(fig_path, dpi=120)
print("saved", fig_path)
plt.show()

# %% [markdown]
# The same numbers at a few sizes (closed forms, which the autograd curves above match).
# The last column is the uncertain-prediction CE gradient on the logits.

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for s in [4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]:
    if not (sizes_px[0] <= s <= sizes_px[1]):
        continue
    ts = torch.tensor(s, dtype=DT)
    g_ce = torch.softmax(torch.zeros(grid.num_bins, dtype=DT), -1) - grid.encode(torch.tensor(e / s, dtype=DT))
    rows.append((s, e / s, 2 * e / s**2, 2 / s**2, float(iou_loss_gradient_derived(ts, e)),
                 float(iou_loss_hessian_derived(ts, e)), float(g_ce.abs().max())))
print(f"pixel error e = {e:g} px")
print_table(["w (px)", "T = e/w", "L2 grad", "L2 curv", "IoU grad", "IoU curv", "CE max|dL/dl|"], rows, 5)
small, large = 8.0, 128.0
print(f"\nratio {small:g} px vs {large:g} px: L2 curvature x{fmt((large / small) ** 2, 4)}, "
      f"IoU curvature x{fmt(iou_loss_hessian_derived(small, e) / iou_loss_hessian_derived(large, e), 4)}, "
      f"IoU gradient x{fmt(iou_loss_gradient_derived(small, e) / iou_loss_gradient_derived(large, e), 4)}")

# %% [markdown]
# Reading the figure: from 256 px down to 4 px, the L2 curvature grows by `(256/4)^2 = 4096`
# and the IoU curvature by more than `(256/4)^3` (the `d^2` in the denominator adds to it
# when `w` approaches `d`). Smooth-L1 caps the gradient at `1 / w` below `w = e / beta`,
# but that cap still grows as the object shrinks. The classification objective's logit
# gradient stays inside [0, 1] at every size, and its curvature does not depend on the size
# at all. It is not constant: the offset `T = e / w` moves across grid cells as `w` changes,
# and the gradient is largest when the target distribution is far from the prediction
# (Eq. 11's "confidence-driven" reading).

# %%
print(f"notebook ran in {time.perf_counter() - _t_start:.1f} s")

# %% [markdown] tags=["verdict"]
# **Verdict:** Sec. 3.1's argument holds with the derived forms of Eq. 6-7: for a fixed pixel
# error the curvature of L2 (`~ 1/w^2`) and of the IoU loss (`~ 4 d / w^3`) grows as objects
# shrink, while the classification objective's logit gradient (Eq. 11) stays in [0, 1] at
# every size; the printed Eq. 6 and 7 are not the derivatives they claim to be. Every statement
# here is checked above by sympy and autograd, which stop the notebook when one fails.

# %% [markdown]
# ## Recap
#
# * **Eq. 3 holds exactly**: the L2 curvature on the centre offset is `2 / w_a^2` at every
#   `x_hat` (sympy + autograd). Kit: `ugs.instability.l2_center_hessian`.
# * **Eq. 4 holds at the minimum only**: the full curvature of the log-size L2 is
#   `2 (1 + log(w / w_hat)) / w_hat^2`, equal to the printed `2 / w_hat^2` at `w_hat = w`
#   (and negative for `w_hat > e w`). Kit: `l2_size_hessian` (printed) and
#   `l2_size_hessian_derived`.
# * **Eq. 6 and Eq. 7 are corrected**: for the shifted squares of Eq. 5 the gradient is
#   `-2 w / (w^2 - d^2)` for `x > x_hat` (the printed Eq. 6 has units 1/length^2 and the
#   opposite sign) and the curvature is `4 w d / (w^2 - d^2)^2` (the printed Eq. 7 has units
#   1/length^3 and is not the derivative of the printed Eq. 6). Kit: `iou_loss_gradient` /
#   `iou_loss_hessian` (printed) and the `*_derived` twins, which the autograd checks use.
# * **The claim of Sec. 3.1 is confirmed with the derived forms**: for a fixed pixel error,
#   the curvature of L2 (`~ 1/w^2`) and of the IoU loss (`~ 4 d / w^3`) grows as objects
#   shrink, and the IoU gradient grows as `~ 2 / w`.
# * **The claim of Sec. 3.2.1 is confirmed**: the gradient of the classification objective
#   (Eq. 10, `ugs.localization.localization_ce` on `ugs.grid.IntervalGrid`) with respect to
#   its logits is `softmax(l) - p*` (Eq. 11, checked by autograd) and stays in [0, 1] for
#   every size, and its logit curvature does not depend on the size. This compares what the
#   last layer receives; it is not a derivative with respect to the box coordinate.
