"""Training regimes, metrics, determinism and mid-training resume."""

import numpy as np
import pytest
import torch

from avbench.batching import batches, pool_frames
from avbench.models import create_model
from avbench.profiles import get_profile
from avbench.training import apply_regime, f1_scores, fit, regime_groups, resolve_device
from avbench.validation import ValidationError

SMOKE = get_profile("smoke")


def test_optimized_regime_groups_are_20_20_60():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, v = regime_groups(32, rng)
        assert len(a) == 6 and len(v) == 6 and not set(a) & set(v)
    a, v = regime_groups(10, rng)
    assert len(a) == 2 and len(v) == 2


def test_regimes_zero_what_they_say(tiny_store):
    batch = next(batches(tiny_store, np.arange(32), 32))
    same = apply_regime("standard", batch, np.random.default_rng(1))
    assert same.audio is batch.audio
    out = apply_regime("optimized", batch, np.random.default_rng(1))
    drop_a, drop_v = regime_groups(32, np.random.default_rng(1))
    audio_zero = [i for i in range(32) if not out.audio[i].any()]
    visual_zero = [i for i in range(32) if not out.visual[i].any()]
    assert sorted(audio_zero) == sorted(drop_a) and sorted(visual_zero) == sorted(drop_v)
    intact = sorted(set(range(32)) - set(drop_a) - set(drop_v))
    assert len(intact) == 20
    assert torch.equal(out.audio[intact], batch.audio[intact]) and torch.equal(out.visual[intact], batch.visual[intact])
    assert batch.audio[drop_a].any()  # the input batch itself is not modified
    with pytest.raises(ValidationError, match="'regime'"):
        apply_regime("dropout", batch, np.random.default_rng(1))


def test_f1_scores_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    s = f1_scores(y, p)
    # per-class F1: c0 = 2*1/(2+2)=0.5, c1 = 2*2/(3+2)=0.8, c2 = 2*1/(1+2)=2/3
    assert s["micro_f1"] == pytest.approx(4 / 6)
    assert s["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert s["accuracy"] == s["micro_f1"]


def test_pool_frames_averages_windows():
    x = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_allclose(pool_frames(x, 4)[:, 0], [1.5, 5.5, 8.5])


def _fit(store, profile, state_path=None, seed=3):
    torch.manual_seed(seed)
    model = create_model("auxformer", num_classes=len(store.label_names), audio_dim=store.audio_dim,
                         visual_dim=store.visual_dim, **profile.model_config(model_meta()))
    rows = np.arange(len(store))
    return fit(model, store, rows[:48], rows[48:], regime="optimized", profile=profile, seed=seed,
               device=torch.device("cpu"), state_path=state_path, progress=False)


def model_meta():
    from avbench.models import get_model_meta
    return get_model_meta("auxformer")


def test_same_seed_same_weights(tiny_store):
    a, b = _fit(tiny_store, SMOKE), _fit(tiny_store, SMOKE)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.history[-1]["dev_loss"] == b.history[-1]["dev_loss"]


def test_resume_after_interruption_matches_uninterrupted(tiny_store, tmp_path):
    prof = SMOKE.replace(epochs=3, early_stop=10)
    full = _fit(tiny_store, prof)
    state = tmp_path / "state.pt"
    _fit(tiny_store, prof.replace(epochs=1), state_path=state)  # "killed" after epoch 1
    resumed = _fit(tiny_store, prof, state_path=state)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert all(torch.equal(full.state_dict[k], resumed.state_dict[k]) for k in full.state_dict)


def test_device_option():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValidationError, match="'device'"):
        resolve_device("tpu")
