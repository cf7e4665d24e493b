# Table 1, row "FCOS w/ UGS": the FCOS row with the regression branch replaced by UGS
# (ugs.openmmlab.fcos_head.UGSFCOSHead: Eq. 16 instead of the IoU loss). Same recipe.
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}
model = dict(
    bbox_head=dict(
        _delete_=True, type='UGSFCOSHead', num_classes=10, in_channels=256, stacked_convs=4,
        feat_channels=256, strides=[8, 16, 32, 64, 128],
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        ugs=dict(alpha=3.0, beta=1.0, n=16, mapping='log', lam=0.5, gamma=0.5, rho=0.5)),
    test_cfg=dict(max_per_img=500))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
