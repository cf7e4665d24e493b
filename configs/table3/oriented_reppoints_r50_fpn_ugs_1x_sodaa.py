# Table 3, row "Oriented RepPoints w/ UGS": the Oriented RepPoints row with the refine stage's
# point offsets regressed as distributions on the UGS grid and Eq. 10 / 12 / 14-15 added
# (ugs.rotated.reppoints_head.UGSOrientedRepPointsHead: targets are the detached projections of
# the points onto the ground-truth polygon; see its docstring). Same recipe.
_base_ = ['./oriented_reppoints_r50_fpn_1x_sodaa.py']
# alpha 6 feature-map cells: at most 0.2% of the projection targets lie beyond it in a small
# stock training (ugs.rotated.reppoints_head.UGS_REPPOINTS_DEFAULTS says how it was measured)
model = dict(
    bbox_head=dict(type='UGSOrientedRepPointsHead',
                   ugs=dict(alpha=6.0, beta=1.0, n=16, lam=0.5, gamma=0.5, rho=0.5)))
