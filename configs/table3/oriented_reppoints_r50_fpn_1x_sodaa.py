# Table 3, row "Oriented RepPoints": mmrotate's DOTA config
# (oriented-reppoints-qbox_r50_fpn_1x_dota.py: 9 points, ConvexGIoU + spatial-border losses,
# convex assigners, quality assessment) on SODA-A; the SODA authors have no Oriented RepPoints
# config, so only the data, the classes and the schedule are theirs. lr 0.004: mmrotate's 0.008
# for 8 images per step (its metafile: 4 GPUs, 2 per GPU) scaled linearly to 4. Its training
# pipeline keeps quadrilateral boxes (the head reads qboxes), as mmrotate's.
_base_ = ['mmrotate::oriented_reppoints/oriented-reppoints-qbox_r50_fpn_1x_dota.py',
          '../_base_/soda_a_rotated.py']
custom_imports = dict(imports=["ugs.openmmlab.runtime", "ugs.rotated.runtime"], allow_failed_imports=False)
paper_batch = 4  # the SODA authors: 1 image per GPU on 4 GPUs
train_dataloader = {{_base_.sodaa_qbox_train_dataloader}}
val_dataloader = {{_base_.sodaa_test_dataloader}}
test_dataloader = {{_base_.sodaa_test_dataloader}}
val_evaluator = {{_base_.sodaa_test_evaluator}}
test_evaluator = {{_base_.sodaa_test_evaluator}}
train_cfg = {{_base_.sodaa_train_cfg}}
model = dict(bbox_head=dict(num_classes=9))
optim_wrapper = dict(type='mmdet.NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.004))
