# Table 6, row "Smooth-L_1": Smooth-L1 on the deltas of both stages (as the L2 baseline), with
# the classic Faster R-CNN transition points (Detectron / mmdet 2.x): beta = 1/9 for the RPN,
# beta = 1.0 for the R-CNN head (the paper gives none).
_base_ = ['../faster_rcnn_r50_fpn_1x_visdrone.py']
model = dict(
    rpn_head=dict(loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(bbox_head=dict(loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))))
