# Table 1, row "FCOS": mmdet's FCOS R-50 (caffe) FPN GN-head, VisDrone, the paper's 1x recipe
# (Sec. 4.1.2: 1333x800, 16 images per step, SGD lr 0.02, steps at 8 and 11, wd 1e-4).
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', '../_base_/visdrone_detection.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
train_dataloader = {{_base_.visdrone_train_dataloader}}
val_dataloader = {{_base_.visdrone_val_dataloader}}
test_dataloader = {{_base_.visdrone_val_dataloader}}
val_evaluator = {{_base_.visdrone_val_evaluator}}
test_evaluator = {{_base_.visdrone_val_evaluator}}
model = dict(bbox_head=dict(num_classes=10), test_cfg=dict(max_per_img=500))
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', optimizer=dict(lr=0.02, weight_decay=1e-4))
