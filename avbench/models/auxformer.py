"""AuxFormer (Goncalves & Busso, IEEE TAC 2022), Sec. 3 and 4.3.

The main audiovisual network F_av projects the visual stream to the audio
width with a bias-free 1-D convolution, adds sinusoidal positions, fuses the
streams with two cross-modal stacks (queries of one modality, keys/values of
the other), refines each with a self-attention stack carrying learnable
scalars, and classifies the concatenated last-time-step tokens with an MLP.
Two auxiliary networks (one per modality) run their own self-attention stack
and share their FC layers.  Details the paper leaves open follow the authors'
released code as summarised in ``paper-facts.md``; with the defaults the model
has exactly 7,054,748 parameters at 4 classes, audio 130, visual 4096.
"""

from __future__ import annotations

import torch
from torch import nn

from avbench.models.base import AVModel, register_model
from avbench.models.blocks import (AttentionStack, Identity, Projection, RecurrentStack, ResidualMLP,
                                   pool_token)
from avbench.validation import check_choice, check_float, check_int, check_loss_weights

CITATION = ("L. Goncalves and C. Busso, \"Robust Audiovisual Emotion Recognition: Aligning Modalities, "
            "Capturing Temporal Information, and Handling Missing Features,\" IEEE Transactions on "
            "Affective Computing, 2022.")

SELF_ATTENTION = ("scaled", "none", "lstm", "gru")
TOKENS = ("last", "cls", "mean")
QUICK = {"d_model": 32, "heads": 4, "layers": 1, "aux_repeats": 1}


