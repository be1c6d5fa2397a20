"""Baseline 2 (Sec. 4.5.2): MulT (Tsai et al., ACL 2019) with the text branch removed.

MulT reinforces each *target* modality with a crossmodal transformer whose
queries come from the target and whose keys/values come from a *source*
modality, then runs a self-attention "memory" transformer per target and
classifies the concatenated last-time-step states with a residual MLP.  With
text gone, the six crossmodal transformers become two (visual -> audio and
audio -> visual) and each memory stack sees one crossmodal output, so it keeps
the width d (MulT's memory stacks are 2d wide only because they concatenate
two crossmodal outputs).

Structure and defaults, following MulT's reference implementation:

* both streams projected to d = 30 by bias-free kernel-1 1-D convolutions
  (130 -> 30: 3,900; 4096 -> 30: 122,880);
* sinusoidal positions (fairseq's table, as AuxFormer's) and sqrt(d) input
  scaling in every stack (MulT adds positions in the memory stacks as well);
* causal attention masks in every stack (MulT's ``--attn_mask`` defaults to
  true, as AuxFormer's code does); a projection is skipped when a stream
  already has width d (MulT's code keeps the unused weight);
* two crossmodal and two memory stacks, 5 layers of width 30 each, FFN
  30 -> 120 -> 30, pre-LN, a final LayerNorm per stack (56,010 each);
* heads = 5 (MulT's default; 5 divides 30, 6 dims per head);
* last time step (of the real frames) of each memory stack, concatenated
  (60), then ``out(h + fc2(relu(fc1(h))))`` with fc1, fc2: 60 -> 60
  (:class:`~avbench.models.blocks.ResidualMLP` with hidden ``(60,)``): 7,564
  at 4 classes;
* dropouts as MulT's defaults: attention weights 0.1 in the memory stacks and
  0.0 in the crossmodal stacks (``attn_dropout_a``/``attn_dropout_v``), 0.1
  after the feed-forward ReLU, 0.1 on residuals, 0.0 on the output MLP.  The
  embedding dropout is 0.25 (MulT's code defaults to 0.2 and tunes it per
  corpus; 0.25 is the value AuxFormer's authors use for their own stacks).

Total: 126,780 + 4 x 56,010 + 7,564 = **358,384** parameters at 4 classes,
audio 130, visual 4096, exactly Table 5's count.

``mult-xl`` (Sec. 5.4, Fig. 8) widens the transformer (d = 150, 10 heads) and
the output MLP (hidden layers 300 -> 1024 -> 512 -> 300): 7,062,228
parameters, 0.12% under the paper's 7,070,406.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import torch

from avbench.models.base import AVModel, Presentation, register_model
from avbench.models.blocks import AttentionStack, Projection, ResidualMLP, pool_token
from avbench.validation import Divides, DropoutRate, Flag, NoneOr, PositiveInt, PositiveInts

CITATION = ("Y.-H. H. Tsai, S. Bai, P. P. Liang, J. Z. Kolter, L.-P. Morency and R. Salakhutdinov, "
            "\"Multimodal Transformer for Unaligned Multimodal Language Sequences,\" ACL 2019 "
            "(text branch removed, as baseline 2 of Goncalves & Busso, IEEE TAC 2022).")
QUICK = {"layers": 1}
UPSCALED_KEY = "Upscaled B2/B3 = baselines 2/3 widened to about 7M parameters"
XL_QUICK = {"d_model": 32, "heads": 4, "layers": 1, "head_hidden": (64,)}


class MulT(AVModel):
    """Two-modality MulT.

    Args:
        num_classes, audio_dim, visual_dim: Task and feature sizes.
        d_model: Width of every stack (30 in MulT).
        heads: Attention heads; must divide ``d_model`` (5).
        layers: Layers per crossmodal and memory stack (5).
        head_hidden: Hidden widths of the residual output MLP, which returns to 2 x d_model before
            the output layer; ``None`` is MulT's ``(2 * d_model,)``.
        embed_dropout, attn_dropout, cross_attn_dropout, relu_dropout, res_dropout, out_dropout:
            Dropout on stack inputs, on attention weights of the memory / crossmodal stacks, after the
            feed-forward ReLU, on residual branches, and in the output MLP.
        causal: Causal attention masks in every stack (MulT's default).
    """

    def __init__(self, num_classes: int, audio_dim: int, visual_dim: int, *, d_model: PositiveInt = 30,
                 heads: Annotated[PositiveInt, Divides("d_model")] = 5, layers: PositiveInt = 5,
                 head_hidden: Annotated[tuple | None, NoneOr(PositiveInts())] = None,
                 embed_dropout: DropoutRate = 0.25, attn_dropout: DropoutRate = 0.1,
                 cross_attn_dropout: DropoutRate = 0.0, relu_dropout: DropoutRate = 0.1, res_dropout: DropoutRate = 0.1,
                 out_dropout: DropoutRate = 0.0, causal: Flag = True):
        super().__init__()
        d = d_model
        hidden = (2 * d,) if head_hidden is None else tuple(head_hidden)
        self.loss_weights = {"av": 1.0}

        drop = dict(positions=True, embed_dropout=embed_dropout, relu_dropout=relu_dropout,
                    res_dropout=res_dropout, causal=causal)
        self.proj_audio = Projection(audio_dim, d, bypass=True)
        self.proj_visual = Projection(visual_dim, d, bypass=True)
        self.cross_v2a = AttentionStack(d, heads, layers, attn_dropout=cross_attn_dropout, **drop)  # target audio
        self.cross_a2v = AttentionStack(d, heads, layers, attn_dropout=cross_attn_dropout, **drop)  # target visual
        self.mem_audio = AttentionStack(d, heads, layers, attn_dropout=attn_dropout, **drop)
        self.mem_visual = AttentionStack(d, heads, layers, attn_dropout=attn_dropout, **drop)
        self.head = ResidualMLP(2 * d, hidden, num_classes, out_dropout)

    def forward(self, audio, visual, audio_lengths, visual_lengths):
        a, v = self.proj_audio(audio), self.proj_visual(visual)
        la, lv = audio_lengths, visual_lengths
        ha = self.mem_audio(self.cross_v2a(a, la, v, lv), la)
        hv = self.mem_visual(self.cross_a2v(v, lv, a, la), lv)
        z = torch.cat([pool_token(ha, la, "last"), pool_token(hv, lv, "last")], dim=-1)
        return {"av": self.head(z)}


register_model("mult", citation=CITATION, quick=QUICK, paper_params=358_384, params_tolerance=0.0, semantics_version=2,
               description="Baseline 2: MulT with the text branch removed (2 crossmodal transformers)",
               presentation=Presentation("Baseline 2 (MulT)", "B2 (MulT)", "Baseline 2",
                                         "Baseline 2 = MulT (Tsai et al., 2019) without its text branch",
                                         color="#009E73", marker="^", order=2))(MulT)  # Okabe-Ito bluish green
register_model("mult-xl", citation=CITATION + " Upscaled as in Sec. 5.4.", quick=XL_QUICK,
               paper_params=7_070_406, params_tolerance=0.02, semantics_version=2,
               description="Baseline 2 upscaled to ~7M parameters (Sec. 5.4, Fig. 8): d=150, wider MLP",
               presentation=Presentation("Upscaled Baseline 2", "B2-XL", "Upscaled B2", UPSCALED_KEY, role="upscaled",
                                         upscaled_from="mult", color="#56B4E9", marker="X", order=6),  # sky blue
               )(partial(MulT, d_model=150, heads=10, head_hidden=(1024, 512)))
