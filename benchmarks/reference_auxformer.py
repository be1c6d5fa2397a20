"""A straightforward AuxFormer, written the way the authors' released code is, for benchmarks only.

This is the yardstick of issue 12's training-step targets, not a second model:
it is written from the paper (Sec. 3, 4.3) and the description of the released
code in issue 12 and docs/fidelity.md, not copied from it.  What makes it
"straightforward" is exactly what the released code does and avbench does not:

* attention is ``torch.nn.MultiheadAttention`` asked for its weights (as a
  caller that unpacks ``x, _ = attn(...)`` does), so the batch x heads x L_q x
  L_k weights are materialised, dropped out with ``F.dropout`` masks and kept
  for the backward pass;
* sequences are padded with zeros to one global length and nothing masks the
  padding (there is none in the benchmark's batches: every clip is full length);
* the causal mask is a float ``-inf`` upper triangle shifted by the length
  difference, ``triu(-inf, 1 + |L_k - L_q|)`` (query i sees keys up to
  ``i + |L_k - L_q|``);
* layouts are time-first ``(L, B, D)``, as fairseq-style encoders use.

Same architecture, widths, dropout rates and placement as
``avbench.models.auxformer.AuxFormer`` with its defaults (the parameter count
is checked against it by ``train_step.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def positions(x: torch.Tensor) -> torch.Tensor:
    """fairseq sinusoidal positions for a time-first ``(L, B, D)`` input: t + 1, 0 for a zero frame."""
    length, _, dim = x.shape
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    angles = torch.arange(length + 1, dtype=torch.float32)[:, None] * freq[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(length + 1, 1)], dim=1)
    table[0] = 0
    pos = torch.arange(1, length + 1)[:, None].expand(length, x.shape[1]).masked_fill(x[..., 0] == 0, 0)
    return table[pos]


def future_mask(lq: int, lk: int) -> torch.Tensor:
    return torch.triu(torch.full((lq, lk), float("-inf")), 1 + abs(lk - lq))


class Layer(nn.Module):
    def __init__(self, d, heads, attn_dropout, scaled):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=attn_dropout)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.norms = nn.ModuleList([nn.LayerNorm(d), nn.LayerNorm(d)])
        self.alpha = nn.Parameter(torch.rand(1)) if scaled else None

    def mix(self, residual, x):
        return residual + x if self.alpha is None else self.alpha * residual + (1 - self.alpha) * x

    def forward(self, x, k=None, v=None):
        residual = x
        x = self.norms[0](x)
        k = x if k is None else self.norms[0](k)
        v = x if v is None else self.norms[0](v)
        x, _ = self.attn(x, k, v, attn_mask=future_mask(x.shape[0], k.shape[0]))  # weights materialised
        x = self.mix(residual, F.dropout(x, 0.1, self.training))
        residual = x
        x = F.dropout(F.relu(self.fc1(self.norms[1](x))), 0.1, self.training)
        return self.mix(residual, F.dropout(self.fc2(x), 0.1, self.training))


class Encoder(nn.Module):
    def __init__(self, d, heads, layers, attn_dropout, *, positional, scaled=False):
        super().__init__()
        self.d, self.positional = d, positional
        self.layers = nn.ModuleList(Layer(d, heads, attn_dropout, scaled) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def embed(self, x):
        y = math.sqrt(self.d) * x
        return F.dropout(y + positions(x) if self.positional else y, 0.25, self.training)

    def forward(self, x, kv=None):
        x = self.embed(x)
        k = v = None
        if kv is not None:
            k, v = self.embed(kv), self.embed(kv)
        for layer in self.layers:
            x = layer(x, k, v)
        return self.norm(x)


class Head(nn.Module):
    def __init__(self, d, hidden, classes):
        super().__init__()
        widths = (d, *hidden, d)
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(d, classes)

    def forward(self, x):
        h = x
        for i, fc in enumerate(self.fcs):
            h = fc(h)
            if i < len(self.fcs) - 1:
                h = F.dropout(F.relu(h), 0.2, self.training)
        return self.out(h + x)


class ReferenceAuxFormer(nn.Module):
    """AuxFormer at the paper's dimensions: audio 130, visual 4096 -> 130, 10 heads, 5 layers."""

    def __init__(self, classes, audio_dim=130, visual_dim=4096, d=130, heads=10, layers=5):
        super().__init__()
        self.conv_a = nn.Conv1d(audio_dim, d, 1, bias=False)  # held but bypassed when audio_dim == d
        self.conv_v = nn.Conv1d(visual_dim, d, 1, bias=False)
        self.a_with_v = Encoder(d, heads, layers, 0.0, positional=True)
        self.v_with_a = Encoder(d, heads, layers, 0.0, positional=True)
        self.a_mem = Encoder(d, heads, layers, 0.1, positional=False, scaled=True)
        self.v_mem = Encoder(d, heads, layers, 0.1, positional=False, scaled=True)
        self.a_aux = Encoder(d, heads, layers, 0.1, positional=False)
        self.v_aux = Encoder(d, heads, layers, 0.1, positional=False)
        self.head = Head(2 * d, (2 * d,), classes)
        self.aux_head = Head(d, (512, 256), classes)
        self.d = d

    def forward(self, audio, visual):
        """``(B, L, D)`` inputs, zero-padded to one length; returns the three heads' logits."""
        a = audio if audio.shape[-1] == self.d else self.conv_a(audio.transpose(1, 2)).transpose(1, 2)
        v = self.conv_v(visual.transpose(1, 2)).transpose(1, 2)
        a, v = a.transpose(0, 1), v.transpose(0, 1)  # time first
        za = self.a_mem(self.a_with_v(a, v))
        zv = self.v_mem(self.v_with_a(v, a))
        out_av = self.head(torch.cat([za[-1], zv[-1]], dim=-1))
        xa, xv = a, v
        for _ in range(3):  # the auxiliary stacks run three times with the same weights
            xa, xv = self.a_aux(xa), self.v_aux(xv)
        return {"av": out_av, "a": self.aux_head(xa[-1]), "v": self.aux_head(xv[-1])}
