# Control for Table 1's FCOS pair (not a row of the paper): FCOS with UGS's regression
# parametrisation and FCOS's own IoU loss. UGSFCOSHead predicts a distribution over the UGS
# grid per side (4 x 17 logits, log mapping, distances in strides, expectation decoding, no
# per-level Scale); stock FCOS predicts exp(Scale(x)) pixels per side. This config keeps the
# UGS head's outputs and decoding and switches its Eq. 16 terms off (loss_weight 0: loss_ce and
# loss_um are logged as 0; gamma 0: no refinement pass), training the decoded boxes with the
# stock IoU loss, weighted by the centerness target and normalised as in FCOSHead. So
#   baseline -> control  changes only the parametrisation,
#   control  -> w/ UGS   changes only the loss.
# Same recipe as both rows.
_base_ = ['./fcos_r50_fpn_ugs_1x_visdrone.py']
model = dict(
    bbox_head=dict(
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        ugs=dict(loss_weight=0.0, gamma=0.0)))
