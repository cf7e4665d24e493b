# Table 2, "TPH-YOLOv5" at 1536: the 640 config (its header maps every part of TPH-YOLOv5's
# recipe) at TPH-YOLOv5's large input: 1536 px, 4 images per micro-step (accumulate 16 for the
# nominal batch of 64), the objectness gain scaled by (1536 / 640)^2, and anchors fitted at 1536.
# What depends on the image size is restated here (mmengine does not re-evaluate the base's
# expressions).
_base_ = ['./tph_yolov5_x_640_visdrone.py']

img_scale = (1536, 1536)
paper_batch = 4
accumulate = 16
num_det_layers = 4
# 4 anchors per level, fitted to VisDrone train at 1536 by
#   ugs data anchors data/visdrone/annotations/train.json --img-size 1536
anchors = None

model = dict(bbox_head=dict(
    prior_generator=dict(base_sizes=anchors),
    loss_obj=dict(loss_weight=0.15 * (img_scale[0] / 640) ** 2 * 3 / num_det_layers)))

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
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline,
                                   batch_shapes_cfg=dict(img_size=img_scale[0])))
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=accumulate, optimizer=dict(batch_size_per_gpu=1))
