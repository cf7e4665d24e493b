# Table 1, row "DINO-5scale w/ UGS": the DINO-5scale row with the box regression replaced by
# UGS (ugs/openmmlab/dino_head.py): every reg branch gives 17 logits per coordinate over the
# IN grid (alpha 4, beta 1.0, n 16) and returns their expectation, so the matcher, the
# iterative refinement and inference are unchanged; Eq. 10 + lambda Eq. 12 replace DINO's L1
# term on the matched queries of every decoder layer, the encoder's top-k proposals and the
# denoising queries (GIoU kept); the refinement step (Eq. 14-15) perturbs the 5 encoder input
# levels. lambda = gamma = rho = 0.5 (Table 6's best row). Same recipe.
_base_ = ['./dino_5scale_r50_24e_visdrone.py']
model = dict(
    type='UGSDINO',
    bbox_head=dict(
        type='UGSDINOHead',
        ugs=dict(alpha=4.0, beta=1.0, n=16, lam=0.5, gamma=0.5, rho=0.5)))
