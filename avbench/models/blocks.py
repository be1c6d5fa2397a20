"""Building blocks shared by AuxFormer and the baselines.

The layer structure follows the authors' released code, itself derived from
MulT (Tsai et al., 2019): pre-LayerNorm attention layers whose queries, keys
and values share the first LayerNorm, a d -> 4d -> d feed-forward block, a
final LayerNorm per stack, inputs scaled by sqrt(d) before sinusoidal
positions are added.  With these choices the parameter counts of Table 5 are
reproduced exactly (see ``paper-facts.md``).

Every block takes per-clip lengths so that zero padding never changes a
clip's output: attention masks padded keys, recurrent layers pack sequences,
and pooled tokens read only real frames.  Zeroed *real* frames (a missing
modality) are ordinary input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean ``(B, T)`` mask, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def attention_bias(lengths: torch.Tensor, max_len: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive ``(B, 1, 1, T)`` key mask: 0 on real frames, -inf on padding.

    Built once per stack and shared by its layers.  (On this CPU a float bias
    and a boolean mask cost the same; benchmarks/README.md.)
    """
    bias = torch.zeros(lengths.shape[0], 1, 1, max_len, device=lengths.device, dtype=dtype)
    return bias.masked_fill(~padding_mask(lengths, max_len)[:, None, None, :], float("-inf"))


