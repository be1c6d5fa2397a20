"""Training regimes, metrics, determinism and mid-training resume."""

import numpy as np
import pytest
import torch

from avbench.batching import batches, pool_frames
from avbench.models import create_model, get_model_meta
from avbench.profiles import get_profile
from avbench.devices import resolve_device
from avbench.training import apply_regime, f1_scores, fit, predict, regime_groups
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


def test_history_records_the_dev_f1_of_the_selected_prediction(tiny_store):
    """Each epoch's dev micro- and macro-F1 are those of the model's scored prediction on the dev rows
    (what avbench.training.predict gives), from the pass that computes the dev loss."""
    one = SMOKE.replace(epochs=1)
    result = _fit(tiny_store, one)
    model = create_model("auxformer", num_classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                         visual_dim=tiny_store.visual_dim, **one.model_config(model_meta()))
    model.load_state_dict(result.state_dict)  # one epoch: the selected weights are the epoch's
    dev = np.arange(len(tiny_store))[48:]
    scored = predict(model, tiny_store, dev, profile=one, device=torch.device("cpu"))
    expected = f1_scores(scored.label, scored.pred)
    h = result.history[0]
    assert h["dev_micro_f1"] == pytest.approx(expected["micro_f1"])
    assert h["dev_macro_f1"] == pytest.approx(expected["macro_f1"])
    assert h["dev_micro_f1"] != h["dev_macro_f1"]  # two scores, not one twice


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


def test_bucket_batching_covers_every_row_once_with_less_padding(tiny_store):
    from avbench.batching import batch_rows

    rows = np.arange(len(tiny_store.labels))
    lengths = tiny_store.manifest["audio_frames"].to_numpy()
    random = batch_rows(rows, 8, generator=np.random.default_rng(0), lengths=lengths)
    bucket = batch_rows(rows, 8, generator=np.random.default_rng(0), batching="bucket", lengths=lengths)
    assert sorted(np.concatenate(bucket)) == list(rows)
    again = batch_rows(rows, 8, generator=np.random.default_rng(0), batching="bucket", lengths=lengths)
    assert all(np.array_equal(a, b) for a, b in zip(bucket, again))

    def padded(groups):
        return sum(len(g) * lengths[g].max() for g in groups)

    assert padded(bucket) < padded(random)


def test_prefetching_gives_the_same_batches_and_draws_no_training_randomness(tiny_store):
    rows = np.arange(40)
    made = {}
    for depth in (0, 2):
        rng = np.random.default_rng(7)
        it = batches(tiny_store, rows, 8, generator=rng, prefetch=depth)
        made[depth] = [b for b in it]
        made[f"rng{depth}"] = rng.integers(1 << 30)  # the state after the batch order was drawn
    assert made["rng0"] == made["rng2"]
    for a, b in zip(made[0], made[2]):
        assert np.array_equal(a.rows, b.rows) and torch.equal(a.audio, b.audio) and torch.equal(a.visual, b.visual)


def test_prefetch_errors_reach_the_training_loop(tiny_store):
    from avbench.batching import Prefetcher

    def make(group):
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        next(Prefetcher(make, [np.arange(3)], depth=2))


def test_fit_records_data_wait_and_refuses_cpu_half_precision(tiny_store):
    rows = np.arange(len(tiny_store.labels))
    model = create_model("auxformer", num_classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                         visual_dim=tiny_store.visual_dim, **SMOKE.model_config(get_model_meta("auxformer")))
    one = SMOKE.replace(epochs=1, batching="bucket")
    result = fit(model, tiny_store, rows[:48], rows[48:64], regime="standard", profile=one, seed=0,
                 device=torch.device("cpu"), progress=False)
    h = result.history[0]
    assert 0.0 <= h["data_wait_seconds"] <= h["train_seconds"]
    with pytest.raises(ValidationError, match="'precision'.*CUDA only"):
        fit(model, tiny_store, rows[:48], rows[48:64], regime="standard", profile=one.replace(precision="bf16"),
            seed=0, device=torch.device("cpu"), progress=False)
    assert SMOKE.replace(batching="bucket").key == "smoke-bucket" and SMOKE.key == "smoke"
    assert one.key == f"smoke-{one.settings_hash()}-bucket"  # one epoch: not the registered smoke profile
    for param in ("batching", "precision", "memory"):  # refused when the profile is made, before any training
        with pytest.raises(ValidationError, match=f"The '{param}' parameter of Profile must be one of"):
            SMOKE.replace(**{param: "fastest"})
