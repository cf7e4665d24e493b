# VisDrone-DET 2019 as COCO JSON (made by `ugs data visdrone`), the paper's recipe (Sec. 4.1.2):
# 1333x800, no multi-scale training, 16 images per step (4 GPUs x 4). The evaluator applies the
# VisDrone toolkit's ignored-region rule and keeps up to 500 detections per image.
# The kit's synthetic set (`ugs data synth`) has the same layout; ugs.openmmlab.train sets
# data_root (and the quick profile's image size) on the merged config.
#
# Every name here starts with `visdrone_`: mmengine refuses two bases that define the same key,
# so a detector config lists this file beside its stock mmdet base and takes the data settings
# with `train_dataloader = {{_base_.visdrone_train_dataloader}}` (and so on); `_delete_`
# replaces the stock COCO settings instead of merging into them.
visdrone_data_root = 'data/visdrone/'
visdrone_metainfo = dict(classes=('pedestrian', 'people', 'bicycle', 'car', 'van', 'truck',
                                  'tricycle', 'awning-tricycle', 'bus', 'motor'))
visdrone_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
visdrone_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
visdrone_train_dataloader = dict(
    _delete_=True, batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type='CocoDataset', data_root=visdrone_data_root, metainfo=visdrone_metainfo,
                 ann_file='annotations/train.json',
                 data_prefix=dict(img='VisDrone2019-DET-train/images/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=0),
                 pipeline=visdrone_train_pipeline))
visdrone_val_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=visdrone_data_root, metainfo=visdrone_metainfo,
                 ann_file='annotations/val.json',
                 data_prefix=dict(img='VisDrone2019-DET-val/images/'),
                 test_mode=True, pipeline=visdrone_test_pipeline))
visdrone_val_evaluator = dict(_delete_=True, type='VisDroneMetric',
                              ann_file=visdrone_data_root + 'annotations/val.json',
                              max_dets=500, ignore_regions=True)
