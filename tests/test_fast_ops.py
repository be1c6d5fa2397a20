"""The CPU training kernels (fast_ops): same function and gradients as SDPA, same dropout rates."""

import pytest
import torch
import torch.nn.functional as F

from avbench.models import create_model, fast_ops
from avbench.models.blocks import attention_bias


@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_sdpa_with_gradients(monkeypatch, causal):
    monkeypatch.setattr(fast_ops, "CHUNK_BYTES", 2 * 3 * 40 * 23 * 8)  # several chunks and query blocks
    torch.manual_seed(0)
    b, h, lq, lk, d = 5, 3, 40, 23, 4
    q, k, v = (torch.randn(b, h, n, d, dtype=torch.float64, requires_grad=True) for n in (lq, lk, lk))
    ql, kl = torch.tensor([40, 10, 5, 33, 3]), torch.tensor([23, 11, 4, 2, 7])
    bias = attention_bias(kl, lk, torch.float64, q_lengths=ql, q_len=lq, causal=causal)
    out = fast_ops._Attention.apply(q, k, v, bias, 0.0)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert torch.allclose(out, ref, atol=1e-12)
    g = torch.randn_like(out)
    for a, r in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)):
        assert torch.allclose(a, r, atol=1e-12)


def test_attention_with_dropout_has_exact_gradients():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, 3, dtype=torch.float64, requires_grad=True) for n in (20, 18, 18))
    bias = attention_bias(torch.tensor([18, 9]), 18, torch.float64, q_lengths=torch.tensor([20, 12]), q_len=20,
                          causal=True)

    def f(q, k, v):
        torch.manual_seed(3)  # the same masks on every call: the backward pass regenerates them
        return fast_ops._Attention.apply(q, k, v, bias, 0.3)

    assert torch.autograd.gradcheck(f, (q, k, v))


def test_dropout_rate_and_scale_are_unbiased():
    torch.manual_seed(0)
    x = torch.ones(2_000_000)
    y = fast_ops.dropout(x, 0.1, True)
    kept = y != 0
    threshold, rate = fast_ops.drop_threshold(0.1)
    assert rate == 6554 / 65536
    assert abs((~kept).float().mean().item() - rate) < 1e-3
    assert torch.allclose(y[kept], torch.tensor(1 / (1 - rate)))
    assert fast_ops.drop_threshold(0.25)[1] == 0.25
    assert torch.equal(fast_ops.dropout(x, 0.1, False), x)


def test_relu_dropout_is_dropout_of_relu_with_its_gradient():
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)

    def f(x):
        torch.manual_seed(5)
        return fast_ops.relu_dropout(x, 0.2, True)

    fused = f(x)
    torch.manual_seed(5)
    assert torch.equal(fused, fast_ops.dropout(torch.relu(x), 0.2, True))
    assert torch.autograd.gradcheck(f, (x,))


def test_training_gradients_equal_the_sdpa_path_without_dropout(monkeypatch):
    """With every dropout rate 0, a training step's gradients are those of plain SDPA attention."""
    torch.manual_seed(0)
    zero = dict(embed_dropout=0.0, attn_dropout=0.0, relu_dropout=0.0, res_dropout=0.0, out_dropout=0.0)
    model = create_model("auxformer", num_classes=3, audio_dim=6, visual_dim=10, d_model=8, heads=2, layers=2,
                         **zero).double()
    audio, visual = torch.randn(3, 21, 6, dtype=torch.float64), torch.randn(3, 13, 10, dtype=torch.float64)
    la, lv = torch.tensor([21, 15, 4]), torch.tensor([13, 7, 2])

    def grads():
        model.zero_grad()
        out = model(audio, visual, la, lv)
        sum(o.sum() for o in out.values()).backward()
        return [p.grad.clone() for p in model.parameters()]

    fast = grads()
    from avbench.models import blocks
    monkeypatch.setattr(blocks, "attention", lambda q, k, v, bias, p, training:
                        F.scaled_dot_product_attention(q, k, v, attn_mask=bias))
    for a, r in zip(fast, grads()):
        assert torch.allclose(a, r, atol=1e-10)


def test_recomputed_layers_give_the_same_gradients_and_random_stream():
    from avbench.models.blocks import set_recompute

    torch.manual_seed(0)
    model = create_model("auxformer", num_classes=3, audio_dim=6, visual_dim=10, d_model=8, heads=2, layers=2)
    audio, visual = torch.randn(3, 21, 6), torch.randn(3, 13, 10)
    la, lv = torch.tensor([21, 15, 4]), torch.tensor([13, 7, 2])

    def grads(on):
        set_recompute(model, on)
        model.zero_grad()
        torch.manual_seed(11)
        out = model(audio, visual, la, lv)
        sum(o.sum() for o in out.values()).backward()
        return [p.grad.clone() for p in model.parameters()], torch.rand(1)

    (fast, after_fast), (lean, after_lean) = grads(False), grads(True)
    assert all(torch.equal(a, b) for a, b in zip(fast, lean))
    assert torch.equal(after_fast, after_lean)  # the global stream continues as without recomputation
