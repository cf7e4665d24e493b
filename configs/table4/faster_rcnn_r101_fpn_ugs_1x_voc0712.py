# Table 4, PASCAL VOC, "Faster R-CNN w/ UGS" R-101: the R-50 w/ UGS VOC config with R-101.
_base_ = ['./faster_rcnn_r50_fpn_ugs_1x_voc0712.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
