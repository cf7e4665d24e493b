# SODA-A (Table 3) for mmrotate 1.0.0rc1: the crops made by `ugs data crop` (800 px windows, gap
# 150, as the SODA authors' split tool), read by ugs.rotated.datasets.SODAACropDataset; the SODA
# authors' recipe (shaunyuan22/SODA-mmrotate, configs/_base_/datasets/sodaa.py and
# configs/sodaa-benchmarks/): crops resized to 1200 x 1200, horizontal flip 0.5, 1 image per GPU
# on 4 GPUs (paper_batch = 4 in each detector config), 1x (steps at 8 and 11), le90.
# Evaluation: the last epoch's model on the test crops, merged back onto the original images and
# scored with SODA-A's protocol (ugs.rotated.metric.SODAAMetric; no checkpoint is chosen on it).
#
# Layout (README, section "Data"): data/sodaa/crops/{train,test}/ and
# data/sodaa/converted/test.json. ugs.openmmlab.train --data-root points both at another root
# (the synthetic set of `ugs data synth-soda-a` after `ugs data crop`).
# Every name starts with `sodaa_` (mmengine refuses two bases that define the same key).
sodaa_data_root = 'data/sodaa/'
sodaa_train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=(1200, 1200), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmdet.PackDetInputs'),
]
sodaa_test_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(1200, 1200), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    # crop_offset and source: SODAAMetric merges each crop's detections onto its image
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'crop_offset', 'source')),
]
sodaa_train_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True), batch_sampler=None,
    dataset=dict(type='SODAACropDataset', data_root=sodaa_data_root + 'crops/train/',
                 ann_file='annfiles/', data_prefix=dict(img_path='images/'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=sodaa_train_pipeline))
# Oriented RepPoints' head reads quadrilaterals: its training pipeline keeps them (as mmrotate's)
sodaa_qbox_train_pipeline = [step for step in sodaa_train_pipeline if step['type'] != 'ConvertBoxType']
sodaa_qbox_train_dataloader = dict(
    sodaa_train_dataloader, dataset=dict(sodaa_train_dataloader['dataset'], pipeline=sodaa_qbox_train_pipeline))
sodaa_test_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SODAACropDataset', data_root=sodaa_data_root + 'crops/test/',
                 ann_file='annfiles/', data_prefix=dict(img_path='images/'), test_mode=True,
                 pipeline=sodaa_test_pipeline))
sodaa_test_evaluator = dict(_delete_=True, type='SODAAMetric',
                            ann_file=sodaa_data_root + 'converted/test.json', merge=True,
                            max_dets=20000)
# evaluate once, after the last epoch (the table's number), not every epoch
sodaa_train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=12)
