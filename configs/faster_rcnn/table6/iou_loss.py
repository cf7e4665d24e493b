# Table 6, row "IoU-loss [57]": UnitBox's IoU loss, -ln(IoU) of the decoded box and its ground
# truth (mmdet IoULoss, mode 'log'), in both stages (reg_decoded_bbox: the deltas are decoded
# first). Loss weights: 10 for the R-CNN head as mmdet's own faster-rcnn_r50_fpn_iou_1x_coco.py;
# 1 for the RPN (mmdet has no IoU RPN reference; 1 is its L1 weight there). The paper gives none.
_base_ = ['../faster_rcnn_r50_fpn_1x_visdrone.py']
model = dict(
    rpn_head=dict(reg_decoded_bbox=True,
                  loss_bbox=dict(type='IoULoss', mode='log', loss_weight=1.0)),
    roi_head=dict(bbox_head=dict(reg_decoded_bbox=True,
                                 loss_bbox=dict(type='IoULoss', mode='log', loss_weight=10.0))))
