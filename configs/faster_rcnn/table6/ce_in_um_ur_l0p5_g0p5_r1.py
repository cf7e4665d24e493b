# Table 6, row "L_CE + lambda L_UM + gamma L^ur, (lambda, gamma, rho) = (0.5, 0.5, 1)":
# Eq. 16 on the IN grid (beta = 1.0), lambda = 0.5, gamma = 0.5, rho = 1.
# The UGS config (RPN alpha 2 / n 10, R-CNN alpha 5 / n 5, Table 7) with these knobs set in
# BOTH stages (RPN and R-CNN), as UGS replaces the regression of both.
_base_ = ['../faster_rcnn_r50_fpn_ugs_1x_visdrone.py']
model = dict(rpn_head=dict(ugs=dict(beta=1.0, lam=0.5, gamma=0.5, rho=1.0)),
             roi_head=dict(bbox_head=dict(ugs=dict(beta=1.0, lam=0.5, gamma=0.5, rho=1.0))))
