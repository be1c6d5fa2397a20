"""Fidelity to the paper and the authors' released code (issue: averaged heads, causal attention,
fairseq positions, train-only z-normalisation, official weights).

The released code cannot be copied here, so these tests pin what can be checked without it: the
causal rule against its closed form, the positional table against fairseq's formula, zero rows for
zeroed frames, the averaged heads, a padded batch against each clip alone, a released-style state
dict round trip, and normalisation statistics that depend on the training partition only.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avbench.batching import read_clip
from avbench.data import StoreWriter, load_splits
from avbench.models import create_model, get_model_meta
from avbench.models.auxformer import AuxFormer, from_official
from avbench.models.blocks import AttentionStack, attention_bias, positions_like, sinusoidal_table
from avbench.normalization import EPS, fit_normalizer
from avbench.profiles import get_profile
from avbench.registry import MODELS
from avbench.runner import run
from avbench.units import unit_semantics
from avbench.training import dev_scores, fit
from avbench.validation import ValidationError

# --- causal attention --------------------------------------------------------------------------------


def released_future_mask(lq: int, lk: int) -> torch.Tensor:
    """The closed form of the released ``buffered_future_mask``: -inf above diagonal 1 + |Lk - Lq|."""
    return torch.triu(torch.full((lq, lk), float("-inf")), 1 + abs(lk - lq))


@pytest.mark.parametrize("lq,lk", [(1, 1), (5, 5), (4, 9), (9, 4), (7, 3), (2, 8)])
def test_causal_rule_is_the_released_future_mask(lq, lk):
    bias = attention_bias(torch.tensor([lk]), lk, torch.float32, q_lengths=torch.tensor([lq]), q_len=lq, causal=True)
    assert torch.equal(bias[0, 0], released_future_mask(lq, lk))


def test_causal_rule_uses_each_clips_real_lengths_in_a_padded_batch():
    lq, lk = torch.tensor([3, 6, 5]), torch.tensor([7, 2, 5])
    bias = attention_bias(lk, 7, torch.float32, q_lengths=lq, q_len=6, causal=True)
    assert bias.shape == (3, 1, 6, 7)
    for b in range(3):
        q, k = int(lq[b]), int(lk[b])
        assert torch.equal(bias[b, 0, :q, :k], released_future_mask(q, k))
        assert torch.isinf(bias[b, 0, :, k:]).all()  # padded keys never attended
        assert torch.isfinite(bias[b, 0, :, 0]).all()  # no row fully masked: no NaN from softmax


def test_causal_self_attention_never_looks_ahead():
    torch.manual_seed(0)
    stack = AttentionStack(8, 2, 2, positions=True, embed_dropout=0.0, attn_dropout=0.0, relu_dropout=0.0,
                           res_dropout=0.0, scaled=True, causal=True).eval()
    x = torch.randn(1, 9, 8)
    later = x.clone()
    later[:, 5:] = torch.randn(1, 4, 8)
    lengths = torch.tensor([9])
    with torch.no_grad():
        a, b = stack(x, lengths), stack(later, lengths)
        assert torch.equal(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])
        stack.causal = False
        assert not torch.allclose(stack(x, lengths)[:, :5], stack(later, lengths)[:, :5])


@pytest.mark.parametrize("name", ["auxformer", "baseline1", "mult", "unimodal-audio", "unimodal-visual"])
def test_models_following_released_code_are_causal_by_default(name):
    assert get_model_meta(name).options()["causal"] is True
    model = create_model(name, num_classes=3, audio_dim=6, visual_dim=5, **get_model_meta(name).quick)
    stacks = [m for m in model.modules() if isinstance(m, AttentionStack)]
    assert stacks and all(s.causal for s in stacks)
    off = create_model(name, num_classes=3, audio_dim=6, visual_dim=5, causal=False, **get_model_meta(name).quick)
    assert not any(s.causal for s in off.modules() if isinstance(s, AttentionStack))


def test_baseline3_is_not_causal():
    assert "causal" not in get_model_meta("xmodal").options()
    model = create_model("xmodal", num_classes=3, audio_dim=6, visual_dim=5, **get_model_meta("xmodal").quick)
    assert not any(s.causal for s in model.modules() if isinstance(s, AttentionStack))


# --- positions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [130, 50, 7, 32])
def test_position_table_is_fairseqs(dim):
    half = dim // 2
    freq = np.exp(np.arange(half) * -(math.log(10000) / (half - 1)))
    angles = np.arange(12)[:, None] * freq[None, :]
    expected = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if dim % 2:
        expected = np.concatenate([expected, np.zeros((12, 1))], axis=1)
    expected[0] = 0
    np.testing.assert_allclose(sinusoidal_table(12, dim).numpy(), expected, atol=1e-6)


def test_zeroed_and_padded_frames_get_a_zero_position_row():
    x = torch.randn(2, 6, 10)
    x[0, 2] = 0        # a zeroed frame (clipping, masking, optimized regime)
    x[1, 4:] = 0       # padding
    x[0, 4, 0] = 0     # only the first channel decides, as in the released code
    pos = positions_like(x)
    table = sinusoidal_table(7, 10)
    assert torch.equal(pos[0, 2], torch.zeros(10)) and torch.equal(pos[0, 4], torch.zeros(10))
    assert torch.equal(pos[1, 4:], torch.zeros(2, 10))
    assert torch.equal(pos[0, 3], table[4])  # frame t gets position t + 1, whatever came before
    assert torch.equal(pos[1, :4], table[1:5])


# --- heads, projections, padding -------------------------------------------------------------------------


def test_auxformer_predicts_the_mean_of_its_three_heads_and_baseline1_its_one():
    torch.manual_seed(0)
    model = create_model("auxformer", num_classes=4, audio_dim=6, visual_dim=5, **get_model_meta("auxformer").quick)
    out = model.eval()(*_batch())
    torch.testing.assert_close(model.predict(out), (out["av"] + out["a"] + out["v"]) / 3)
    b1 = create_model("baseline1", num_classes=4, audio_dim=6, visual_dim=5, **get_model_meta("baseline1").quick)
    out = b1.eval()(*_batch())
    assert torch.equal(b1.predict(out), out["av"])


def test_audio_projection_is_skipped_at_model_width_but_counted():
    torch.manual_seed(0)
    model = AuxFormer(4, 8, 5, d_model=8, heads=2, layers=1).eval()
    audio, visual, la, lv = _batch(audio_dim=8)
    with torch.no_grad():
        ref = model(audio, visual, la, lv)["av"]
        model.proj_audio.conv.weight.mul_(3.0)
        assert torch.equal(model(audio, visual, la, lv)["av"], ref)
    assert model.proj_audio.conv.weight.numel() == 64
    assert not hasattr(AuxFormer(4, 8, 8, d_model=8, heads=2, layers=1), "proj_visual")


def test_a_padded_batch_equals_each_clip_alone():
    torch.manual_seed(1)
    model = create_model("auxformer", num_classes=4, audio_dim=6, visual_dim=5, **get_model_meta("auxformer").quick)
    model.eval()
    audio, visual, la, lv = _batch(audio_lengths=(3, 9, 6, 4), visual_lengths=(7, 2, 6, 8))
    with torch.no_grad():
        batch = model.predict(model(audio, visual, la, lv))
        for b in range(4):
            alone = model.predict(model(audio[b:b + 1, :la[b]], visual[b:b + 1, :lv[b]], la[b:b + 1], lv[b:b + 1]))
            torch.testing.assert_close(batch[b:b + 1], alone, atol=1e-5, rtol=1e-5)


def _batch(audio_lengths=(5, 9, 7), visual_lengths=(6, 8, 4), audio_dim=6, visual_dim=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    la, lv = torch.tensor(audio_lengths), torch.tensor(visual_lengths)
    audio = torch.randn(len(la), int(la.max()), audio_dim, generator=g)
    visual = torch.randn(len(lv), int(lv.max()), visual_dim, generator=g)
    audio *= (torch.arange(audio.shape[1])[None, :] < la[:, None])[..., None]
    visual *= (torch.arange(visual.shape[1])[None, :] < lv[:, None])[..., None]
    return audio, visual, la, lv


# --- official weights -------------------------------------------------------------------------------------


def released_state_dict(*, classes, audio_dim, d, layers, visual_dim=None, seed=0):
    """A state dict laid out as the released ``net/avmodel_AF.py`` saves it, with random values."""
    g = torch.Generator().manual_seed(seed)
    sd = {"conv_1d_a.weight": (d, audio_dim, 1)}
    if visual_dim is not None:
        sd["conv_1d_v.weight"] = (d, visual_dim, 1)
    for block, scalar in (("a_mem", False), ("v_mem", False), ("trans_a_mem", True), ("trans_v_mem", True),
                          ("trans_v_with_a", False), ("trans_a_with_v", False)):
        sd[f"{block}.version"] = (1,)
        sd[f"{block}.embed_positions._float_tensor"] = (1,)
        for i in range(layers):
            p = f"{block}.layers.{i}."
            if scalar:
                sd[p + "alpha"] = (1,)
            sd |= {p + "self_attn.in_proj_weight": (3 * d, d), p + "self_attn.in_proj_bias": (3 * d,),
                   p + "self_attn.out_proj.weight": (d, d), p + "self_attn.out_proj.bias": (d,),
                   p + "fc1.weight": (4 * d, d), p + "fc1.bias": (4 * d,), p + "fc2.weight": (d, 4 * d),
                   p + "fc2.bias": (d,), p + "layer_norms.0.weight": (d,), p + "layer_norms.0.bias": (d,),
                   p + "layer_norms.1.weight": (d,), p + "layer_norms.1.bias": (d,)}
        sd[f"{block}.layer_norm.weight"] = (d,)
        sd[f"{block}.layer_norm.bias"] = (d,)
    sd |= {"proj_aux1.weight": (512, d), "proj_aux1.bias": (512,), "proj_aux2.weight": (256, 512),
           "proj_aux2.bias": (256,), "proj_aux3.weight": (d, 256), "proj_aux3.bias": (d,),
           "out_layer_aux.weight": (classes, d), "out_layer_aux.bias": (classes,),
           "proj1.weight": (2 * d, 2 * d), "proj1.bias": (2 * d,), "proj2.weight": (2 * d, 2 * d),
           "proj2.bias": (2 * d,), "out_layer.weight": (classes, 2 * d), "out_layer.bias": (classes,)}
    return {k: torch.rand(shape, generator=g) for k, shape in sd.items()}


def test_release_configuration_loads_from_a_checkpoint_file(tmp_path):
    sd = released_state_dict(classes=6, audio_dim=1024, d=50, layers=5)
    torch.save(sd, tmp_path / "final_head.pt")
    model = from_official(tmp_path / "final_head.pt", num_classes=6, audio_dim=1024, visual_dim=50)
    ours = model.state_dict()
    assert not hasattr(model, "proj_visual") and len(model.cross_v2a.layers) == 5
    assert torch.equal(ours["proj_audio.conv.weight"], sd["conv_1d_a.weight"])
    assert torch.equal(ours["cross_v2a.layers.2.attn.in_proj.weight"], sd["trans_a_with_v.layers.2.self_attn.in_proj_weight"])
    assert torch.equal(ours["cross_a2v.norm.bias"], sd["trans_v_with_a.layer_norm.bias"])
    assert torch.equal(ours["self_v.layers.4.norm_ffn.weight"], sd["trans_v_mem.layers.4.layer_norms.1.weight"])
    assert ours["self_a.layers.0.alpha"].shape == () and ours["self_a.layers.0.alpha"] == sd["trans_a_mem.layers.0.alpha"][0]
    assert torch.equal(ours["aux_visual.layers.1.fc2.bias"], sd["v_mem.layers.1.fc2.bias"])
    assert torch.equal(ours["aux_head.hidden.1.weight"], sd["proj_aux2.weight"])
    assert torch.equal(ours["head.out.weight"], sd["out_layer.weight"])
    n_weights = sum(1 for k in sd if not k.endswith(("version", "_float_tensor")))
    assert n_weights == len(ours)  # every weight placed, nothing left at its initial value


def test_paper_configuration_takes_conv_1d_v():
    sd = released_state_dict(classes=4, audio_dim=130, visual_dim=4096, d=130, layers=5)
    model = from_official(sd, num_classes=4, audio_dim=130, visual_dim=4096)
    assert torch.equal(model.state_dict()["proj_visual.conv.weight"], sd["conv_1d_v.weight"])
    assert sum(p.numel() for p in model.parameters()) == 7_054_748


@pytest.mark.parametrize("change,culprit", [
    (lambda sd: sd.pop("trans_v_mem.layers.3.fc1.bias"), "self_v.layers.3.fc1.bias"),
    (lambda sd: sd.__setitem__("extra_head.weight", torch.zeros(2)), "extra_head.weight"),
    (lambda sd: sd.__setitem__("proj2.weight", torch.zeros(100, 99)), "proj2.weight"),
    (lambda sd: sd.__setitem__("a_mem.layers.0.self_attn.bias_k", torch.zeros(1, 1, 50)), "bias_k"),
])
def test_official_loader_refuses_a_mismatch_naming_the_key(change, culprit):
    sd = released_state_dict(classes=6, audio_dim=1024, d=50, layers=5)
    change(sd)
    with pytest.raises(ValidationError, match=culprit.replace(".", r"\.")):
        from_official(sd, num_classes=6, audio_dim=1024, visual_dim=50)


def test_official_weights_predict_the_mean_of_the_released_heads():
    sd = released_state_dict(classes=6, audio_dim=1024, d=50, layers=2, seed=4)
    model = from_official(sd, num_classes=6, audio_dim=1024, visual_dim=50).eval()
    audio, visual, la, lv = _batch(audio_lengths=(11,), visual_lengths=(5,), audio_dim=1024, visual_dim=50)
    with torch.no_grad():
        out = model(audio, visual, la, lv)
    torch.testing.assert_close(model.predict(out), sum(out.values()) / 3)


def test_models_show_mentions_the_official_loader():
    from click.testing import CliRunner

    from avbench.cli import main

    result = CliRunner().invoke(main, ["models", "show", "auxformer"])
    assert result.exit_code == 0 and "from_official" in result.output


# --- z-normalisation ------------------------------------------------------------------------------------------


def _copy_store(src, path, *, change_rows=(), missing_visual=None, normalized=False):
    """A copy of ``src`` whose clips at ``change_rows`` have other features; optional missing frames."""
    with StoreWriter(path, name=src.name, audio_dim=src.audio_dim, visual_dim=src.visual_dim,
                     audio_rate=src.audio_rate, visual_rate=src.visual_rate, label_names=src.label_names,
                     dtype=src.dtype, normalized=normalized) as w:
        for i, row in enumerate(src.manifest.to_dict("records")):
            a, v = np.array(src.audio(i), dtype=np.float32), np.array(src.visual(i), dtype=np.float32)
            if i in set(change_rows):
                a, v = a * 3 + 1, v - 2
            miss = None
            if missing_visual is not None and i in missing_visual:
                miss = np.zeros(len(v), dtype=bool)
                miss[missing_visual[i]] = True
                v[miss] = 0
            w.add(row["clip_id"], row["speaker"], row["label"], a, v, visual_missing=miss)
        return w.close({"generator": "test copy"})


def test_statistics_come_from_the_training_partition_only(tiny_store, tmp_path):
    parts = load_splits(tiny_store, 1)[0].indices(tiny_store.speakers)
    changed = _copy_store(tiny_store, tmp_path / "changed", change_rows=list(parts["dev"]) + list(parts["test"]))
    a, b = fit_normalizer(tiny_store, parts["train"]), fit_normalizer(changed, parts["train"])
    assert a.digest() == b.digest() and a.frames == b.frames
    c = fit_normalizer(changed, parts["test"])
    assert c.digest() != a.digest()
    frames = np.concatenate([read_clip(tiny_store, r, a)[0] for r in parts["train"]])
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(frames.std(0), 1, atol=1e-3)


def test_missing_frames_are_left_out_and_stay_zero(tiny_store, tmp_path):
    missing = {0: [0, 1], 3: [2]}
    store = _copy_store(tiny_store, tmp_path / "missing", missing_visual=missing)
    assert store.meta["missing_frames"] == ["visual"]
    rows = np.arange(6)
    norm = fit_normalizer(store, rows)
    kept = np.concatenate([np.delete(np.asarray(store.visual(r), dtype=np.float64), missing.get(r, []), axis=0)
                           for r in rows])
    np.testing.assert_allclose(norm.mean["visual"], kept.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(norm.std["visual"], kept.std(0), rtol=1e-6, atol=1e-9)
    assert norm.frames["visual"] == len(kept)
    _, v = read_clip(store, 0, norm)
    assert not v[:2].any() and v[2:].any()
    assert norm.apply("visual", np.zeros((1, store.visual_dim)))[0].any()  # a real zero frame is not "missing"
    assert EPS == 1e-6


def test_missing_mask_must_mark_zero_frames(tiny_store, tmp_path):
    with StoreWriter(tmp_path / "bad", name="bad", audio_dim=2, visual_dim=2, audio_rate=10, visual_rate=10,
                     label_names=["a", "b"]) as w:
        with pytest.raises(ValidationError, match="visual frames marked missing must hold zeros"):
            w.add("c1", "s1", "a", np.ones((3, 2)), np.ones((2, 2)), visual_missing=np.array([True, False]))
        with pytest.raises(ValidationError, match="one entry per visual frame"):
            w.add("c1", "s1", "a", np.ones((3, 2)), np.zeros((2, 2)), visual_missing=np.array([True]))
        w.abort()


def _run(store, out, **kw):
    return run("optimized", ["auxformer"], corpus=store.path, profile="smoke", seeds=1, out=out, progress=False,
               **kw)


def test_unit_records_its_normalization_and_a_normalized_store_is_read_as_is(tiny_store, tmp_path):
    _run(tiny_store, tmp_path / "run", echo=lambda s: None)
    unit = next((tmp_path / "run").glob("units/**/seed-00"))
    record = json.loads((unit / "train.json").read_text())
    assert record["normalization"]["source"] == "train partition"
    assert record["unit"]["semantics"] == unit_semantics("auxformer")
    assert (unit / "normalization.npz").exists() and not (unit / "identity.json").exists()
    pre = _copy_store(tiny_store, tmp_path / "pre", normalized=True)
    _run(pre, tmp_path / "run2", echo=lambda s: None)
    record = json.loads(next((tmp_path / "run2").glob("units/**/seed-00/train.json")).read_text())
    assert "already normalized" in record["normalization"]["source"]
    assert not list((tmp_path / "run2").glob("units/**/normalization.npz"))


def test_units_of_older_semantics_are_retrained_with_a_message(tiny_store, tmp_path):
    _run(tiny_store, tmp_path, echo=lambda s: None)
    train = next(tmp_path.glob("units/**/seed-00/train.json"))
    record = json.loads(train.read_text())
    del record["unit"]["semantics"]  # as written before semantics versions existed
    train.write_text(json.dumps(record))
    lines = []
    summary = _run(tiny_store, tmp_path, echo=lines.append)
    assert summary.trained == 1 and summary.reused == 0
    assert any("retraining" in line and "semantics" in line for line in lines)
    assert json.loads(train.read_text())["unit"]["semantics"] == unit_semantics("auxformer")


# --- selection and early stopping ---------------------------------------------------------------------------------


def test_dev_loss_is_the_cross_entropy_of_the_averaged_heads(tiny_store):
    torch.manual_seed(0)
    model = create_model("auxformer", num_classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                         visual_dim=tiny_store.visual_dim, **get_model_meta("auxformer").quick).eval()
    rows = np.arange(20)
    smoke = get_profile("smoke")
    from avbench.batching import make_batch

    b = make_batch(tiny_store, rows, pool=smoke.frame_pool)
    with torch.no_grad():
        out = model(*b.inputs())
        expected = float(torch.nn.functional.cross_entropy((out["av"] + out["a"] + out["v"]) / 3, b.labels))
    assert dev_scores(model, tiny_store, rows, smoke, torch.device("cpu"))["dev_loss"] == pytest.approx(expected, rel=1e-5)


def test_paper_profile_has_no_patience_and_trains_every_epoch(tiny_store):
    assert get_profile("paper").early_stop is None
    prof = get_profile("smoke").replace(epochs=4, early_stop=None, lr=0.5)  # a wild lr: dev loss goes up
    torch.manual_seed(0)
    model = create_model("auxformer", num_classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                         visual_dim=tiny_store.visual_dim, **get_model_meta("auxformer").quick)
    parts = load_splits(tiny_store, 1)[0].indices(tiny_store.speakers)
    result = fit(model, tiny_store, parts["train"], parts["dev"], regime="standard", profile=prof, seed=0,
                 device=torch.device("cpu"), progress=False)
    assert len(result.history) == 4
    losses = [h["dev_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1


def test_every_registered_model_declares_a_semantics_version():
    for name in MODELS.names():
        assert get_model_meta(name).semantics_version >= 1
        assert unit_semantics(name).startswith(f"model={get_model_meta(name).semantics_version},")


def test_table4_row_without_the_main_loss_still_predicts(tmp_path):
    """Table 4's (0.00, 0.50, 0.50): F_av gets no training signal, yet the averaged prediction
    scores 0.738 in the paper; predicting from the main head alone gave chance (0.158) before."""
    from avbench.protocol import Protocol

    proto = Protocol.from_dict({"name": "table4-row", "models": ["auxformer"], "regimes": ["optimized"],
                                "variants": [{"name": "l=0.00,0.50,0.50", "config": {"loss_weights": [0.0, 0.5, 0.5]}}],
                                "conditions": [{"kind": "full"}]})
    summary = run(proto, corpus="synthetic", profile="smoke", seeds=1, out=tmp_path, progress=False,
                  echo=lambda s: None)
    t = summary.table
    micro = t[(t.condition == "full") & (t.metric == "micro_f1")].value
    chance = 1 / 6
    assert len(micro) == 1 and float(micro.iloc[0]) >= 2 * chance
