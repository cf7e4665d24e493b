# Table 4, PASCAL VOC, "Faster R-CNN" R-50: mmdet's stock VOC recipe, unchanged (VOC2007 +
# VOC2012 trainval repeated 3 times, 1000x600, SGD lr 0.01 for 16 images per step, 4 epochs with
# a step at 3, the VOC2007 11-point mAP on VOC2007 test, difficult objects ignored). Data in
# data/VOCdevkit/ (README, "Data"; check it with `ugs data check voc data/VOCdevkit`).
# The kit adds only the non-finite-step guard (a no-op on finite losses) and its registrations.
_base_ = ['mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py']
custom_imports = dict(imports=['ugs.openmmlab.runtime'], allow_failed_imports=False)
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper')
