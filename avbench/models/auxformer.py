"""AuxFormer (Goncalves & Busso, IEEE TAC 2022), Sec. 3 and 4.3.

The main audiovisual network F_av projects the visual stream to the audio
width with a bias-free 1-D convolution, adds sinusoidal positions, fuses the
streams with two cross-modal stacks (queries of one modality, keys/values of
the other), refines each with a self-attention stack carrying learnable
scalars, and classifies the concatenated last-time-step tokens with an MLP.
Two auxiliary networks (one per modality) run their own self-attention stack
and share their FC layers.  Details the paper leaves open follow the authors'
released code (``net/avmodel_AF.py``, ``modules/transformer.py``) as
summarised in ``paper-facts.md``: causal attention in every stack, fairseq
positions in the cross-modal stacks, the audio projection skipped when the
audio already has the model width, and the prediction is the mean of the
three heads' logits (released ``test.py``); with the defaults the model has
exactly 7,054,748 parameters at 4 classes, audio 130, visual 4096.
:func:`from_official` loads a state dict saved by the released code.
docs/fidelity.md lists what still differs, and why.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Mapping

import torch
from torch import nn

from avbench.models.base import AVModel, Presentation, create_model, register_model
from avbench.models.blocks import (AttentionStack, Identity, Projection, RecurrentStack, ResidualMLP,
                                   pool_token)
from avbench.validation import (Divides, DropoutRate, Flag, Interval, NoneOr, OneOf, PositiveInt, ValidationError,
                                Weights)

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
        loss_weights: (lambda_av, lambda_a, lambda_v) of Eq. 6 (Table 4); training only: the
            prediction always averages the three heads.
        auxiliary: Keep the auxiliary networks; ``False`` gives baseline 1 (F_av alone).
        aux_repeats: How many times each auxiliary stack runs with the same weights (3 in the
            released code).
        causal: Causal attention masks in every stack (the released code's default).
    """

    def __init__(self, num_classes: int, audio_dim: int, visual_dim: int, *,
                 d_model: Annotated[int | None, NoneOr(Interval(int, 1, None))] = None,
                 heads: Annotated[PositiveInt, Divides("d_model", "audio_dim")] = 10, layers: PositiveInt = 5,
                 embed_dropout: DropoutRate = 0.25, attn_dropout: DropoutRate = 0.1, relu_dropout: DropoutRate = 0.1,
                 res_dropout: DropoutRate = 0.1, out_dropout: DropoutRate = 0.2, pos_enc: Flag = True,
                 self_attention: Annotated[str, OneOf(*SELF_ATTENTION)] = "scaled",
                 token: Annotated[str, OneOf(*TOKENS)] = "last",
                 loss_weights: Annotated[tuple, Weights(3)] = (1 / 3, 1 / 3, 1 / 3), auxiliary: Flag = True,
                 aux_repeats: PositiveInt = 3, causal: Flag = True):
        super().__init__()
        d = audio_dim if d_model is None else d_model
        self.token = token
        self.aux_repeats = aux_repeats
        self.loss_weights = dict(zip(("av", "a", "v"), map(float, loss_weights))) if auxiliary else {"av": 1.0}

        drop = dict(embed_dropout=embed_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout,
                    causal=causal)
        # the released code always holds the audio projection (unused when audio_dim == d) and has
        # none for a visual stream already at width d (its release setting)
        self.proj_audio = Projection(audio_dim, d, bypass=True)
        if visual_dim != d:
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
        """The self-attention stack of one stream, or its Fig. 6 replacement."""
        if kind == "scaled":
            return AttentionStack(d, heads, layers, positions=False, attn_dropout=attn_dropout,
                                  scaled=True, **drop)
        return Identity() if kind == "none" else RecurrentStack(d, kind)

    def _prepend_cls(self, x, lengths, cls):
        return torch.cat([cls.expand(x.shape[0], 1, -1), x], dim=1), lengths + 1

    def forward(self, audio, visual, audio_lengths, visual_lengths):
        a = self.proj_audio(audio)
        v = self.proj_visual(visual) if hasattr(self, "proj_visual") else visual
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

    def predict(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean of the heads' logits: ``(av + a + v) / 3`` (released ``test.py``), ``av`` for baseline 1.

        Model selection uses the cross-entropy of this average too; the loss
        weights of Eq. 6 act in training only, which is why Table 4's
        (0.00, 0.50, 0.50) still predicts well.
        """
        return torch.stack(list(outputs.values())).mean(0)


# --- weights saved by the released code -----------------------------------------------------
_OFFICIAL_BLOCKS = {"conv_1d_a": "proj_audio.conv", "conv_1d_v": "proj_visual.conv",
                    "trans_a_with_v": "cross_v2a", "trans_v_with_a": "cross_a2v",
                    "trans_a_mem": "self_a", "trans_v_mem": "self_v", "a_mem": "aux_audio", "v_mem": "aux_visual",
                    "proj_aux1": "aux_head.hidden.0", "proj_aux2": "aux_head.hidden.1",
                    "proj_aux3": "aux_head.hidden.2", "out_layer_aux": "aux_head.out",
                    "proj1": "head.hidden.0", "proj2": "head.hidden.1", "out_layer": "head.out"}
_OFFICIAL_LAYER = {"self_attn.in_proj_weight": "attn.in_proj.weight", "self_attn.in_proj_bias": "attn.in_proj.bias",
                   "self_attn.out_proj.weight": "attn.out_proj.weight",
                   "self_attn.out_proj.bias": "attn.out_proj.bias",
                   "layer_norms.0.weight": "norm_attn.weight", "layer_norms.0.bias": "norm_attn.bias",
                   "layer_norms.1.weight": "norm_ffn.weight", "layer_norms.1.bias": "norm_ffn.bias",
                   "fc1.weight": "fc1.weight", "fc1.bias": "fc1.bias", "fc2.weight": "fc2.weight",
                   "fc2.bias": "fc2.bias", "alpha": "alpha"}
_OFFICIAL_STACK = {"layer_norm.weight": "norm.weight", "layer_norm.bias": "norm.bias"}
_OFFICIAL_BUFFERS = ("version", "embed_positions._float_tensor")  # stored by the released encoder, not weights


def official_key(key: str) -> str | None:
    """The avbench name of a released-code state-dict key; None for a buffer it ignores, and the
    key itself (which then fails the match) when it is not part of the released model."""
    block, _, rest = key.partition(".")
    if block not in _OFFICIAL_BLOCKS:
        return key
    target = _OFFICIAL_BLOCKS[block]
    if block.startswith(("trans_", "a_mem", "v_mem")):
        if rest in _OFFICIAL_BUFFERS:
            return None
        if rest in _OFFICIAL_STACK:
            return f"{target}.{_OFFICIAL_STACK[rest]}"
        m = re.fullmatch(r"layers\.(\d+)\.(.+)", rest)
        if m and m.group(2) in _OFFICIAL_LAYER:
            return f"{target}.layers.{m.group(1)}.{_OFFICIAL_LAYER[m.group(2)]}"
        return key
    return f"{target}.{rest}"


def official_shape(state_dict: Mapping[str, Any]) -> dict[str, int]:
    """The width and depth of a released-code state dict: ``{"d_model": ..., "layers": ...}``.

    Read from ``proj1`` (a ``2d x 2d`` layer) and the highest ``trans_a_mem`` layer: the released
    code records neither elsewhere, and ``avbench run --weights`` builds its units from them too.

    Raises:
        ValidationError: when the keys that tell them are missing (not a released state dict).
    """
    if "proj1.weight" not in state_dict:
        raise ValidationError("from_official: the state dict has no 'proj1.weight', so it is not one of the "
                              "released net/avmodel_AF.py.")
    layer_ids = {int(m.group(1)) for k in state_dict if (m := re.match(r"trans_a_mem\.layers\.(\d+)\.", k))}
    if not layer_ids:
        raise ValidationError("from_official: the state dict has no 'trans_a_mem.layers.*' keys.")
    return {"d_model": int(state_dict["proj1.weight"].shape[0]) // 2, "layers": max(layer_ids) + 1}


def from_official(state_dict: Mapping[str, Any], *, num_classes: int, audio_dim: int, visual_dim: int,
                  heads: int = 10) -> AuxFormer:
    """An AuxFormer holding the weights of a state dict of the released ``net/avmodel_AF.py``.

    The authors publish no trained weights; this serves users who trained with the released
    code, and parity checks.  The width and depth are read from the state dict; the released
    setting is audio 1024 -> 50 (``conv_1d_a``), visual 50 (no visual projection), 10 heads,
    5 layers.  For the paper setting (visual 4096 -> 130), which the released code lacks, the
    visual projection is expected as ``conv_1d_v.weight``, a bias-free ``Conv1d(visual_dim, d, 1)``.

    Args:
        state_dict: A mapping of tensors, or the path of a checkpoint ``torch.save`` wrote
            (``final_head.pt``); loaded with ``weights_only=True``.
        num_classes, audio_dim, visual_dim: Task and feature sizes.
        heads: Attention heads (not recorded in a state dict).

    Raises:
        ValidationError: naming every missing, extra or misshaped key, or a ``heads`` that does not
            divide the width.
    """
    if isinstance(state_dict, (str, bytes)) or hasattr(state_dict, "__fspath__"):
        state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, Mapping):
        raise ValidationError(f"from_official needs a state dict (a mapping of tensors). "
                              f"Got {type(state_dict).__name__} instead.")
    found = official_shape(state_dict)
    d, layers = found["d_model"], found["layers"]
    shape = dict(num_classes=num_classes, audio_dim=audio_dim, visual_dim=visual_dim, heads=heads, **found)
    with torch.device("meta"):
        probe = create_model("auxformer", **shape)
    expected = probe.state_dict()
    mapped, problems = {}, []
    for key, value in state_dict.items():
        target = official_key(key)
        if target is None:
            continue
        if target not in expected:
            problems.append(f"unexpected key {key!r}")
            continue
        tensor = torch.as_tensor(value)
        if target.endswith("alpha") and tensor.shape == (1,):
            tensor = tensor.reshape(())
        if tensor.shape != expected[target].shape:
            problems.append(f"key {key!r} has shape {tuple(tensor.shape)}, expected {tuple(expected[target].shape)} "
                            f"(num_classes={num_classes}, audio_dim={audio_dim}, visual_dim={visual_dim}, d={d})")
            continue
        mapped[target] = tensor
    inverse = {v: k for k, v in _OFFICIAL_BLOCKS.items()}
    for target in expected:
        if target not in mapped:
            block = next((b for b in sorted(inverse, key=len, reverse=True) if target.startswith(b + ".")), target)
            problems.append(f"missing key for {target!r} (released block {inverse.get(block, block)!r})")
    if problems:
        raise ValidationError("from_official: the state dict does not match AuxFormer(d_model="
                              f"{d}, layers={layers}, heads={heads}): " + "; ".join(problems) + ".")
    model = create_model("auxformer", **shape)
    model.load_state_dict(mapped)
    return model


register_model("auxformer", citation=CITATION, quick=QUICK, paper_params=7_054_748, semantics_version=2,
               notes="Weights trained with the authors' released code load with "
                     "avbench.models.auxformer.from_official(state_dict, num_classes=..., audio_dim=..., "
                     "visual_dim=...), and `avbench run --weights auxformer=final_head.pt` scores them under "
                     "a protocol's conditions without training.",
               description="AuxFormer: cross-modal transformer with auxiliary networks (the proposed model)",
               presentation=Presentation("AuxFormer", "AuxFormer", role="proposed", color="#0072B2",  # Okabe-Ito
                                         marker="o", order=0, option_labels={  # the paper's names (Tables 3, Figs. 6-7)
                                             "pos_enc": {False: "No Pos. Encoding", True: "1-D Pos. Encoding"},
                                             "self_attention": {"scaled": "Self-attention, learnable scaling",
                                                                "none": "Removed", "lstm": "LSTM", "gru": "GRU"},
                                             "token": {"last": "Last time-step token", "cls": "Prepended CLS token",
                                                       "mean": "Sequence mean token"}}))(AuxFormer)
