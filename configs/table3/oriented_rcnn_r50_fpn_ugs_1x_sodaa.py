# Table 3, row "Oriented R-CNN w/ UGS": both stages' regression losses replaced by Eq. 16
# (ugs.rotated.heads): the RPN's six midpoint-offset deltas (dx..dh on Table 7's RPN grid,
# alpha 2, n 10; da, db on a grid of half-range 0.5 / 0.5 = 1) and the R-CNN's five deltas
# (dx..dh on Table 7's R-CNN grid, alpha 5, n 5; dtheta on pi / 4 / 0.1 = 7.85), with the
# refinement step on the FPN levels each stage reads (the R-CNN's through RoIAlignRotated, by
# mmdet's UGSStandardRoIHead of the kit). Same recipe.
_base_ = ['./oriented_rcnn_r50_fpn_1x_sodaa.py']
model = dict(
    rpn_head=dict(type='UGSOrientedRPNHead', loss_bbox=None,
                  ugs=dict(alpha=2.0, beta=1.0, n=10, lam=0.5, gamma=0.5, rho=0.5)),
    roi_head=dict(
        type='mmdet.UGSStandardRoIHead',
        bbox_head=dict(type='UGSRotatedShared2FCBBoxHead', loss_bbox=None,
                       ugs=dict(alpha=5.0, beta=1.0, n=5, lam=0.5, gamma=0.5, rho=0.5))))
