# Table 4, COCO, "Faster R-CNN" R-101: mmdet's stock R-101 1x recipe (its published 39.4 AP /
# 22.4 AP_s is the paper's baseline).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper')
# Evaluation: the kit's COCO evaluator (ugs.evaluation, the same numbers as pycocotools'
# COCOeval, checked in tests/test_coco_box_metric.py) in place of mmdet's CocoMetric, so that
# every table of the kit is measured by one implementation and writes metrics.json.
val_evaluator = dict(_delete_=True, type='CocoBoxMetric',
                     ann_file='data/coco/annotations/instances_val2017.json', max_dets=100)
test_evaluator = val_evaluator
