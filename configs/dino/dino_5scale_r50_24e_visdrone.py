# Table 1, row "DINO-5scale" (Sec. 4.1.2): DINO with 5-scale features, R-50, on VisDrone-DET
# 2019. mmdet's DINO-4scale R-50 24-epoch config made 5-scale as mmdet's own DINO-5scale
# Swin-L config does it: the backbone gives all four stages (strides 4-32), the neck adds a
# fifth level (stride 64), and the encoder / decoder attend over 5 levels.
# The paper's recipe: 24 epochs (mmdet's 24e schedule: lr x0.1 at epoch 20), AdamW lr 2e-4
# (weight decay 1e-4, backbone lr x0.1, grad-norm clip 0.1, as mmdet's DINO), 16 images per
# step, DETR-style augmentation (flip, multi-scale resize, random crop: mmdet's DINO
# pipeline), up to 1,500 predictions per image at test time (following DQ-DETR).
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-24e_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
num_levels = 5
model = dict(
    num_feature_levels=num_levels,
    backbone=dict(out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[256, 512, 1024, 2048], num_outs=num_levels),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=num_levels))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=num_levels))),
    bbox_head=dict(num_classes=10),
    test_cfg=dict(max_per_img=1500))
# mmdet's DINO training pipeline (DETR-style augmentation), on the VisDrone dataset
dino_visdrone_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', keep_ratio=True,
              scales=[(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
                      (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
                      (800, 1333)])],
        [dict(type='RandomChoiceResize', keep_ratio=True,
              scales=[(400, 4200), (500, 4200), (600, 4200)]),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', keep_ratio=True,
              scales=[(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
                      (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
                      (800, 1333)])],
    ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type='CocoDataset', data_root={{_base_.visdrone_data_root}},
                 metainfo={{_base_.visdrone_metainfo}}, ann_file='annotations/train.json',
                 data_prefix=dict(img='VisDrone2019-DET-train/images/'),
                 filter_cfg=dict(filter_empty_gt=False, min_size=0),
                 pipeline=dino_visdrone_train_pipeline))
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = dict(_delete_=True, type='VisDroneMetric',
                     ann_file='data/visdrone/annotations/val.json', max_dets=1500,
                     ignore_regions=True)
test_evaluator = val_evaluator
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=2e-4))
