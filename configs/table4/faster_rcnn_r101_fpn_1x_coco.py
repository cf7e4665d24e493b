# Table 4, COCO, "Faster R-CNN" R-101: the R-50 COCO config with mmdet's R-101 backbone (mmdet's
# own R-101 1x config changes exactly these two values; its published 39.4 AP / 22.4 AP_s is the
# paper's baseline).
_base_ = ['./faster_rcnn_r50_fpn_1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
