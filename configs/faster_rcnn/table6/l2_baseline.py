# Table 6, row "L_2 (Baseline)": Faster R-CNN R-50 FPN 1x on VisDrone with an L2 (squared
# error) loss on the box-coder deltas in BOTH stages (RPN and R-CNN), in place of mmdet's L1.
# Both stages, because the UGS rows of Table 6 replace the regression loss of both stages
# ("replacing L_2 with L_CE", Sec. 4.8); every Table 6 baseline row differs from this one in
# one thing only. Recipe: the parent config (the paper's 1x recipe, Sec. 4.1.2).
_base_ = ['../faster_rcnn_r50_fpn_1x_visdrone.py']
model = dict(
    rpn_head=dict(loss_bbox=dict(type='MSELoss', loss_weight=1.0)),
    roi_head=dict(bbox_head=dict(loss_bbox=dict(type='MSELoss', loss_weight=1.0))))
