"""CPU training kernels for the attention stacks: cheap dropout masks and lean attention.

Why this module exists: profiling the paper-size AuxFormer step on a 2-core CPU
(``benchmarks/train_step.py``, ``shared/docs/field-notes.md``) showed that about
half of the step went to drawing dropout masks with ``bernoulli_`` over the
attention weights (batch x heads x L_q x L_k values per layer), and that
storing those weights for the backward pass is what makes a 300/150-frame
step need 15 GiB.  The matrix products themselves are a small share: the head
dimension is 13.

What changes here, none of it the model's semantics:

* **Masks from 16 random bits.**  One 64-bit draw of the global generator
  (``random_`` over the full int64 range) gives four 16-bit draws; a value is
  dropped when its 16 bits fall below ``round(p * 65536)``.  The rate is then
  ``round(p * 65536) / 65536`` (0.1 -> 0.100006, 0.25 exactly) and the kept
  values are scaled by the inverse of that rate's complement, so every
  dropout is unbiased in expectation as before.  Drawing is about 7x cheaper
  than ``bernoulli_`` here, and the mask is applied as a float 0/1 factor,
  several times cheaper than ``masked_fill``.  Masks come from a private
  generator seeded by one draw of the global one, so the backward pass
  regenerates them instead of storing them.
* **Attention that does not keep its weights.**  :class:`_Attention` computes
  softmax(QK^T / sqrt(d) + bias), dropout, times V tile by tile (a few batch
  items, a block of queries, the keys they may see: with the causal mask the
  upper triangle is mostly skipped) and keeps only Q, K, V, the output and the
  seed; the backward pass recomputes each tile (flash attention's scheme, in
  plain tensor operations).  A tile stays in cache, so the recomputation costs
  less than it saves, and memory no longer grows with batch x heads x L_q x L_k.
* **Products laid out for a head dimension of 13**: see :class:`_Attention`.
* **ReLU and dropout fused** (:func:`relu_dropout`), keeping one tensor instead of three.

On CUDA none of this is used: ``F.scaled_dot_product_attention`` dispatches
to fused kernels that already do both, and ``F.dropout`` is cheap there.
Evaluation (no gradients) still runs SDPA, so predictions are unchanged;
with gradients and no dropout the result equals SDPA's to float tolerance
(tests/test_fast_ops.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_BITS = 16
_LEVELS = 1 << _BITS


def drop_threshold(p: float) -> tuple[int, float]:
    """The 16-bit threshold for dropout rate ``p`` and the rate it realises.

    A value is dropped when its signed 16-bit draw is below ``-32768 + k`` with
    ``k = round(p * 65536)``: probability ``k / 65536``.
    """
    k = int(round(p * _LEVELS))
    return -(_LEVELS // 2) + k, k / _LEVELS


def keep_mask(shape: tuple[int, ...], p: float, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Mask of ``shape`` holding 1 where a value is kept and 0 where it is dropped.

    Draws ``ceil(n / 4)`` 64-bit values from ``generator`` (the global one when None) and reads
    them as ``n`` signed 16-bit draws; a draw below ``drop_threshold(p)[0]`` drops its value.
    The mask is a float tensor because multiplying by it is several times cheaper on this CPU
    than ``masked_fill`` with a boolean one (benchmarks/README.md).
    """
    n = math.prod(shape)
    words = torch.empty(-(-n // 4), dtype=torch.int64, device=device)
    words.random_(-2 ** 63, None, generator=generator)
    out = torch.empty(shape, dtype=dtype, device=device)
    torch.ge(words.view(torch.int16)[:n].view(shape), drop_threshold(p)[0], out=out)
    return out


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _draw_seed() -> int:
    """One draw of the global generator: the seed of a private stream whose masks the backward
    pass regenerates instead of storing them."""
    return int(torch.randint(0, 2 ** 62, (1,)))


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        ctx.seed, ctx.scale = _draw_seed(), 1.0 / (1.0 - drop_threshold(p)[1])
        ctx.p = p
        mask = keep_mask(tuple(x.shape), p, _generator(ctx.seed, x.device), x.dtype, x.device)
        return mask.mul_(x).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad):
        mask = keep_mask(tuple(grad.shape), ctx.p, _generator(ctx.seed, grad.device), grad.dtype, grad.device)
        return mask.mul_(grad).mul_(ctx.scale), None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with 16-bit masks on the CPU (mask regenerated, not stored, for the
    backward pass); ``F.dropout`` elsewhere."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return _Dropout.apply(x, p)


class _ReluDropout(torch.autograd.Function):
    """dropout(relu(x)), keeping only its output: out > 0 exactly where x > 0 and the value was
    kept, which is where the gradient passes (scaled), so neither the mask nor relu's output is
    stored and no mask is regenerated."""

    @staticmethod
    def forward(ctx, x, p):
        scale = 1.0 / (1.0 - drop_threshold(p)[1])
        mask = keep_mask(tuple(x.shape), p, _generator(_draw_seed(), x.device), x.dtype, x.device)
        out = mask.mul_(torch.relu(x)).mul_(scale)  # the draws of dropout(relu(x)) exactly
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return torch.where(out > 0, grad * ctx.scale, 0.0), None


def relu_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``dropout(relu(x))`` as :func:`dropout` draws it, storing only the output on the CPU."""
    if not training or p == 0.0 or x.device.type != "cpu":
        return dropout(F.relu(x), p, training)
    return _ReluDropout.apply(x, p)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same attribute ``p``, same state) drawing its mask as :func:`dropout` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


# --- attention ---------------------------------------------------------------------------
CHUNK_BYTES = 4 << 20  # score tile of one chunk per torch thread (float32): stays in cache between its operations
QUERY_BLOCKS = 4  # query blocks of a causal attention; each reads only the keys some of its rows may see


def _chunks(b: int, per_item: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK_BYTES * torch.get_num_threads() // max(per_item, 1))
    return [(s, min(s + step, b)) for s in range(0, b, step)]


def _tiles(bias: torch.Tensor | None, b: int, h: int, lq: int, lk: int):
    """``(b0, b1, i0, i1, kmax)`` tiles: batch items ``b0:b1``, queries ``i0:i1``, keys ``:kmax``.

    Keys beyond ``kmax`` are masked (-inf bias) for every query of the tile, so leaving them out
    changes nothing: with the causal mask this skips most of the upper triangle (about 3/8 of
    the work with 4 query blocks), and trailing padded keys are skipped too.
    """
    if bias is None:
        return [(b0, b1, 0, lq, lk) for b0, b1 in _chunks(b, h * lq * lk * 4)]
    cols = torch.arange(1, lk + 1, device=bias.device)
    extent = torch.where(bias[:, 0] > float("-inf"), cols, 0).amax(-1)  # (B or 1, L_q or 1)
    extent = extent.expand(b, extent.shape[1]).cpu()
    blocks = QUERY_BLOCKS if extent.shape[1] > 1 and lq >= 4 * QUERY_BLOCKS else 1
    step = -(-lq // blocks)
    tiles = []
    for b0, b1 in _chunks(b, h * lq * lk * 4):
        for i0 in range(0, lq, step):
            i1 = min(i0 + step, lq)
            rows = extent[b0:b1, i0:i1] if extent.shape[1] > 1 else extent[b0:b1]
            tiles.append((b0, b1, i0, i1, int(rows.max())))
    return tiles


def _weights(qs, kt, bias, tile, heads):
    """softmax(q k^T + bias) of one tile as ``(n, i1 - i0, kmax)`` (q already scaled)."""
    b0, b1, i0, i1, kmax = tile
    s = torch.bmm(qs[b0 * heads:b1 * heads, i0:i1], kt[b0 * heads:b1 * heads, :, :kmax])
    if bias is not None:
        part = bias[b0:b1] if bias.shape[0] > 1 else bias
        part = part[:, :, i0:i1, :kmax] if part.shape[2] > 1 else part[..., :kmax]
        s.view(b1 - b0, heads, i1 - i0, kmax).add_(part)
    return torch.softmax(s, dim=-1)


class _Attention(torch.autograd.Function):
    """softmax(QK^T * scale + bias) -> dropout -> @V, recomputed tile by tile in the backward pass.

    Every product whose result has the head dimension (13 in the paper) as its last axis is
    computed transposed (``V^T P^T`` rather than ``P V``): on this CPU a batched GEMM with 13
    output columns runs at a third of the speed of the same GEMM with 13 output rows.
    Tensors are handled as ``(B * H, L, d)``; a tile (:func:`_tiles`) is a run of whole batch
    items, a block of queries and the keys they may see.  The dropout masks come from a private
    generator seeded by one draw of the global one; the backward pass walks the tiles in the
    same order and so regenerates the same masks.
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, p):
        b, h, lq, d = q.shape
        lk = k.shape[-2]
        scale = 1.0 / math.sqrt(d)
        qs = (q * scale).reshape(b * h, lq, d)
        k3, v3 = k.reshape(b * h, lk, d), v.reshape(b * h, lk, d)
        keep = 1.0 / (1.0 - drop_threshold(p)[1]) if p > 0 else 1.0
        seed = _draw_seed() if p > 0 else 0
        gen = _generator(seed, q.device) if p > 0 else None
        tiles = _tiles(bias, b, h, lq, lk)
        out_t = torch.empty(b * h, d, lq, dtype=q.dtype, device=q.device)
        kt, vt = k3.transpose(1, 2), v3.transpose(1, 2)
        for tile in tiles:
            b0, b1, i0, i1, kmax = tile
            w = _weights(qs, kt, bias, tile, h)
            if p > 0:
                w.mul_(keep_mask(tuple(w.shape), p, gen, w.dtype, w.device))
            out_t[b0 * h:b1 * h, :, i0:i1] = torch.bmm(vt[b0 * h:b1 * h, :, :kmax], w.transpose(1, 2))
        if p > 0:
            out_t.mul_(keep)
        out = out_t.transpose(1, 2).view(b, h, lq, d)
        ctx.save_for_backward(qs, k3, v3, bias if bias is not None else torch.empty(0), out)
        ctx.has_bias, ctx.p, ctx.seed, ctx.scale, ctx.keep, ctx.tiles = bias is not None, p, seed, scale, keep, tiles
        return out

    @staticmethod
    def backward(ctx, grad_out):
        qs, k3, v3, bias, out = ctx.saved_tensors
        bias = bias if ctx.has_bias else None
        p, keep = ctx.p, ctx.keep
        b, h, lq, d = out.shape
        lk = k3.shape[1]
        go = grad_out.contiguous().view(b * h, lq, d)
        # D_i = sum_j P_ij dP_ij = dO_i . O_i, with or without dropout (flash attention's identity)
        delta = (grad_out * out).sum(-1).reshape(b * h, lq, 1) / keep
        gen = _generator(ctx.seed, qs.device) if p > 0 else None
        dq_t = torch.empty(b * h, d, lq, dtype=qs.dtype, device=qs.device)
        dk_t = torch.zeros(b * h, d, lk, dtype=qs.dtype, device=qs.device)
        dv_t = torch.zeros(b * h, d, lk, dtype=qs.dtype, device=qs.device)
        kt, vt = k3.transpose(1, 2), v3.transpose(1, 2)
        for tile in ctx.tiles:
            b0, b1, i0, i1, kmax = tile
            r = slice(b0 * h, b1 * h)
            w = _weights(qs, kt, bias, tile, h)
            go_r = go[r, i0:i1]
            g = torch.bmm(go_r, vt[r, :, :kmax])  # dO V^T
            if p > 0:
                mask = keep_mask(tuple(w.shape), p, gen, w.dtype, w.device)
                g.mul_(mask)
                dv_t[r, :, :kmax] += torch.bmm(go_r.transpose(1, 2), mask.mul_(w))
            else:
                dv_t[r, :, :kmax] += torch.bmm(go_r.transpose(1, 2), w)
            # dS = P * (keep * G_masked - D) = keep * P * (G_masked - D / keep)
            g.sub_(delta[r, i0:i1]).mul_(w)
            dq_t[r, :, i0:i1] = torch.bmm(kt[r, :, :kmax], g.transpose(1, 2))
            dk_t[r, :, :kmax] += torch.bmm(qs[r, i0:i1].transpose(1, 2), g)  # (baddbmm_ on this view
            # falls back to one GEMM per matrix, several times slower)
        if p > 0:
            dv_t.mul_(keep)
        dq_t.mul_(keep * ctx.scale)
        dk_t.mul_(keep)  # qs already carries the scale
        grads = (t.transpose(1, 2).view(b, h, -1, d) for t in (dq_t, dk_t, dv_t))
        return (*grads, None, None)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
              dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Scaled dot-product attention of ``(B, H, L, d)`` tensors with an additive ``bias``.

    On the CPU while training with gradients, :class:`_Attention` (lean, chunked, 16-bit
    dropout masks); otherwise ``F.scaled_dot_product_attention`` (fused kernels on CUDA, and
    the evaluation path, which is unchanged).
    """
    p = dropout_p if training else 0.0
    if q.device.type == "cpu" and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad
                                                                 or v.requires_grad):
        return _Attention.apply(q.contiguous(), k.contiguous(), v.contiguous(), bias, p)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
