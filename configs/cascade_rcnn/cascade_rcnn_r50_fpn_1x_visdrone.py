# Table 1, row "Cascade R-CNN": mmdet's Cascade R-CNN R-50 FPN 1x (three stages, IoU 0.5 / 0.6 /
# 0.7, class-agnostic regression with target stds 0.1/0.2, 0.05/0.1, 0.033/0.067), VisDrone,
# the paper's 1x recipe (Sec. 4.1.2: 1333x800, 16 images per step, SGD lr 0.02, steps at 8 and
# 11, wd 1e-4). mmdet's recipe regresses the RPN and the three R-CNN stages with SmoothL1Loss.
_base_ = ['mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}


def _stage(stds):
    """One stage's bbox head, mmdet's as written with the 10 VisDrone classes (a list in a
    config replaces the base's list, so each stage is spelled out)."""
    return dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
                roi_feat_size=7, num_classes=10,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))


model = dict(roi_head=dict(bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]),
                                      _stage([0.05, 0.05, 0.1, 0.1]),
                                      _stage([0.033, 0.033, 0.067, 0.067])]),
             test_cfg=dict(rcnn=dict(max_per_img=500)))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
