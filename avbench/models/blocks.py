"""Building blocks shared by AuxFormer and the baselines.

The layer structure follows the authors' released code, itself derived from
MulT (Tsai et al., 2019): pre-LayerNorm attention layers whose queries, keys
and values share the first LayerNorm, a d -> 4d -> d feed-forward block, a
final LayerNorm per stack, inputs scaled by sqrt(d) before sinusoidal
positions are added (fairseq's table: positions 1..L, a zero row for a frame
whose first channel is 0), and, by default in the models that follow the
released code, a causal attention mask.  With these choices the parameter
counts of Table 5 are reproduced exactly (see ``paper-facts.md``).

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
from torch.utils.checkpoint import checkpoint

from avbench.models.fast_ops import Dropout, attention, relu_dropout


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean ``(B, T)`` mask, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def attention_bias(k_lengths: torch.Tensor, k_len: int, dtype: torch.dtype, *,
                   q_lengths: torch.Tensor | None = None, q_len: int | None = None,
                   causal: bool = False) -> torch.Tensor:
    """Additive attention mask: 0 where a query may attend a key, -inf elsewhere.

    Keys beyond a clip's real length are always masked.  With ``causal`` the
    released code's ``buffered_future_mask`` is applied per clip as well:
    query ``i`` may attend key ``j`` only if ``j <= i + |L_k - L_q|``, with
    ``L_q``, ``L_k`` the clip's *real* lengths, so a padded batch gives each
    clip exactly what the released code computes for it alone.  No row is ever
    fully masked (key 0 is always allowed), so softmax never sees NaN.

    Returns:
        ``(B, 1, 1, T_k)`` without ``causal`` (shared by every query), else
        ``(B, 1, T_q, T_k)``; built once per stack and shared by its layers.
    """
    allowed = padding_mask(k_lengths, k_len)[:, None, None, :]
    if causal:
        if q_lengths is None or q_len is None:
            raise ValueError("a causal attention_bias needs the queries' lengths")
        offset = (k_lengths - q_lengths).abs()
        i = torch.arange(q_len, device=k_lengths.device)
        j = torch.arange(k_len, device=k_lengths.device)
        allowed = allowed & (j[None, None, :] <= i[None, :, None] + offset[:, None, None])[:, None]
    bias = torch.zeros(allowed.shape, device=k_lengths.device, dtype=dtype)
    return bias.masked_fill(~allowed, float("-inf"))


def sinusoidal_table(num: int, dim: int, device=None) -> torch.Tensor:
    """fairseq's ``SinusoidalPositionalEmbedding.get_embedding``, ``(num, dim)``, row 0 zero.

    ``half = dim // 2`` frequencies ``exp(-k ln(10000) / (half - 1))``, ``[sin | cos]``
    concatenated (not interleaved), a zero column appended when ``dim`` is odd, and
    row 0 (the padding index) all zeros.  (fairseq divides by zero for ``dim < 4``;
    here the denominator is floored at 1.)
    """
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32)
                     * -(math.log(10000.0) / max(half - 1, 1)))
    angles = torch.arange(num, device=device, dtype=torch.float32)[:, None] * freq[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(num, 1, device=device)], dim=1)
    table[0] = 0
    return table


def positions_like(x: torch.Tensor) -> torch.Tensor:
    """Positional embeddings for a ``(B, T, D)`` input, as the released code adds them.

    Frame ``t`` gets position ``t + 1``, except a frame whose first channel is
    exactly 0, which gets position 0, i.e. a zero row: padding, and frames
    zeroed by clipping, masking or the optimized regime, carry no positional
    signal (fairseq's ``make_positions`` with padding index 0, applied to the
    first channel of the stack's input).
    """
    b, t, d = x.shape
    pos = torch.arange(1, t + 1, device=x.device).expand(b, t)
    pos = pos.masked_fill(x[..., 0] == 0, 0)
    return sinusoidal_table(t + 1, d, x.device).to(x.dtype)[pos]


def xavier_linear(in_dim: int, out_dim: int) -> nn.Linear:
    """A Linear initialised as the released code's ``Linear`` helper: xavier-uniform weight, zero bias."""
    m = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(m.weight)
    nn.init.zeros_(m.bias)
    return m


class MultiheadAttention(nn.Module):
    """Multi-head attention through :func:`avbench.models.fast_ops.attention`.

    That is ``F.scaled_dot_product_attention`` on a GPU (fused kernels that never
    materialise the ``Lq x Lk`` weights) and in evaluation, and on a CPU in
    training a tiled kernel that recomputes the weights in the backward pass
    and draws cheap dropout masks (benchmarks/README.md: the paper-size step).
    Parameters are laid out and initialised like ``nn.MultiheadAttention``
    (``4d^2 + 4d``; xavier-uniform input projection, zero biases), so counts
    match the paper and a released state dict maps one to one.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"The 'heads' parameter must divide the width {dim}. Got {heads} instead.")
        self.heads = heads
        self.dropout = dropout
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                bias: torch.Tensor | None) -> torch.Tensor:
        b, lq, d = query.shape
        w, wb = self.in_proj.weight, self.in_proj.bias
        if key is query and value is query:
            q, k, v = F.linear(query, w, wb).chunk(3, dim=-1)
        else:
            q = F.linear(query, w[:d], wb[:d])
            if value is key:
                k, v = F.linear(key, w[d:], wb[d:]).chunk(2, dim=-1)
            else:
                k = F.linear(key, w[d:2 * d], wb[d:2 * d])
                v = F.linear(value, w[2 * d:], wb[2 * d:])
        h = self.heads
        q, k, v = (t.reshape(b, -1, h, d // h).transpose(1, 2) for t in (q, k, v))
        out = attention(q, k, v, bias, self.dropout, self.training)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, d))


class AttentionLayer(nn.Module):
    """One pre-LN transformer layer, self- or cross-modal.

    With ``scaled=True`` it carries the learnable scalar of Sec. 3.3 and mixes
    each sublayer as ``alpha * residual + (1 - alpha) * sublayer`` (beta =
    1 - alpha, as in the released code, where alpha starts at ``torch.rand(1)``);
    otherwise it is a plain residual.  Queries, keys and values share the first
    LayerNorm; the feed-forward layers are xavier-initialised with zero biases.
    """

    def __init__(self, dim: int, heads: int, *, attn_dropout: float, relu_dropout: float,
                 res_dropout: float, scaled: bool = False):
        super().__init__()
        self.attn = MultiheadAttention(dim, heads, attn_dropout)
        self.norm_attn = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.fc1 = xavier_linear(dim, 4 * dim)
        self.fc2 = xavier_linear(4 * dim, dim)
        self.relu_dropout = Dropout(relu_dropout)
        self.res_dropout = Dropout(res_dropout)
        self.alpha = nn.Parameter(torch.rand(())) if scaled else None

    def _mix(self, residual: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            return residual + update
        return self.alpha * residual + (1 - self.alpha) * update

    def forward(self, x, bias, k=None, v=None):
        """Self-attention when ``k`` is None; else queries from ``x``, keys ``k``, values ``v``."""
        q = self.norm_attn(x)
        if k is None:
            k = v = q
        else:
            k, v = (self.norm_attn(k), self.norm_attn(v)) if v is not k else (self.norm_attn(k),) * 2
        x = self._mix(x, self.res_dropout(self.attn(q, k, v, bias)))
        h = self.fc2(relu_dropout(self.fc1(self.norm_ffn(x)), self.relu_dropout.p, self.training))
        return self._mix(x, self.res_dropout(h))


class AttentionStack(nn.Module):
    """``layers`` attention layers and a final LayerNorm.

    Cross-modal when called with ``kv``: queries come from ``x``, keys and
    values from ``kv`` (the other modality), masked by ``kv_lengths``.  As in
    the released code, keys and values are embedded (scaled by sqrt(d),
    positions added) from the same input but get separate embedding-dropout
    masks.  With ``causal`` each query sees only keys up to its own position
    plus the clip's length difference (:func:`attention_bias`).
    """

    def __init__(self, dim: int, heads: int, layers: int, *, positions: bool, embed_dropout: float,
                 attn_dropout: float, relu_dropout: float, res_dropout: float, scaled: bool = False,
                 causal: bool = False):
        super().__init__()
        self.dim = dim
        self.positions = positions
        self.causal = causal
        self.embed_dropout = Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            AttentionLayer(dim, heads, attn_dropout=attn_dropout, relu_dropout=relu_dropout,
                           res_dropout=res_dropout, scaled=scaled) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.recompute = False  # set by set_recompute: not a model option, results are identical

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        out = math.sqrt(self.dim) * x
        return out + positions_like(x) if self.positions else out

    def forward(self, x, lengths, kv=None, kv_lengths=None):
        h = self.embed_dropout(self._scale(x))
        if kv is None:
            k = v = None
            bias = attention_bias(lengths, x.shape[1], x.dtype, q_lengths=lengths, q_len=x.shape[1],
                                  causal=self.causal)
        else:
            base = self._scale(kv)
            k = self.embed_dropout(base)
            v = self.embed_dropout(base) if self.training and self.embed_dropout.p > 0 else k
            bias = attention_bias(kv_lengths, kv.shape[1], x.dtype, q_lengths=lengths, q_len=x.shape[1],
                                  causal=self.causal)
        recompute = self.recompute and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            h = checkpoint(layer, h, bias, k, v, use_reentrant=False) if recompute else layer(h, bias, k, v)
        return self.norm(h)


def set_recompute(model: nn.Module, on: bool) -> None:
    """Recompute each attention layer in the backward pass instead of keeping its activations.

    The lean-memory option of training (``--memory lean``): only each layer's input is kept, so
    peak memory falls to a few layers' worth, for about one more forward pass of time.  The
    recomputation replays the same random draws (``torch.utils.checkpoint`` restores the RNG
    state), so the gradients, and the trained weights, are the same.
    """
    for m in model.modules():
        if isinstance(m, AttentionStack):
            m.recompute = on


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
    """Bias-free 1-D convolution with kernel 1 (per-frame linear map), as in MulT and AuxFormer.

    With ``bypass`` the input passes through unchanged when it already has the
    output width, while the (then unused) weight is kept: the released AuxFormer
    code (``x_aud if a_dim == d_v else conv_1d_a(x_aud)``) and MulT's do this,
    and Table 5 counts the 130 -> 130 audio convolution that the paper setting
    never uses.
    """

    def __init__(self, in_dim: int, out_dim: int, *, bypass: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size=1, bias=False)
        self.bypassed = bypass and in_dim == out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bypassed:
            return x
        # the kernel-1 convolution as the per-frame matrix product it is: same weights and result,
        # without the two transposed copies of a (B, T, 4096) input and the CPU's slow conv path
        return F.linear(x, self.conv.weight.squeeze(-1))


class ResidualMLP(nn.Module):
    """Two hidden FC layers with ReLU and dropout, a residual around them, then the output layer.

    The shape of MulT's and AuxFormer's output heads: ``out(h + fc2(drop(relu(fc1(h)))))``
    where the hidden layers may widen (``hidden``) and return to the input width.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float):
        super().__init__()
        widths = (dim, *hidden, dim)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = Dropout(dropout)
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
        self.dropout = Dropout(dropout)
        self.out = nn.Linear(widths[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc in self.hidden:
            x = self.dropout(F.relu(fc(x)))
        return self.out(x)
