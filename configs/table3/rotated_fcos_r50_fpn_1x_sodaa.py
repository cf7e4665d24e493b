# Table 3, row "Rotated FCOS": mmrotate's DOTA config (rotated-fcos-le90_r50_fpn_1x_dota.py:
# ltrb + angle (PseudoAngleCoder), rotated IoU loss, centerness on the regression branch,
# centre sampling 1.5) on SODA-A; the SODA authors have no Rotated FCOS config, so only the data,
# the classes and the schedule are theirs. lr 0.005: mmrotate's 0.0025 for 2 images per step
# (its metafile: one V100, 2 per GPU) scaled linearly to 4. Test: mmrotate's (NMS 0.1, 2,000).
_base_ = ['mmrotate::rotated_fcos/rotated-fcos-le90_r50_fpn_1x_dota.py',
          '../_base_/soda_a_rotated.py']
custom_imports = dict(imports=["ugs.openmmlab.runtime", "ugs.rotated.runtime"], allow_failed_imports=False)
paper_batch = 4  # the SODA authors: 1 image per GPU on 4 GPUs
train_dataloader = {{_base_.sodaa_train_dataloader}}
val_dataloader = {{_base_.sodaa_test_dataloader}}
test_dataloader = {{_base_.sodaa_test_dataloader}}
val_evaluator = {{_base_.sodaa_test_evaluator}}
test_evaluator = {{_base_.sodaa_test_evaluator}}
train_cfg = {{_base_.sodaa_train_cfg}}
model = dict(bbox_head=dict(num_classes=9))
optim_wrapper = dict(type='mmdet.NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.005))
