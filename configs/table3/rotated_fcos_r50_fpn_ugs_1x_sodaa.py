# Table 3, row "Rotated FCOS w/ UGS": the Rotated FCOS row with the rotated IoU loss replaced by
# Eq. 16 (ugs.rotated.heads.UGSRotatedFCOSHead: the four distances in strides log-mapped onto
# the IN grid as the kit's FCOS head, alpha 3, n 16; the angle on a circular grid of 17 bins over
# pi, so the wrap at +-pi / 2 is continuous). Same recipe.
_base_ = ['./rotated_fcos_r50_fpn_1x_sodaa.py']
model = dict(
    bbox_head=dict(
        type='UGSRotatedFCOSHead', loss_bbox=None, scale_angle=False,
        ugs=dict(alpha=3.0, beta=1.0, n=16, mapping='log', lam=0.5, gamma=0.5, rho=0.5)))
