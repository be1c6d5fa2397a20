"""Baseline 3 (Sec. 4.5.3): the cross-modal transformer of Parthasarathy & Sundaram (ICMI 2020).

The same architecture fuses video into an ASR encoder in Paraskevopoulos et
al. (ACL 2020).  Reading of the AuxFormer paper's description:

1. each modality is projected to width d (bias-free kernel-1 1-D
   convolutions, as in the other models of this benchmark) and encoded by its
   own self-attention transformer encoder (sinusoidal positions, pre-LN
   layers, final LayerNorm);
2. one cross-modal block per direction: queries from one modality's encoder
   output, keys and values from the other's (pre-LN, the queries' LayerNorm
   shared with keys/values, feed-forward d -> 4d -> d, final LayerNorm);
3. a residual connection adds each cross-modal output to the encoder output of
   its *query* modality (the sequence it is aligned with) with two learnable
   scalar weights: ``h_m = w_enc * enc_m + w_att * cross_m`` (one pair per
   direction, both initialised to 1);
4. each fused sequence is pooled over its real frames (mean, the usual
   utterance-level readout for these attribute/expression models), the two
   pooled vectors are summed, and a dense layer gives the class logits
   (CCC regression in the original papers becomes cross-entropy
   classification, as Sec. 4.5.3 says).

Attention is not causal here: the source of this baseline is not available and
neither paper describes a mask, so this is a reading (AuxFormer, baseline 1,
MulT and baseline 4 follow their released code, which masks by default).

Widths and depths are not given for this baseline, so they were chosen to
match Table 5's count while staying close to AuxFormer's implementation
settings: d = 130 with 10 heads (AuxFormer's width and heads), 3 encoder layers
per modality, 1 cross-modal layer per direction.  Count at 4 classes, audio
130, visual 4096:

* projections 130 x 130 + 4096 x 130 = 549,380
* 8 attention layers x 204,490 + 4 final LayerNorms x 260 = 1,636,960
* 4 residual scalars + dense layer 130 x 4 + 4 = 528

Total **2,186,868**, 1.12% under the paper's 2,211,628.

Dropouts follow AuxFormer's implementation settings (0.25 on stack inputs,
0.1 on attention weights, after the feed-forward ReLU and on residuals, 0.2
before the classifier).

``xmodal-xl`` (Sec. 5.4, Fig. 8) widens the transformer to d = 224 (8 heads)
and puts two hidden FC layers (1024, 1024; ReLU, dropout) before the output
layer: 7,072,712 parameters, 0.74% under the paper's 7,125,278.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import torch
from torch import nn

from avbench.models.base import AVModel, Presentation, register_model
from avbench.models.blocks import MLP, AttentionLayer, AttentionStack, Projection, attention_bias, pool_token
from avbench.validation import Divides, DropoutRate, Flag, OneOf, PositiveInt, PositiveInts

from baselines.mult import UPSCALED_KEY

CITATION = ("S. Parthasarathy and S. Sundaram, \"Training Strategies to Handle Missing Modalities for "
            "Audio-Visual Expression Recognition,\" ICMI 2020 Companion; G. Paraskevopoulos, "
            "S. Parthasarathy, A. Khare and S. Sundaram, \"Multimodal and Multiresolution Speech "
            "Recognition with Transformers,\" ACL 2020 (baseline 3 of Goncalves & Busso, IEEE TAC 2022).")
QUICK = {"d_model": 32, "heads": 4, "enc_layers": 1}
XL_QUICK = {"d_model": 32, "heads": 4, "enc_layers": 1, "head_hidden": (64, 64)}
TOKENS = ("mean", "last")


class CrossModalBlock(nn.Module):
    """Cross-modal attention layers (queries ``x``, keys/values ``kv``) and a final LayerNorm.

    Unlike :class:`~avbench.models.blocks.AttentionStack` it takes encoder outputs as they are (no
    sqrt(d) rescaling, no second set of positions).
    """

    def __init__(self, dim, heads, layers, *, attn_dropout, relu_dropout, res_dropout):
        super().__init__()
        self.layers = nn.ModuleList(
            AttentionLayer(dim, heads, attn_dropout=attn_dropout, relu_dropout=relu_dropout,
                           res_dropout=res_dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, kv, kv_lengths):
        key_bias = attention_bias(kv_lengths, kv.shape[1], x.dtype)
        for layer in self.layers:
            x = layer(x, key_bias, kv, kv)
        return self.norm(x)


class CrossModalTransformer(AVModel):
    """Per-modality encoders, cross-modal blocks with scalar-weighted residuals, summed pooled outputs.

    Args:
        num_classes, audio_dim, visual_dim: Task and feature sizes.
        d_model, heads: Width of every block and attention heads (must divide d_model).
        enc_layers: Self-attention layers of each modality encoder.
        cross_layers: Layers of each cross-modal block.
        head_hidden: Hidden FC widths before the output layer (``()``: a single dense layer).
        token: How each fused sequence is pooled: ``mean`` over real frames, or the ``last`` real frame.
        pos_enc: Sinusoidal positions in the encoders.
        embed_dropout, attn_dropout, relu_dropout, res_dropout, out_dropout: Dropout rates.
    """

    def __init__(self, num_classes: int, audio_dim: int, visual_dim: int, *, d_model: PositiveInt = 130,
                 heads: Annotated[PositiveInt, Divides("d_model")] = 10, enc_layers: PositiveInt = 3,
                 cross_layers: PositiveInt = 1, head_hidden: Annotated[tuple, PositiveInts()] = (),
                 token: Annotated[str, OneOf(*TOKENS)] = "mean", pos_enc: Flag = True,
                 embed_dropout: DropoutRate = 0.25, attn_dropout: DropoutRate = 0.1, relu_dropout: DropoutRate = 0.1,
                 res_dropout: DropoutRate = 0.1, out_dropout: DropoutRate = 0.2):
        super().__init__()
        d = d_model
        hidden = tuple(head_hidden)
        self.token = token
        self.loss_weights = {"av": 1.0}

        drop = dict(attn_dropout=attn_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout)
        self.proj_audio = Projection(audio_dim, d)
        self.proj_visual = Projection(visual_dim, d)
        self.enc_audio = AttentionStack(d, heads, enc_layers, positions=pos_enc, embed_dropout=embed_dropout, **drop)
        self.enc_visual = AttentionStack(d, heads, enc_layers, positions=pos_enc, embed_dropout=embed_dropout,
                                         **drop)
        self.cross_audio = CrossModalBlock(d, heads, cross_layers, **drop)  # queries audio, keys/values visual
        self.cross_visual = CrossModalBlock(d, heads, cross_layers, **drop)  # queries visual, keys/values audio
        # (encoder weight, attention weight) of each residual
        self.res_audio = nn.Parameter(torch.ones(2))
        self.res_visual = nn.Parameter(torch.ones(2))
        self.dropout = nn.Dropout(out_dropout)
        self.head = MLP(d, hidden, num_classes, out_dropout)

    def forward(self, audio, visual, audio_lengths, visual_lengths):
        la, lv = audio_lengths, visual_lengths
        ea = self.enc_audio(self.proj_audio(audio), la)
        ev = self.enc_visual(self.proj_visual(visual), lv)
        ha = self.res_audio[0] * ea + self.res_audio[1] * self.cross_audio(ea, ev, lv)
        hv = self.res_visual[0] * ev + self.res_visual[1] * self.cross_visual(ev, ea, la)
        z = pool_token(ha, la, self.token) + pool_token(hv, lv, self.token)
        return {"av": self.head(self.dropout(z))}


register_model("xmodal", citation=CITATION, quick=QUICK, paper_params=2_211_628, params_tolerance=0.05,
               semantics_version=2,
               description="Baseline 3: cross-modal transformer (Parthasarathy & Sundaram 2020)",
               presentation=Presentation("Baseline 3 (Cross-modal)", "B3 (X-modal)", "Baseline 3",
                                         "Baseline 3 = cross-modal transformer (Parthasarathy & Sundaram, 2020)",
                                         color="#CC79A7", marker="D", order=3))(CrossModalTransformer)  # reddish purple
register_model("xmodal-xl", citation=CITATION + " Upscaled as in Sec. 5.4.", quick=XL_QUICK,
               paper_params=7_125_278, params_tolerance=0.02, semantics_version=2,
               description="Baseline 3 upscaled to ~7M parameters (Sec. 5.4, Fig. 8): d=224, 2 hidden FC layers",
               presentation=Presentation("Upscaled Baseline 3", "B3-XL", "Upscaled B3", UPSCALED_KEY, role="upscaled",
                                         upscaled_from="xmodal", color="#F0E442", marker="*", order=7),  # yellow
               )(partial(CrossModalTransformer, d_model=224, heads=8, head_hidden=(1024, 1024)))
