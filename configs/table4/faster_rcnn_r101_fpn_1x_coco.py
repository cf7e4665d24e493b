# Table 4, COCO, "Faster R-CNN" R-101: mmdet's stock R-101 1x recipe (its published 39.4 AP /
# 22.4 AP_s is the paper's baseline).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper')
