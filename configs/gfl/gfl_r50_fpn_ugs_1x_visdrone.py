# Table 1, row "GFL V1 w/ UGS": GFL's distribution (DFL, 17 integer bins) replaced by UGS
# (ugs.openmmlab.gfl_head.UGSGFLHead); QFL, GIoU and ATSS unchanged. Same recipe.
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}
model = dict(
    bbox_head=dict(type='UGSGFLHead', num_classes=10,
                   ugs=dict(alpha=3.0, beta=1.0, n=16, mapping='log', lam=0.5, gamma=0.5,
                            rho=0.5, loss_weight=0.25)),
    test_cfg=dict(max_per_img=500))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
