# Table 6, row "Gradient Clipping": the L2 baseline (both stages) trained with the gradient
# clipped to ||grad||_2 <= 1.0 (Sec. 4.8: "gradient clipping (||grad|| <= 1.0)"). The paper does
# not say which gradient; this clips the global L2 norm over all parameters of the total loss
# before every SGD step (mmengine's clip_grad -> torch.nn.utils.clip_grad_norm_), the
# standard detector recipe.
_base_ = ['./l2_baseline.py']
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))
