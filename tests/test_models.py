"""Contract suite: every registered model, as timm tests every model.

Each model is built with its ``quick`` config on tiny dimensions and checked
for the model contract (named ``(B, classes)`` logits, loss weights naming
outputs, a working backward pass), robustness of the inputs (zeroed
modalities, padding invariance, determinism) and, at the paper config, the
parameter count it declares against Table 5.  AuxFormer's ablation options
and a few pinned option refusals are tested at the end; test_option_constraints.py
probes every declared option constraint.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avbench.models import create_model, get_model_meta, model_parameters
from avbench.registry import MODELS
from avbench.validation import ValidationError

NAMES = MODELS.names()
CLASSES, AUDIO, VISUAL = 3, 12, 10
PAPER_DIMS = dict(num_classes=4, audio_dim=130, visual_dim=4096)


def build(name: str, seed: int = 0, **options):
    torch.manual_seed(seed)
    config = {**get_model_meta(name).quick, **options}
    return create_model(name, num_classes=CLASSES, audio_dim=AUDIO, visual_dim=VISUAL, **config)


def make_batch(seed: int = 1, audio_lengths=(5, 9, 7), visual_lengths=(6, 8, 5)):
    """Zero-padded random batch (padding exactly zero, as the collate function makes it)."""
    g = torch.Generator().manual_seed(seed)
    la, lv = torch.tensor(audio_lengths), torch.tensor(visual_lengths)
    audio = torch.randn(len(la), int(la.max()), AUDIO, generator=g)
    visual = torch.randn(len(lv), int(lv.max()), VISUAL, generator=g)
    audio *= (torch.arange(audio.shape[1])[None, :] < la[:, None])[..., None]
    visual *= (torch.arange(visual.shape[1])[None, :] < lv[:, None])[..., None]
    return audio, visual, la, lv


def pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    return F.pad(x, (0, 0, 0, length - x.shape[1]))


def test_registry_holds_every_family():
    for name in ("auxformer", "baseline1", "mult", "mult-xl", "xmodal", "xmodal-xl", "unimodal-audio",
                 "unimodal-visual"):
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_output_shapes(name):
    model = build(name).train()
    audio, visual, la, lv = make_batch()
    out = model(audio, visual, la, lv)
    assert isinstance(out, dict) and out
    for key, logits in out.items():
        assert logits.shape == (3, CLASSES), key
    assert set(model.loss_weights) <= set(out)
    assert all(w >= 0 for w in model.loss_weights.values())
    assert math.isclose(sum(model.loss_weights.values()), 1.0, abs_tol=1e-6)
    assert model.predict(out).shape == (3, CLASSES)
    labels = torch.tensor([0, 1, 2])
    loss = sum(w * F.cross_entropy(out[k], labels) for k, w in model.loss_weights.items())
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_zeroed_modality_is_ordinary_input(name):
    model = build(name).eval()
    audio, visual, la, lv = make_batch()
    with torch.no_grad():
        for a, v in ((torch.zeros_like(audio), visual), (audio, torch.zeros_like(visual))):
            out = model(a, v, la, lv)
            assert all(torch.isfinite(t).all() for t in out.values())
            assert torch.isfinite(model.predict(out)).all()


@pytest.mark.parametrize("name", NAMES)
def test_padding_never_changes_a_clip(name):
    model = build(name).eval()
    audio, visual, la, lv = make_batch()
    with torch.no_grad():
        ref = model.predict(model(audio, visual, la, lv))
        longer = model.predict(model(pad_to(audio, audio.shape[1] + 6), pad_to(visual, visual.shape[1] + 4), la, lv))
        # clip 0 alone, without any padding
        alone = model.predict(model(audio[:1, :la[0]], visual[:1, :lv[0]], la[:1], lv[:1]))
    torch.testing.assert_close(longer, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, ref[:1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_and_outputs(name):
    a, b = build(name, seed=3), build(name, seed=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    batch = make_batch()
    with torch.no_grad():
        a.eval(), b.eval()
        oa, ob = a(*batch), b(*batch)
        a.train(), b.train()
        torch.manual_seed(7)
        ta = a(*batch)
        torch.manual_seed(7)
        tb = b(*batch)
    for k in oa:
        assert torch.equal(oa[k], ob[k]) and torch.equal(ta[k], tb[k])
    assert not all(torch.equal(x, y) for x, y in zip(sa.values(), build(name, seed=4).state_dict().values()))


@pytest.mark.parametrize("name", NAMES)
def test_paper_parameter_count(name):
    meta = get_model_meta(name)
    if meta.paper_params is None:
        pytest.skip(f"{name} declares no paper parameter count")
    count, breakdown = model_parameters(name, **PAPER_DIMS)
    assert sum(breakdown.values()) == count
    assert abs(count - meta.paper_params) <= meta.params_tolerance * meta.paper_params, \
        f"{name}: {count:,} parameters vs the paper's {meta.paper_params:,} (tolerance {meta.params_tolerance})"


@pytest.mark.parametrize("name,count", [("auxformer", 7_054_748), ("baseline1", 4_776_994), ("mult", 358_384)])
def test_exact_table5_counts(name, count):
    assert get_model_meta(name).params_tolerance == 0.0
    assert model_parameters(name, **PAPER_DIMS)[0] == count


@pytest.mark.parametrize("name", [n for n in NAMES if len(get_model_meta(n).modalities) == 1])
def test_unimodal_model_ignores_the_other_modality(name):
    model = build(name).eval()
    audio, visual, la, lv = make_batch()
    other = get_model_meta(name).modalities[0] != "audio"  # True: the ignored one is audio
    with torch.no_grad():
        ref = model(audio, visual, la, lv)
        if other:
            alt = model(torch.randn(3, 11, AUDIO), visual, torch.tensor([11, 2, 4]), lv)
        else:
            alt = model(audio, torch.randn(3, 11, VISUAL), la, torch.tensor([11, 2, 4]))
    for k in ref:
        assert torch.equal(ref[k], alt[k])


def test_unimodal_predict_averages_logits():
    model = build("unimodal-audio").eval()
    with torch.no_grad():
        out = model(*make_batch())
    torch.testing.assert_close(model.predict(out), (out["main"] + out["aux"]) / 2)
    assert model.loss_weights == {"main": 0.5, "aux": 0.5}


def test_baseline1_is_auxformer_without_auxiliary_networks():
    model = build("baseline1")
    out = model(*make_batch())
    assert set(out) == {"av"} and model.loss_weights == {"av": 1.0}
    aux = model_parameters("auxformer", **PAPER_DIMS)[1]
    b1 = model_parameters("baseline1", **PAPER_DIMS)[1]
    assert {k: v for k, v in aux.items() if not k.startswith("aux")} == b1


# --- AuxFormer ablation options (Table 3, Figs. 6-7, Table 4) -------------------------------------------


def test_pos_enc_off_changes_outputs_not_parameters():
    on, off = build("auxformer", pos_enc=True).eval(), build("auxformer", pos_enc=False).eval()
    assert all(torch.equal(x, y) for x, y in zip(on.state_dict().values(), off.state_dict().values()))
    batch = make_batch()
    with torch.no_grad():
        assert not torch.allclose(on(*batch)["av"], off(*batch)["av"])


@pytest.mark.parametrize("options", [{"self_attention": "none"}, {"self_attention": "lstm"},
                                     {"self_attention": "gru"}, {"token": "cls"}, {"token": "mean"},
                                     {"pos_enc": False}])
def test_auxformer_ablations_run_and_are_padding_safe(options):
    model = build("auxformer", **options)
    audio, visual, la, lv = make_batch()
    out = model(audio, visual, la, lv)
    assert {k: v.shape for k, v in out.items()} == {k: (3, CLASSES) for k in ("av", "a", "v")}
    sum(out.values()).sum().backward()
    model.eval()
    with torch.no_grad():
        ref = model(audio, visual, la, lv)["av"]
        longer = model(pad_to(audio, 14), pad_to(visual, 13), la, lv)["av"]
    torch.testing.assert_close(longer, ref, atol=1e-5, rtol=1e-5)


def test_self_attention_variants_change_the_parameter_count():
    counts = {kind: model_parameters("auxformer", self_attention=kind, **PAPER_DIMS)[0]
              for kind in ("scaled", "none", "lstm", "gru")}
    assert counts["scaled"] == 7_054_748
    assert counts["none"] == 7_054_748 - 2 * 1_022_715
    assert counts["none"] < counts["gru"] < counts["lstm"]


def test_valid_loss_weights_are_used():
    model = build("auxformer", loss_weights=(0.8, 0.1, 0.1))
    assert model.loss_weights == pytest.approx({"av": 0.8, "a": 0.1, "v": 0.1})
    model = build("auxformer", loss_weights=(0.9, 0.0, 0.1))
    assert model.loss_weights == pytest.approx({"av": 0.9, "a": 0.0, "v": 0.1})


@pytest.mark.parametrize("name", NAMES)
def test_unknown_options_are_rejected_with_the_list_of_options(name):
    with pytest.raises(ValidationError) as err:
        create_model(name, num_classes=4, audio_dim=130, visual_dim=4096, no_such_option=1)
    msg = str(err.value)
    assert "no_such_option" in msg and "Its options:" in msg
    for option in get_model_meta(name).options():
        assert option in msg


@pytest.mark.parametrize("name,options,param", [
    ("auxformer", {"token": "first"}, "token"),
    ("auxformer", {"heads": 7}, "heads"),
    ("auxformer", {"self_attention": "rnn"}, "self_attention"),
    ("mult", {"heads": 4}, "heads"),
    ("mult", {"head_hidden": (0,)}, "head_hidden"),
    ("xmodal", {"enc_layers": 0}, "enc_layers"),
    ("xmodal", {"out_dropout": 1.0}, "out_dropout"),
    ("unimodal-audio", {"loss_weights": (0.7, 0.7)}, "loss_weights"),
    ("unimodal-audio", {"loss_weights": (0.5, 0.25, 0.25)}, "loss_weights"),
    ("unimodal-visual", {"self_stacks": 0}, "self_stacks"),
])
def test_bad_option_values_name_the_option(name, options, param):
    """What each family must refuse, pinned by hand (test_option_constraints.py derives the rest
    from the declarations, so it cannot tell a declaration that is too loose)."""
    with pytest.raises(ValidationError, match=f"'{param}' option of model '{name}'"):
        build(name, **options)


@pytest.mark.parametrize("name,weights,n", [("auxformer", (0.5, 0.5), 3), ("unimodal-audio", (0.2, 0.3, 0.5), 2)])
def test_loss_weights_need_one_weight_per_head(name, weights, n):
    with pytest.raises(ValidationError, match=f"'loss_weights' option .* a list of {n} non-negative numbers"):
        build(name, loss_weights=weights)
