"""Baseline 4 (Sec. 4.5.4, Fig. 2): the unimodal framework, audio-only and visual-only.

One modality in; the cross-modal attention of AuxFormer is gone.  Two networks
share the projected input:

* the main network: self-attention stacks with learnable scaling (AuxFormer's
  scaled stacks, ``alpha * residual + (1 - alpha) * sublayer``), the first
  with sinusoidal positions (the role of Eq. 1 in the fusion block), then the
  last-time-step token and an MLP d -> d -> d -> classes with a residual
  (AuxFormer's output MLP at the width of one stream);
* the auxiliary network: AuxFormer's auxiliary network for that modality, one
  self-attention stack run three times with the same weights, its token and
  the residual FC layers d -> 512 -> 256 -> d -> classes.

Training uses the two cross-entropies equally weighted (``loss_weights`` 1/2,
1/2); at inference :meth:`UnimodalAuxNet.predict` averages the two outputs'
*logits* ("the networks' outputs are equally averaged during inference",
Sec. 4.5.4, read as AuxFormer's released ``test.py`` averages its heads), and
model selection uses the cross-entropy of that average.  Attention is causal
by default and the projection is skipped when the input already has width d
(the weight is kept), as in AuxFormer, from which this model is derived.

How many scaled stacks?  The paper gives only the count (Table 5:
4,364,354) and says the model is "directly derived" from AuxFormer.  At d =
130 (AuxFormer's width, 10 heads, 5 layers), a plain stack has 1,022,710
parameters and a scaled one 1,022,715.  The audio model with three scaled
stacks in the main network is the reading that lands on the count:

* audio projection 130 x 130 (bias-free conv, as AuxFormer):   16,900
* main network, 3 scaled stacks:                            3,068,145
* main MLP 130 -> 130 -> 130 -> 4:                             34,584
* auxiliary stack (run 3 times):                            1,022,710
* auxiliary FC layers 130 -> 512 -> 256 -> 130 -> 4:          232,334

Total **4,374,673**, 0.24% over the paper's 4,364,354, so Table 5's count is
the *audio-only* model's.  The visual-only model has the same structure with
the 4096 -> 130 projection (532,480): 4,890,253 parameters (no visual
count is reported; with 1 or 2 main stacks no visual reading comes within 5%
either: 3,867,538 with two).  Readings with fewer main stacks miss the audio
count by 23% (one plain + one scaled stack: 3,351,953).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from avbench.models.auxformer import CITATION as AUXFORMER_CITATION
from avbench.models.base import AVModel, Presentation, register_model
from avbench.models.blocks import AttentionStack, Projection, ResidualMLP, pool_token
from avbench.validation import Divides, DropoutRate, Flag, OneOf, PositiveInt, Weights

TOKENS = ("last", "mean")
BASELINE4_KEY = "Baseline 4 = unimodal model of the modality left (A: acoustic, V: visual)"
QUICK = {"d_model": 32, "heads": 4, "layers": 1, "aux_repeats": 1}


class UnimodalAuxNet(AVModel):
    """Baseline 4 for one modality; the other modality's inputs are never read.

    Args:
        num_classes, audio_dim, visual_dim: Task and feature sizes (only the used modality's matters).
        d_model, heads, layers: Width (130), heads (10) and layers per stack (5), as AuxFormer.
        self_stacks: Scaled self-attention stacks of the main network (3, see the module docstring).
        aux_repeats: Passes of the auxiliary stack with the same weights (3, as AuxFormer's code).
        pos_enc: Sinusoidal positions in the first main stack.
        token: ``last`` real frame (the paper) or ``mean`` over real frames.
        loss_weights: (main, auxiliary) loss weights; the paper weighs them equally.
        embed_dropout, attn_dropout, relu_dropout, res_dropout, out_dropout: AuxFormer's rates.
        causal: Causal attention masks in every stack (AuxFormer's default).
    """

    modality = ""  # set by the subclasses below

    def __init__(self, num_classes: int, audio_dim: int, visual_dim: int, *, d_model: PositiveInt = 130,
                 heads: Annotated[PositiveInt, Divides("d_model")] = 10, layers: PositiveInt = 5,
                 self_stacks: PositiveInt = 3, aux_repeats: PositiveInt = 3, pos_enc: Flag = True,
                 token: Annotated[str, OneOf(*TOKENS)] = "last",
                 loss_weights: Annotated[tuple, Weights(2)] = (0.5, 0.5), embed_dropout: DropoutRate = 0.25, attn_dropout: DropoutRate = 0.1, relu_dropout: DropoutRate = 0.1,
                 res_dropout: DropoutRate = 0.1, out_dropout: DropoutRate = 0.2, causal: Flag = True):
        super().__init__()
        modality = self.modality
        d = d_model
        self.aux_repeats = aux_repeats
        self.token = token
        self.loss_weights = dict(zip(("main", "aux"), map(float, loss_weights)))  # (main, auxiliary)

        drop = dict(embed_dropout=embed_dropout, attn_dropout=attn_dropout, relu_dropout=relu_dropout,
                    res_dropout=res_dropout, causal=causal)
        self.proj = Projection(audio_dim if modality == "audio" else visual_dim, d, bypass=True)
        self.main = nn.ModuleList(
            AttentionStack(d, heads, layers, positions=pos_enc and i == 0, scaled=True, **drop)
            for i in range(self_stacks))
        self.head = ResidualMLP(d, (d,), num_classes, out_dropout)
        self.aux = AttentionStack(d, heads, layers, positions=False, **drop)
        self.aux_head = ResidualMLP(d, (512, 256), num_classes, out_dropout)

    def forward(self, audio, visual, audio_lengths, visual_lengths):
        x, lengths = (audio, audio_lengths) if self.modality == "audio" else (visual, visual_lengths)
        x = self.proj(x)
        h = x
        for stack in self.main:
            h = stack(h, lengths)
        g = x
        for _ in range(self.aux_repeats):
            g = self.aux(g, lengths)
        return {"main": self.head(pool_token(h, lengths, self.token)),
                "aux": self.aux_head(pool_token(g, lengths, self.token))}

    def predict(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean of the two networks' logits."""
        return (outputs["main"] + outputs["aux"]) / 2


def _citation(modality: str) -> str:
    return AUXFORMER_CITATION + f" Baseline 4 ({modality}-only unimodal framework, Sec. 4.5.4, Fig. 2)."


class UnimodalAudio(UnimodalAuxNet):
    modality = "audio"


class UnimodalVisual(UnimodalAuxNet):
    modality = "visual"


register_model("unimodal-audio", modalities=("audio",), citation=_citation("audio"), quick=QUICK,
               paper_params=4_364_354, params_tolerance=0.05, semantics_version=2,
               description="Baseline 4, audio only: auxiliary network + scaled self-attention, outputs averaged",
               presentation=Presentation("Baseline 4 (acoustic)", "B4 (A)", "Baseline 4 (A)", BASELINE4_KEY,
                                         color="#009E73", marker="v", order=4),  # Okabe-Ito bluish green
               )(UnimodalAudio)
register_model("unimodal-visual", modalities=("visual",), citation=_citation("visual"), quick=QUICK, semantics_version=2,
               description="Baseline 4, visual only: auxiliary network + scaled self-attention, outputs averaged",
               presentation=Presentation("Baseline 4 (visual)", "B4 (V)", "Baseline 4 (V)", BASELINE4_KEY,
                                         color="#E69F00", marker="P", order=5),  # Okabe-Ito orange
               )(UnimodalVisual)
