# Table 4, COCO, "Faster R-CNN w/ UGS" R-101: the R-50 w/ UGS COCO config with mmdet's R-101.
_base_ = ['./faster_rcnn_r50_fpn_ugs_1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
