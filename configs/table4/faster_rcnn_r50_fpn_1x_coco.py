# Table 4, COCO, "Faster R-CNN" R-50: mmdet's stock 1x recipe, unchanged (1333x800, SGD lr 0.02
# for 16 images per step, 12 epochs with steps at 8 and 11; its published result is the paper's
# 37.4 AP / 21.2 AP_s baseline), evaluated by the kit's COCO evaluator (below). Data in data/coco/
# (`ugs data check coco data/coco`).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper')
# Evaluation: the kit's COCO evaluator (ugs.evaluation, the same numbers as pycocotools'
# COCOeval, checked in tests/test_coco_box_metric.py) in place of mmdet's CocoMetric, so that
# every table of the kit is measured by one implementation and writes metrics.json.
val_evaluator = dict(_delete_=True, type='CocoBoxMetric',
                     ann_file='data/coco/annotations/instances_val2017.json', max_dets=100)
test_evaluator = val_evaluator
