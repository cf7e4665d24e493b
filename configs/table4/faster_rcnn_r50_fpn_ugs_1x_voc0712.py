# Table 4, PASCAL VOC, "Faster R-CNN w/ UGS" R-50: the stock VOC recipe with both regressions
# replaced by UGS, as in Table 1's Faster R-CNN w/ UGS: UGSRPNHead on Table 7's best RPN grid
# (alpha 2, beta 1.0, n 10), UGSShared2FCBBoxHead on its best R-CNN grid (alpha 5, beta 1.0,
# n 5), lambda = gamma = rho = 0.5 (Table 6's best row), refinement in both stages. Same recipe.
_base_ = ['./faster_rcnn_r50_fpn_1x_voc0712.py']
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
            roi_feat_size=7, num_classes=20,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            ugs=dict(alpha=5.0, beta=1.0, n=5, lam=0.5, gamma=0.5, rho=0.5))))
