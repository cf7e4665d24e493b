# Table 1, row "Cascade R-CNN w/ UGS": the Cascade R-CNN row with every regression replaced by
# UGS (Eq. 16 instead of SmoothL1 on the deltas, lambda = gamma = rho = 0.5 as Table 6's best
# row): ugs.openmmlab.rpn_head.UGSRPNHead with Table 7's best RPN grid (alpha 2, beta 1.0,
# n 10), and in each of the three stages ugs.openmmlab.roi_head.UGSShared2FCBBoxHead with
# Table 7's best R-CNN grid (alpha 5, beta 1.0, n 5), refinement on the FPN levels of every
# stage (UGSCascadeRoIHead). One grid for all stages: each stage divides its deltas by its own
# target stds (0.1/0.2, 0.05/0.1, 0.033/0.067), which Cascade R-CNN shrinks with the stage's
# IoU threshold so that the normalised deltas keep about the same spread; the grid is set on
# those normalised deltas, so the R-CNN grid applies unchanged (the paper gives no per-stage
# grid). Stock Cascade's class-agnostic regression is kept: one distribution per delta.
# Same recipe.
_base_ = ['mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}


def _stage(stds):
    """One stage's UGS bbox head (Table 7's R-CNN grid; the stage's own target stds)."""
    return dict(type='UGSShared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
                roi_feat_size=7, num_classes=10,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                ugs=dict(alpha=5.0, beta=1.0, n=5, lam=0.5, gamma=0.5, rho=0.5))


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
        type='UGSCascadeRoIHead',
        bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]), _stage([0.05, 0.05, 0.1, 0.1]),
                   _stage([0.033, 0.033, 0.067, 0.067])]),
    test_cfg=dict(rcnn=dict(max_per_img=500)))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