def sinusoidal_positions(length: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """Vaswani et al.'s fixed sinusoidal positions, ``(length, dim)``; odd ``dim`` allowed."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    half = (dim + 1) // 2
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / max(half, 1)))
    angles = pos * freq[None, :]
    pe = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)[:, :dim]
    return pe.to(dtype or torch.float32)


class MultiheadAttention(nn.Module):
    """Multi-head attention on ``F.scaled_dot_product_attention``.

    Why SDPA: on a GPU it dispatches to fused kernels (flash / memory-efficient,
    dropout included) that never materialise the ``Lq x Lk`` weights; on this
    CPU it makes evaluation about 25% faster and training within about 15% of
    the explicit softmax-dropout-matmul form (benchmarks/README.md).
    Parameters are laid out like ``nn.MultiheadAttention`` (``4d^2 + 4d``) so
    counts match the paper.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"The 'heads' parameter must divide the width {dim}. Got {heads} instead.")
        self.heads = heads
        self.dropout = dropout
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, key_bias: torch.Tensor | None) -> torch.Tensor:
        b, lq, d = query.shape
        w, bias = self.in_proj.weight, self.in_proj.bias
        if key_value is query:
            q, k, v = F.linear(query, w, bias).chunk(3, dim=-1)
        else:
            q = F.linear(query, w[:d], bias[:d])
            k, v = F.linear(key_value, w[d:], bias[d:]).chunk(2, dim=-1)
        h = self.heads
        q, k, v = (t.reshape(b, -1, h, d // h).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, d))


class AttentionLayer(nn.Module):
    """One pre-LN transformer layer, self- or cross-modal.

    With ``scaled=True`` it carries the learnable scalar of Sec. 3.3 and mixes
    each sublayer as ``alpha * residual + (1 - alpha) * sublayer`` (beta =
    1 - alpha, as in the released code); otherwise it is a plain residual.
    """

    def __init__(self, dim: int, heads: int, *, attn_dropout: float, relu_dropout: float,
                 res_dropout: float, scaled: bool = False):
        super().__init__()
        self.attn = MultiheadAttention(dim, heads, attn_dropout)
        self.norm_attn = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.relu_dropout = nn.Dropout(relu_dropout)
        self.res_dropout = nn.Dropout(res_dropout)
        self.alpha = nn.Parameter(torch.tensor(0.5)) if scaled else None

    def _mix(self, residual: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            return residual + update
        return self.alpha * residual + (1 - self.alpha) * update

    def forward(self, x, key_bias, kv=None):
        q = self.norm_attn(x)
        kv = q if kv is None else self.norm_attn(kv)
        x = self._mix(x, self.res_dropout(self.attn(q, kv, key_bias)))
        h = self.fc2(self.relu_dropout(F.relu(self.fc1(self.norm_ffn(x)))))
        return self._mix(x, self.res_dropout(h))


class AttentionStack(nn.Module):
    """``layers`` attention layers and a final LayerNorm.

    Cross-modal when called with ``kv``: queries come from ``x``, keys and
    values from ``kv`` (the other modality), masked by ``kv_lengths``.
    """

    def __init__(self, dim: int, heads: int, layers: int, *, positions: bool, embed_dropout: float,
                 attn_dropout: float, relu_dropout: float, res_dropout: float, scaled: bool = False):
        super().__init__()
        self.dim = dim
        self.positions = positions
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            AttentionLayer(dim, heads, attn_dropout=attn_dropout, relu_dropout=relu_dropout,
                           res_dropout=res_dropout, scaled=scaled) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = math.sqrt(self.dim) * x
        if self.positions:
            x = x + sinusoidal_positions(x.shape[1], self.dim, x.device, x.dtype)
        return self.embed_dropout(x)

    def forward(self, x, lengths, kv=None, kv_lengths=None):
        x = self._embed(x)
        if kv is None:
            key_bias = attention_bias(lengths, x.shape[1], x.dtype)
        else:
            kv = self._embed(kv)
            key_bias = attention_bias(kv_lengths, kv.shape[1], x.dtype)
        for layer in self.layers:
            x = layer(x, key_bias, kv)
        return self.norm(x)


class RecurrentStack(nn.Module):
    """LSTM or GRU replacement of a self-attention stack (Fig. 6), padding-safe by packing."""

    def __init__(self, dim: int, kind: str):
        super().__init__()
        cls = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cls(dim, dim, batch_first=True)

    def forward(self, x, lengths, kv=None, kv_lengths=None):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class Identity(nn.Module):
    """Stands in for a removed stack (Fig. 6, 'removed')."""

    def forward(self, x, lengths, kv=None, kv_lengths=None):
        return x


def pool_token(x: torch.Tensor, lengths: torch.Tensor, how: str) -> torch.Tensor:
    """Classification token of Sec. 3.4 / Fig. 7 from a padded sequence.

    ``last`` reads the last *real* frame, ``mean`` averages real frames only,
    ``cls`` reads position 0 (where a prepended token sits).
    """
    if how == "last":
        return x[torch.arange(x.shape[0], device=x.device), lengths - 1]
    if how == "mean":
        mask = padding_mask(lengths, x.shape[1]).to(x.dtype)[..., None]
        return (x * mask).sum(1) / lengths[:, None].to(x.dtype)
    if how == "cls":
        return x[:, 0]
    raise ValueError(f"Unknown token strategy {how!r}; expected 'last', 'mean' or 'cls'.")


class Projection(nn.Module):
    """Bias-free 1-D convolution with kernel 1 (per-frame linear map), as in MulT and AuxFormer."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class ResidualMLP(nn.Module):
    """Two hidden FC layers with ReLU and dropout, a residual around them, then the output layer.

    The shape of MulT's and AuxFormer's output heads: ``out(h + fc2(drop(relu(fc1(h)))))``
    where the hidden layers may widen (``hidden``) and return to the input width.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float):
        super().__init__()
        widths = (dim, *hidden, dim)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, fc in enumerate(self.hidden):
            h = fc(h)
            if i < len(self.hidden) - 1:
                h = self.dropout(F.relu(h))
        return self.out(h + x)


class MLP(nn.Module):
    """Plain feed-forward head: ``hidden`` FC layers with ReLU and dropout, then the output layer.

    With ``hidden=()`` it is a single dense layer (baseline 3's classifier); the
    upscaled baselines of Sec. 5.4 add hidden layers here.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float):
        super().__init__()
        widths = (dim, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(widths[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc in self.hidden:
            x = self.dropout(F.relu(fc(x)))
        return self.out(x)
