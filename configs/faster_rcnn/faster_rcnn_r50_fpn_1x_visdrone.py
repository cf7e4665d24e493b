# Table 1 / Table 6, row "Faster R-CNN": mmdet's Faster R-CNN R-50 FPN 1x, VisDrone, the paper's
# 1x recipe (Sec. 4.1.2: 1333x800, 16 images per step, SGD lr 0.02, steps at 8 and 11, wd 1e-4).
# mmdet's recipe regresses both stages with L1Loss; Table 6's "L2 (Baseline)" row is the same
# detector with an L2 loss on the deltas (a loss swap, e.g. loss_bbox=dict(type='MSELoss'), in
# rpn_head and roi_head.bbox_head), not provided here yet.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}
model = dict(roi_head=dict(bbox_head=dict(num_classes=10)),
             test_cfg=dict(rcnn=dict(max_per_img=500)))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
