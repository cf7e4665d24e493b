# Table 3, row "Rotated RetinaNet": mmrotate's Rotated RetinaNet (le90, rotated anchors,
# DeltaXYWHTRBBoxCoder with the edge swap, L1 + focal) on SODA-A with the SODA authors' recipe
# (configs/sodaa-benchmarks/rotated_retinanet_obb_r50_fpn_1x.py): FPN from P2 (start_level 0),
# one anchor size per level (octave_base_scale 1, scales_per_octave 1) at strides 4-64,
# lr 0.005 for 4 images per step; test: rotated NMS 0.1, 2,000 detections per crop.
_base_ = ['mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py',
          '../_base_/soda_a_rotated.py']
custom_imports = dict(imports=["ugs.openmmlab.runtime", "ugs.rotated.runtime"], allow_failed_imports=False)
paper_batch = 4  # the SODA authors: 1 image per GPU on 4 GPUs
train_dataloader = {{_base_.sodaa_train_dataloader}}
val_dataloader = {{_base_.sodaa_test_dataloader}}
test_dataloader = {{_base_.sodaa_test_dataloader}}
val_evaluator = {{_base_.sodaa_test_evaluator}}
test_evaluator = {{_base_.sodaa_test_evaluator}}
train_cfg = {{_base_.sodaa_train_cfg}}
model = dict(
    neck=dict(start_level=0, add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        num_classes=9,
        anchor_generator=dict(octave_base_scale=1, scales_per_octave=1,
                              strides=[4, 8, 16, 32, 64])),
    test_cfg=dict(nms_pre=2000, score_thr=0.05, nms=dict(type='nms_rotated', iou_threshold=0.1),
                  max_per_img=2000))
optim_wrapper = dict(type='mmdet.NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.005))
