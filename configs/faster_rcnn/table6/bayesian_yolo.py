# Table 6, row "Bayesian YOLO [25]" (Kraus & Dietmayer, ITSC 2019): the R-CNN box head predicts
# a mean and a log-variance per delta and is trained with the Gaussian negative log-likelihood
# (ugs.baselines.gaussian_nll through ugs.openmmlab.gaussian_head.GaussianShared2FCBBoxHead);
# boxes are decoded from the means. The RPN keeps the L2 baseline's loss: the uncertainty of
# Bayesian YOLO is that of the final detections, and a proposal's variance would never be used.
_base_ = ['./l2_baseline.py']
model = dict(
    roi_head=dict(bbox_head=dict(
        type='GaussianShared2FCBBoxHead',
        loss_bbox=dict(_delete_=True, type='GaussianNLLLoss', loss_weight=1.0))))
