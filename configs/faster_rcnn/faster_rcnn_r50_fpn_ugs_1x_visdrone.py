# Table 1 / Table 6, row "Faster R-CNN w/ UGS" (Table 6's best row: lambda = gamma = rho = 0.5):
# the Faster R-CNN row with both regressions replaced by UGS (Eq. 16 instead of L1 on the
# deltas): ugs.openmmlab.rpn_head.UGSRPNHead with Table 7's best RPN grid (alpha 2, beta 1.0,
# n 10) and ugs.openmmlab.roi_head.UGSShared2FCBBoxHead with Table 7's best R-CNN grid
# (alpha 5, beta 1.0, n 5), refinement on the FPN levels of both stages
# (UGSStandardRoIHead for the R-CNN stage). Same recipe.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}
model = dict(
    rpn_head=dict(
        _delete_=True, type='UGSRPNHead', in_channels=256, feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        ugs=dict(alpha=2.0, beta=1.0, n=10, lam=0.5, gamma=0.5, rho=0.5)),
    roi_head=dict(
        type='UGSStandardRoIHead',
        bbox_head=dict(
            _delete_=True, type='UGSShared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
            roi_feat_size=7, num_classes=10,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            ugs=dict(alpha=5.0, beta=1.0, n=5, lam=0.5, gamma=0.5, rho=0.5))),
    test_cfg=dict(rcnn=dict(max_per_img=500)))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
