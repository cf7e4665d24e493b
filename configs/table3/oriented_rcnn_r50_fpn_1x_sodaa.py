# Table 3, row "Oriented R-CNN": mmrotate's Oriented R-CNN (OrientedRPNHead with the midpoint-
# offset coder, RoIAlignRotated, class-agnostic Shared2FCBBoxHead with DeltaXYWHTRBBoxCoder stds
# .1 .1 .2 .2 .1) on SODA-A with the SODA authors' recipe
# (configs/sodaa-benchmarks/oriented_rcnn_r50_fpn_1x.py): RPN anchor scale 1 (sizes 4-64 on
# strides 4-64), lr 0.01 for 4 images per step; test: rotated NMS 0.1, 2,000 detections per crop.
_base_ = ['mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py',
          '../_base_/soda_a_rotated.py']
custom_imports = dict(imports=["ugs.openmmlab.runtime", "ugs.rotated.runtime"], allow_failed_imports=False)
paper_batch = 4  # the SODA authors: 1 image per GPU on 4 GPUs
train_dataloader = {{_base_.sodaa_train_dataloader}}
val_dataloader = {{_base_.sodaa_test_dataloader}}
test_dataloader = {{_base_.sodaa_test_dataloader}}
val_evaluator = {{_base_.sodaa_test_evaluator}}
test_evaluator = {{_base_.sodaa_test_evaluator}}
train_cfg = {{_base_.sodaa_train_cfg}}
model = dict(
    rpn_head=dict(anchor_generator=dict(scales=[1])),
    roi_head=dict(bbox_head=dict(num_classes=9)),
    test_cfg=dict(rcnn=dict(nms=dict(type='nms_rotated', iou_threshold=0.1), max_per_img=2000)))
optim_wrapper = dict(type='mmdet.NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.01))
