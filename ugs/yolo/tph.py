"""TPH-YOLOv5 (Zhu, Lyu, Wang, Zhao: "TPH-YOLOv5: Improved YOLOv5 Based on Transformer Prediction
Head for Object Detection on Drone-captured Scenarios", ICCV Workshops 2021) as mmyolo modules.

What the paper describes, and what the kit builds (sources: the paper's Sec. 3 and Fig. 3-5; the
authors' model file ``models/yolov5l-xs-tr-cbam-spp-bifpn.yaml`` of cv516Buaa/tph-yolov5, the one
of their three files that has every part the paper names; NOTES.md section 6):

* **Backbone**: YOLOv5 v6's CSP-Darknet (P5 layout), its last C3 replaced by a **C3TR**, a C3
  whose bottleneck stack is a transformer encoder (4 heads), then SPPF; outputs P2-P5 (strides
  4, 8, 16, 32): :class:`TPHCSPDarknet`.
* **Neck** (:class:`TPHPAFPN`): YOLOv5's PANet with a fourth, P2 level for tiny objects. The
  top-down path goes P5 -> P2; the bottom-up path concatenates, at P3 and P4, the downsampled
  output with the top-down lateral *and* the backbone feature of that level (BiFPN-like), and
  at P5 with the top-down lateral. Every output is SPP -> C3 (C3TR at P5) -> **CBAM**; the SPP
  kernels are the model file's ((5, 9, 13) at P2 / P3, (3, 7, 11) at P4, (3, 5, 7) at P5).
* **Head**: four YOLOv5 prediction heads (mmyolo's ``YOLOv5HeadModule`` with 4 levels), 4
  anchors per level.

Block choices (the paper's figure and the repository's current code agree; YOLOv5's own C3TR
differs): the transformer layer is pre-LayerNorm (LayerNorm -> multi-head attention -> dropout ->
residual; LayerNorm -> MLP of 4x width with ReLU -> dropout -> residual; dropout 0.1), with
separate bias-free q / k / v projections before the attention and a learnable position
embedding (a linear map of the tokens added to them) at the start of each block. CBAM is
mmyolo's own ``CBAM`` (channel attention: one MLP with biases, reduction 16, ReLU, on the
average- and max-pooled channels, summed, sigmoid; then spatial attention: a 7x7 convolution
with bias over the channel mean and max, sigmoid), the same computation as the authors'
module. Channel and depth multipliers follow YOLOv5 (``make_divisible``
by 8, ``round(n * depth)``); x scale is depth 1.33, width 1.25 (no x file is published; NOTES 6).

The repository's README model (``yolov5l-xs-tph.yaml``: Swin-style blocks, no CBAM) is not built.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.layers import CSPLayer
from mmengine.model import BaseModule
from mmyolo.models.backbones import YOLOv5CSPDarknet
from mmyolo.models.layers import SPPFBottleneck
from mmyolo.models.plugins import CBAM
from mmyolo.models.utils import make_divisible, make_round
from mmyolo.registry import MODELS

__all__ = ["TransformerEncoderLayer", "TransformerBlock", "C3TR", "TPHCSPDarknet", "TPHPAFPN"]

NORM = dict(type="BN", momentum=0.03, eps=0.001)
ACT = dict(type="SiLU", inplace=True)


class TransformerEncoderLayer(nn.Module):
    """Pre-LN encoder layer on ``(L, B, C)`` tokens: ``x + drop(MHA(q(ln1 x), k(ln1 x), v(ln1 x)))``,
    then ``x + drop(fc2(drop(relu(fc1(ln2 x)))))``, ``fc1`` to ``4C``; all projections without bias
    except the attention's own."""

    def __init__(self, channels: int, num_heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, channels, bias=False)
        self.k = nn.Linear(channels, channels, bias=False)
        self.v = nn.Linear(channels, channels, bias=False)
        self.attn = nn.MultiheadAttention(channels, num_heads)
        self.ln2 = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, 4 * channels, bias=False)
        self.fc2 = nn.Linear(4 * channels, channels, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln1(x)
        x = x + self.drop(self.attn(self.q(y), self.k(y), self.v(y), need_weights=False)[0])
        y = self.fc2(self.drop(torch.relu(self.fc1(self.ln2(x)))))
        return x + self.drop(y)


class TransformerBlock(nn.Module):
    """A feature map through ``num_layers`` encoder layers: a 1x1 conv first when the channel
    count changes, the ``H * W`` positions as tokens, a learnable position embedding (a linear
    map of the tokens, added to them)."""

    def __init__(self, in_channels: int, out_channels: int, num_heads: int, num_layers: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = (ConvModule(in_channels, out_channels, 1, norm_cfg=NORM, act_cfg=ACT)
                     if in_channels != out_channels else None)
        self.pos = nn.Linear(out_channels, out_channels)
        self.layers = nn.Sequential(*(TransformerEncoderLayer(out_channels, num_heads, dropout)
                                      for _ in range(num_layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        b, c, h, w = x.shape
        tokens = x.flatten(2).permute(2, 0, 1)                  # (H*W, B, C)
        tokens = self.layers(tokens + self.pos(tokens))
        return tokens.permute(1, 2, 0).reshape(b, c, h, w)


@MODELS.register_module()
class C3TR(CSPLayer):
    """YOLOv5's C3 (mmdet's ``CSPLayer``: main and short 1x1 convs, the main branch through the
    blocks, concatenation, a final 1x1 conv) with the bottleneck stack replaced by a
    :class:`TransformerBlock` of ``num_blocks`` layers on the hidden channels (4 heads)."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int = 1, num_heads: int = 4,
                 expand_ratio: float = 0.5, dropout: float = 0.1, norm_cfg=NORM, act_cfg=ACT, **kwargs) -> None:
        super().__init__(in_channels, out_channels, expand_ratio=expand_ratio, num_blocks=1,
                         add_identity=False, norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs)
        mid = int(out_channels * expand_ratio)
        self.blocks = TransformerBlock(mid, mid, num_heads, num_blocks, dropout)


@MODELS.register_module()
class TPHCSPDarknet(YOLOv5CSPDarknet):
    """YOLOv5 v6's CSP-Darknet (P5) with the last stage's C3 replaced by a :class:`C3TR` (same
    depth), then SPPF; by default it returns P2-P5 (strides 4-32)."""

    def __init__(self, *args, out_indices=(1, 2, 3, 4), num_heads: int = 4, dropout: float = 0.1, **kwargs) -> None:
        self.num_heads, self.dropout = num_heads, dropout
        super().__init__(*args, arch="P5", out_indices=out_indices, **kwargs)

    def build_stage_layer(self, stage_idx: int, setting: list) -> list:
        stage = super().build_stage_layer(stage_idx, setting)
        if stage_idx == len(self.arch_setting) - 1:
            _, out_channels, num_blocks, _, _ = setting
            ch = make_divisible(out_channels, self.widen_factor)
            stage[1] = C3TR(ch, ch, num_blocks=make_round(num_blocks, self.deepen_factor),
                            num_heads=self.num_heads, dropout=self.dropout, norm_cfg=self.norm_cfg,
                            act_cfg=self.act_cfg)
        return stage


@MODELS.register_module()
class TPHPAFPN(BaseModule):
    """TPH-YOLOv5's four-level neck (see the module docstring), channels at l scale
    ``in_channels = [128, 256, 512, 1024]`` (P2-P5) multiplied by ``widen_factor``, each C3 /
    C3TR of ``round(3 * deepen_factor)`` blocks. Returns P2-P5 with the input channel counts."""

    SPP_KERNELS = ((5, 9, 13), (5, 9, 13), (3, 7, 11), (3, 5, 7))

    def __init__(self, in_channels: Sequence[int] = (128, 256, 512, 1024), deepen_factor: float = 1.0,
                 widen_factor: float = 1.0, num_csp_blocks: int = 3, num_heads: int = 4, dropout: float = 0.1,
                 norm_cfg=NORM, act_cfg=ACT, init_cfg=None) -> None:
        super().__init__(init_cfg)
        if len(in_channels) != 4:
            raise ValueError(f"TPHPAFPN: in_channels must list 4 levels (P2-P5), got {list(in_channels)}")
        c = [make_divisible(ch, widen_factor) for ch in in_channels]
        n = make_round(num_csp_blocks, deepen_factor)

        def conv(i, o, k=1, s=1):
            return ConvModule(i, o, k, stride=s, padding=k // 2, norm_cfg=norm_cfg, act_cfg=act_cfg)

        def c3(i, o):
            return CSPLayer(i, o, num_blocks=n, add_identity=False, norm_cfg=norm_cfg, act_cfg=act_cfg)

        # top-down: P5 -> P4 -> P3 -> P2; lateral[l] is the 1x1 conv whose output goes up a level
        self.lateral = nn.ModuleList([conv(c[3], c[2]), conv(c[2], c[1]), conv(c[1], c[0])])
        self.top_down = nn.ModuleList([c3(2 * c[2], c[2]), c3(2 * c[1], c[1])])
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        # outputs: SPP -> C3 (C3TR at P5) -> CBAM; P2's input is [up(lateral P3), backbone P2]
        self.down = nn.ModuleList([conv(c[0], c[0], 3, 2), conv(c[1], c[1], 3, 2), conv(c[2], c[2], 3, 2)])
        spp_in = [2 * c[0], c[0] + c[0] + c[1], c[1] + c[1] + c[2], c[2] + c[2]]
        self.spp = nn.ModuleList([SPPFBottleneck(i, o, kernel_sizes=k, norm_cfg=norm_cfg, act_cfg=act_cfg)
                                  for i, o, k in zip(spp_in, c, self.SPP_KERNELS)])
        self.csp = nn.ModuleList([c3(c[0], c[0]), c3(c[1], c[1]), c3(c[2], c[2]),
                                  C3TR(c[3], c[3], num_blocks=n, num_heads=num_heads, dropout=dropout,
                                       norm_cfg=norm_cfg, act_cfg=act_cfg)])
        self.cbam = nn.ModuleList([CBAM(ch) for ch in c])

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple:
        p2, p3, p4, p5 = inputs
        t5 = self.lateral[0](p5)                                                    # 1024 -> 512
        t4 = self.lateral[1](self.top_down[0](torch.cat([self.upsample(t5), p4], 1)))
        t3 = self.lateral[2](self.top_down[1](torch.cat([self.upsample(t4), p3], 1)))
        outs: List[torch.Tensor] = []
        x = torch.cat([self.upsample(t3), p2], 1)
        for level, extra in enumerate([None, (t3, p3), (t4, p4), (t5,)]):
            if level:
                x = torch.cat([self.down[level - 1](outs[-1]), *extra], 1)
            x = self.cbam[level](self.csp[level](self.spp[level](x)))
            outs.append(x)
        return tuple(outs)
