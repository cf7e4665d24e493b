# Table 3, row "Rotated RetinaNet w/ UGS": the Rotated RetinaNet row with the L1 loss replaced by
# Eq. 16 (ugs.rotated.heads.UGSRotatedRetinaHead: the five le90 edge-swap deltas, dx..dh on the
# RPN's Table 7 grid, alpha 2, n 10; dtheta on its own grid of half-range pi / 4). Same recipe.
_base_ = ['./rotated_retinanet_r50_fpn_1x_sodaa.py']
model = dict(
    bbox_head=dict(
        type='UGSRotatedRetinaHead', loss_bbox=None,
        ugs=dict(alpha=2.0, beta=1.0, n=10, lam=0.5, gamma=0.5, rho=0.5)))
