# Table 1, row "GFL V1": mmdet's GFL R-50 FPN, VisDrone, the paper's 1x recipe (Sec. 4.1.2).
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}
model = dict(bbox_head=dict(num_classes=10), test_cfg=dict(max_per_img=500))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
