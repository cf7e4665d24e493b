# Table 2, "TPH-YOLOv5" at 640: TPH-YOLOv5-x (ugs/yolo/tph.py: C3TR at the end of the backbone
# and in the P5 output, CBAM on every output, SPP + C3 per output, four heads at strides 4-32)
# on VisDrone-DET 2019, trained with TPH-YOLOv5's own recipe: its train.py with --adam and
# data/hyps/hyp.VisDrone.yaml (cv516Buaa/tph-yolov5; NOTES.md section 6), mapped onto mmyolo:
#
# | TPH-YOLOv5 (train.py + hyp.VisDrone.yaml) | here |
# |---|---|
# | Adam(lr 3e-4, betas (momentum 0.843, 0.999)); lr0 0.0032 unused with --adam | optimizer Adam, lr 3e-4, betas (0.843, 0.999) |
# | weight decay 3.6e-4 on conv weights only, x batch * accumulate / 64 | YOLOv5OptimizerConstructor (the same groups and scaling) |
# | nominal batch 64: accumulate round(64 / batch) steps (ramped up during warm-up) | accumulative_counts 4 (16 images per step; no ramp) |
# | cosine 1 -> lrf 0.12 over 80 epochs | YOLOv5ParamSchedulerHook cosine, lr_factor 0.12 |
# | warm-up max(2 epochs, 1000 iterations): lr from 0 (biases from 0.05) | warmup_epochs 2, warmup_bias_lr 0.05, warmup_mim_iter 1000 |
# | EMA 0.9999 with ramp (1 - exp(-updates / 2000)) | EMAHook ExpMomentumEMA, momentum 1e-4, gamma 2000 |
# | mosaic 1.0, mixup 0.2, degrees 0.2, translate 0, scale 0.4, shear 0, hsv 0.4 / 0.3 / 0.5, fliplr 0.5 | Mosaic, YOLOv5RandomAffine, YOLOv5MixUp, YOLOv5HSVRandomAug, RandomFlip with these values |
# | box 0.07 x 3/nl, cls 0.18 x nc/80 x 3/nl, obj 0.15 x (imgsz/640)^2 x 3/nl (nl = 4) | the three loss weights below |
# | BCE with pos_weight cls_pw 0.631, obj_pw 0.911 | PosWeightedBCELoss (ugs/yolo/losses.py) |
# | anchor_t 3, objectness balance [4, 1, 0.25, 0.06] | prior_match_thr 3.0, obj_level_weights |
# | anchors: 4 per level, k-means + genetic at the training size | `anchors` below, from `ugs data anchors` |
# | Albumentations (blur, median blur, gray, CLAHE, p 0.01 each) when installed | not used (albumentations is not in the kit's stack) |
# | validation conf 0.001, NMS IoU 0.6, 300 detections | score_thr 0.001, NMS 0.6, 500 detections: Table 1's VisDrone protocol |
#
# Data: the kit's VisDrone JSON (`ugs data visdrone`) through mmyolo's YOLOv5CocoDataset; the
# ignored regions are not annotations, so training neither learns nor masks them (as the
# authors' conversion, which drops them); evaluation is the kit's VisDroneMetric (ignored regions
# as in Table 1, 500 detections per image), so Tables 1 and 2 are measured the same way.
_base_ = ['mmyolo::_base_/default_runtime.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime', 'ugs.yolo.runtime'], allow_failed_imports=False)

img_scale = (640, 640)
paper_batch = 16            # images per optimizer micro-step over all GPUs (the training tool divides it)
accumulate = 4              # round(64 / paper_batch): YOLOv5's nominal batch of 64
max_epochs = 80
deepen_factor, widen_factor = 1.33, 1.25           # x scale
num_classes = 10
strides = [4, 8, 16, 32]
num_det_layers = 4
# 4 anchors per level, fitted to VisDrone train at 640 by
#   ugs data anchors data/visdrone/annotations/train.json --img-size 640
# and pasted here (no values are published; the head refuses to build without them).
anchors = None

