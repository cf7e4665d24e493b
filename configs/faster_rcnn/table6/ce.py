# Table 6, row "L_CE":
# classification-based localization alone (Eq. 10) on the UNIFORM grid
# (beta = 0 is Eq. 9's limit, the uniform grid: 'CE without IN'); no UM (lambda = 0), no
# refinement (gamma = 0; rho is then unused).
# The UGS config (RPN alpha 2 / n 10, R-CNN alpha 5 / n 5, Table 7) with these knobs set in
# BOTH stages (RPN and R-CNN), as UGS replaces the regression of both.
_base_ = ['../faster_rcnn_r50_fpn_ugs_1x_visdrone.py']
model = dict(rpn_head=dict(ugs=dict(beta=0.0, lam=0.0, gamma=0.0, rho=0.5)),
             roi_head=dict(bbox_head=dict(ugs=dict(beta=0.0, lam=0.0, gamma=0.0, rho=0.5))))