class AuxFormer(AVModel):
    """AuxFormer and its ablations (Table 3, Figs. 6-7, Table 4); ``auxiliary=False`` is baseline 1.

    Args:
        num_classes, audio_dim, visual_dim: Task and feature sizes.
        d_model: Width of the attention stacks; ``None`` keeps the audio width (130 in the paper).
        heads, layers: Attention heads and layers per stack (10 and 5 in the paper).
        embed_dropout: Dropout on each stack's input embeddings (0.25).
        attn_dropout: Dropout on attention weights of the self-attention stacks (0.1; the
            cross-modal stacks use none, as the released code).
        relu_dropout, res_dropout, out_dropout: Feed-forward, residual and MLP dropout.
        pos_enc: Add sinusoidal positions in the cross-modal stacks (Table 3 ablates it).
        self_attention: ``scaled`` (the paper), ``none``, ``lstm`` or ``gru`` (Fig. 6).
        token: Classification token: ``last`` time step, prepended ``cls``, or ``mean`` (Fig. 7).
        loss_weights: (lambda_av, lambda_a, lambda_v) of Eq. 6 (Table 4).
        auxiliary: Keep the auxiliary networks; ``False`` gives baseline 1 (F_av alone).
        aux_repeats: How many times each auxiliary stack runs with the same weights (3 in the
            released code).
    """

    def __init__(self, num_classes: int, audio_dim: int, visual_dim: int, *, d_model: int | None = None,
                 heads: int = 10, layers: int = 5, embed_dropout: float = 0.25, attn_dropout: float = 0.1,
                 relu_dropout: float = 0.1, res_dropout: float = 0.1, out_dropout: float = 0.2,
                 pos_enc: bool = True, self_attention: str = "scaled", token: str = "last",
                 loss_weights=(1 / 3, 1 / 3, 1 / 3), auxiliary: bool = True, aux_repeats: int = 3):
        super().__init__()
        owner = "AuxFormer"
        d = check_int(audio_dim if d_model is None else d_model, "d_model", owner, minimum=1)
        check_int(heads, "heads", owner, minimum=1)
        check_int(layers, "layers", owner, minimum=1)
        for n, v in (("embed_dropout", embed_dropout), ("attn_dropout", attn_dropout),
                     ("relu_dropout", relu_dropout), ("res_dropout", res_dropout), ("out_dropout", out_dropout)):
            check_float(v, n, owner, low=0.0, high=1.0, high_open=True)
        self.token = check_choice(token, "token", owner, TOKENS)
        check_choice(self_attention, "self_attention", owner, SELF_ATTENTION)
        check_choice(pos_enc, "pos_enc", owner, (True, False))
        check_choice(auxiliary, "auxiliary", owner, (True, False))
        self.aux_repeats = check_int(aux_repeats, "aux_repeats", owner, minimum=1)
        if d % heads:
            check_choice(heads, "heads", owner, [h for h in range(1, d + 1) if d % h == 0])
        lam = check_loss_weights(loss_weights, owner=owner) if auxiliary else (1.0, 0.0, 0.0)
        self.loss_weights = {"av": lam[0], "a": lam[1], "v": lam[2]} if auxiliary else {"av": 1.0}

        drop = dict(embed_dropout=embed_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout)
        self.proj_audio = Projection(audio_dim, d)
        self.proj_visual = Projection(visual_dim, d)
        if token == "cls":
            self.cls_audio = nn.Parameter(torch.zeros(d))
            self.cls_visual = nn.Parameter(torch.zeros(d))
        cross = dict(positions=pos_enc, attn_dropout=0.0, **drop)
        self.cross_v2a = AttentionStack(d, heads, layers, **cross)  # queries audio, keys/values visual
        self.cross_a2v = AttentionStack(d, heads, layers, **cross)  # queries visual, keys/values audio
        self.self_a = self._self_stack(self_attention, d, heads, layers, attn_dropout, drop)
        self.self_v = self._self_stack(self_attention, d, heads, layers, attn_dropout, drop)
        self.head = ResidualMLP(2 * d, (2 * d,), num_classes, out_dropout)
        if auxiliary:
            aux = dict(positions=False, attn_dropout=attn_dropout, **drop)
            self.aux_audio = AttentionStack(d, heads, layers, **aux)
            self.aux_visual = AttentionStack(d, heads, layers, **aux)
            self.aux_head = ResidualMLP(d, (512, 256), num_classes, out_dropout)  # shared by both

    @staticmethod
    def _self_stack(kind, d, heads, layers, attn_dropout, drop):
        if kind == "scaled":
            return AttentionStack(d, heads, layers, positions=False, attn_dropout=attn_dropout,
                                  scaled=True, **drop)
        return Identity() if kind == "none" else RecurrentStack(d, kind)

    def _prepend_cls(self, x, lengths, cls):
        return torch.cat([cls.expand(x.shape[0], 1, -1), x], dim=1), lengths + 1

    def forward(self, audio, visual, audio_lengths, visual_lengths):
        a, v = self.proj_audio(audio), self.proj_visual(visual)
        la, lv = audio_lengths, visual_lengths
        if self.token == "cls":
            a, la = self._prepend_cls(a, la, self.cls_audio)
            v, lv = self._prepend_cls(v, lv, self.cls_visual)
        za = self.self_a(self.cross_v2a(a, la, v, lv), la)
        zv = self.self_v(self.cross_a2v(v, lv, a, la), lv)
        z = torch.cat([pool_token(za, la, self.token), pool_token(zv, lv, self.token)], dim=-1)
        out = {"av": self.head(z)}
        if hasattr(self, "aux_head"):
            out["a"] = self.aux_head(pool_token(self._repeat(self.aux_audio, a, la), la, self.token))
            out["v"] = self.aux_head(pool_token(self._repeat(self.aux_visual, v, lv), lv, self.token))
        return out

    def _repeat(self, stack, x, lengths):
        for _ in range(self.aux_repeats):
            x = stack(x, lengths)
        return x


register_model("auxformer", citation=CITATION, quick=QUICK, paper_params=7_054_748,
               description="AuxFormer: cross-modal transformer with auxiliary networks (the proposed model)")(AuxFormer)