model = dict(
    type='YOLODetector',
    data_preprocessor=dict(type='YOLOv5DetDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                           bgr_to_rgb=True),
    backbone=dict(type='TPHCSPDarknet', deepen_factor=deepen_factor, widen_factor=widen_factor),
    neck=dict(type='TPHPAFPN', deepen_factor=deepen_factor, widen_factor=widen_factor,
              in_channels=[128, 256, 512, 1024]),
    bbox_head=dict(
        type='TPHYOLOv5Head',
        head_module=dict(type='YOLOv5HeadModule', num_classes=num_classes, in_channels=[128, 256, 512, 1024],
                         widen_factor=widen_factor, num_base_priors=4, featmap_strides=strides),
        prior_generator=dict(type='mmdet.YOLOAnchorGenerator', base_sizes=anchors, strides=strides),
        loss_cls=dict(type='PosWeightedBCELoss', pos_weight=0.631,
                      loss_weight=0.18 * num_classes / 80 * 3 / num_det_layers),
        loss_bbox=dict(type='IoULoss', iou_mode='ciou', bbox_format='xywh', eps=1e-7, reduction='mean',
                       loss_weight=0.07 * 3 / num_det_layers, return_iou=True),
        loss_obj=dict(type='PosWeightedBCELoss', pos_weight=0.911,
                      loss_weight=0.15 * (img_scale[0] / 640) ** 2 * 3 / num_det_layers),
        prior_match_thr=3.0,
        obj_level_weights=[4.0, 1.0, 0.25, 0.06]),
    test_cfg=dict(multi_label=True, nms_pre=30000, score_thr=0.001, nms=dict(type='nms', iou_threshold=0.6),
                  max_per_img=500))

pre_transform = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
mosaic_affine = [
    dict(type='Mosaic', img_scale=img_scale, pad_val=114.0, pre_transform=pre_transform),
    dict(type='YOLOv5RandomAffine', max_rotate_degree=0.2, max_shear_degree=0.0, max_translate_ratio=0.0,
         scaling_ratio_range=(0.6, 1.4), border=(-img_scale[0] // 2, -img_scale[1] // 2),
         border_val=(114, 114, 114)),
]
train_pipeline = [
    *pre_transform, *mosaic_affine,
    dict(type='YOLOv5MixUp', prob=0.2, pre_transform=[*pre_transform, *mosaic_affine]),
    dict(type='YOLOv5HSVRandomAug', hue_delta=0.4, saturation_delta=0.3, value_delta=0.5),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                                               'flip_direction')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='YOLOv5KeepRatioResize', scale=img_scale),
    dict(type='LetterResize', scale=img_scale, allow_scale_up=False, pad_val=dict(img=114)),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                               'pad_param')),
]
train_dataloader = dict(
    batch_size=paper_batch // 4, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='yolov5_collate'),     # mmyolo's fast path: the batch's boxes as one tensor
    dataset=dict(type='YOLOv5CocoDataset', data_root='data/visdrone/', metainfo={{_base_.visdrone_metainfo}},
                 ann_file='annotations/train.json', data_prefix=dict(img='VisDrone2019-DET-train/images/'),
                 filter_cfg=dict(filter_empty_gt=False, min_size=32), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, pin_memory=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='YOLOv5CocoDataset', data_root='data/visdrone/', metainfo={{_base_.visdrone_metainfo}},
                 ann_file='annotations/val.json', data_prefix=dict(img='VisDrone2019-DET-val/images/'),
                 test_mode=True, pipeline=test_pipeline,
                 batch_shapes_cfg=dict(type='BatchShapePolicy', batch_size=1, img_size=img_scale[0],
                                       size_divisor=32, extra_pad_ratio=0.5)))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmdet.VisDroneMetric', ann_file='data/visdrone/annotations/val.json', max_dets=500,
                     ignore_regions=True)
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='mmdet.NonFiniteGuardOptimWrapper', accumulative_counts=accumulate,
    optimizer=dict(type='Adam', lr=3e-4, betas=(0.843, 0.999), weight_decay=0.00036,
                   batch_size_per_gpu=paper_batch // 4),
    constructor='YOLOv5OptimizerConstructor')
param_scheduler = None
default_hooks = dict(
    param_scheduler=dict(type='YOLOv5ParamSchedulerHook', scheduler_type='cosine', lr_factor=0.12,
                         max_epochs=max_epochs, warmup_epochs=2, warmup_bias_lr=0.05, warmup_momentum=0.5,
                         warmup_mim_iter=1000),
    checkpoint=dict(type='CheckpointHook', interval=10, save_best='visdrone/AP', rule='greater', max_keep_ckpts=3))
custom_hooks = [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, update_buffers=True,
                     strict_load=False, priority=49)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
