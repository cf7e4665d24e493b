# Table 4, PASCAL VOC, "Faster R-CNN" R-101: the R-50 VOC recipe with mmdet's R-101 backbone
# (mmdet has no R-101 VOC config; its COCO R-101 config changes exactly these two values).
_base_ = ['./faster_rcnn_r50_fpn_1x_voc0712.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
