"""The synthetic corpus: deterministic, CREMA-D-shaped, and a fair test bed."""

import numpy as np
import pytest

from avbench.data import default_synthetic, generate_synthetic, open_corpus
from avbench.data.store import DATA_FILES
from avbench.data.synthetic import CREMA_D_COUNTS, LABELS, _largest_remainder
from avbench.registry import CORPORA
from avbench.validation import ValidationError

TINY = dict(n_speakers=9, clips_per_speaker=4, visual_dim=8)


@pytest.fixture(scope="module")
def default_store(tmp_path_factory):
    """The default corpus (2184 clips, visual 64-d), generated once for the module."""
    return generate_synthetic(tmp_path_factory.mktemp("syn") / "default")


def test_same_seed_gives_identical_files(tmp_path):
    a = generate_synthetic(tmp_path / "a", seed=3, **TINY)
    b = generate_synthetic(tmp_path / "b", seed=3, **TINY)
    c = generate_synthetic(tmp_path / "c", seed=4, **TINY)
    for name in DATA_FILES:
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    assert a.checksum == b.checksum != c.checksum
    assert (a.path / "audio.bin").read_bytes() != (c.path / "audio.bin").read_bytes()
    assert a.synthetic and a.provenance["parameters"]["seed"] == 3
    assert a.provenance["generative_model"]["latent_dim"] > 0


def test_default_shape_like_crema_d(default_store):
    s, m = default_store, default_store.manifest
    assert (len(s), s.audio_dim, s.visual_dim, s.audio_rate, s.visual_rate) == (2184, 130, 64, 62.5, 30.0)
    assert s.label_names == list(LABELS) and s.dtype == "float16"
    assert m.speaker.nunique() == 91 and (m.speaker.value_counts() == 24).all()
    assert m.groupby("speaker").gender.first().value_counts().to_dict() == {"male": 48, "female": 43}
    assert m.sentence.nunique() == 12
    seconds = m.audio_frames / s.audio_rate
    assert seconds.min() >= 1.28 and seconds.max() <= 5.02
    assert 2.0 < seconds.median() < 3.0 and ((seconds > 2) & (seconds < 3)).mean() > 0.5
    assert (abs(seconds - m.visual_frames / s.visual_rate) < 0.04).all()
    intended = m.intended_label.value_counts()
    assert [intended[c] for c in LABELS] == list(_largest_remainder(2184))
    share = m.label.value_counts(normalize=True)
    prior = np.array(CREMA_D_COUNTS) / sum(CREMA_D_COUNTS)
    np.testing.assert_allclose([share[c] for c in LABELS], prior, atol=0.02)
    assert (m.label != m.intended_label).mean() == pytest.approx(0.06, abs=0.002)


def test_audio_is_z_normalised(default_store):
    audio = np.asarray(default_store._data["audio"], dtype=np.float32)
    assert np.abs(audio.mean(0)).max() < 0.03 and np.abs(audio.std(0) - 1).max() < 0.03


def ridge_accuracy(features, labels, train):
    """Accuracy of a ridge classifier on one-hot targets: a cheap linear probe."""
    x = (features - features[train].mean(0)) / features[train].std(0)
    x = np.hstack([x, np.ones((len(x), 1))])
    w = np.linalg.solve(x[train].T @ x[train] + 10 * np.eye(x.shape[1]), x[train].T @ np.eye(6)[labels[train]])
    return ((x[~train] @ w).argmax(1) == labels[~train]).mean()


def test_both_modalities_needed(default_store):
    """Neither modality alone suffices: fusing both beats either by a clear margin."""
    s = default_store
    audio = np.stack([s.audio(i).mean(0, dtype=np.float32) for i in range(len(s))])
    visual = np.stack([s.visual(i).mean(0, dtype=np.float32) for i in range(len(s))])
    speakers = np.unique(s.speakers)
    train = np.isin(s.speakers, np.random.default_rng(0).permutation(speakers)[:64])
    acc = {k: ridge_accuracy(x, s.labels, train)
           for k, x in (("a", audio), ("v", visual), ("av", np.hstack([audio, visual])))}
    assert 0.3 < acc["a"] < 0.65 and 0.3 < acc["v"] < 0.65, acc
    assert acc["av"] > max(acc["a"], acc["v"]) + 0.07, acc


def lag_fit(store, shifts=range(-4, 17)):
    """R^2 of predicting audio frames from visual frames ``k`` audio frames earlier, per ``k``.

    Clip means are removed, so only the within-clip dynamics of the shared
    latent trajectory count; the best ``k`` estimates the audio delay.
    """
    fits = {}
    for k in shifts:
        xs, ys = [], []
        for i in range(len(store)):
            a, v = store.audio(i).astype(np.float64), store.visual(i).astype(np.float64)
            t = (np.arange(len(a)) + 0.5 - k) / store.audio_rate  # when audio frame n shows visual time
            pos = np.clip(t * store.visual_rate - 0.5, 0, len(v) - 1)
            lo = np.floor(pos).astype(int)
            w = (pos - lo)[:, None]
            ok = (t > 0) & (t < len(v) / store.visual_rate)
            x = (v[lo] * (1 - w) + v[np.minimum(lo + 1, len(v) - 1)] * w)[ok]
            xs.append(x - x.mean(0))
            ys.append(a[ok] - a[ok].mean(0))
        x, y = np.concatenate(xs), np.concatenate(ys)
        resid = y - x @ np.linalg.solve(x.T @ x, x.T @ y)
        fits[k / store.audio_rate] = 1 - (resid ** 2).sum() / (y ** 2).sum()
    return fits


def test_audio_trails_visual_by_about_120ms(tmp_path):
    store = generate_synthetic(tmp_path / "s", n_speakers=4, clips_per_speaker=8, visual_dim=16)
    lags = store.manifest.lag_ms
    assert lags.between(80, 160).all() and abs(lags.mean() - 120) < 15
    fit = lag_fit(store)
    assert 0.08 <= max(fit, key=fit.get) <= 0.18 and fit[0.128] > 1.08 * fit[0.0]


def test_no_lag_when_configured(tmp_path):
    store = generate_synthetic(tmp_path / "s", n_speakers=4, clips_per_speaker=8, visual_dim=16,
                               lag=0.0, lag_jitter=0.0)
    fit = lag_fit(store)
    assert abs(max(fit, key=fit.get)) <= 0.05 and fit[0.128] < 0.95 * fit[0.0]


def test_wide_visual_features(tmp_path):
    store = generate_synthetic(tmp_path / "s", n_speakers=3, clips_per_speaker=2, visual_dim=4096)
    assert store.visual(0).shape[1] == 4096
    assert 0.5 < np.asarray(store.visual(0), dtype=np.float32).std() < 2


def test_default_synthetic_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AVBENCH_HOME", str(tmp_path))
    (tmp_path / ".synthetic-stale.tmp-x").mkdir()  # a killed earlier creation
    first = default_synthetic(**TINY)
    assert first.path.parent == tmp_path and first.path.name.startswith("synthetic-")
    stamp = (first.path / "store.json").stat().st_mtime_ns
    again = open_corpus("synthetic", **TINY)
    assert again.path == first.path and (again.path / "store.json").stat().st_mtime_ns == stamp
    assert default_synthetic(**TINY, seed=1).path != first.path
    assert "synthetic" in CORPORA


def test_lost_race_opens_the_winner(tmp_path, monkeypatch):
    """Another process finishes the same corpus first: this one opens the winner's store."""
    import avbench.data.synthetic as synthetic

    real = synthetic.generate_synthetic

    def race(path, **params):
        real(path, **params)  # the other process wins ...
        return real(path, **params)  # ... so this writer finds the store in place

    monkeypatch.setenv("AVBENCH_HOME", str(tmp_path))
    monkeypatch.setattr(synthetic, "generate_synthetic", race)
    store = synthetic.default_synthetic(**TINY)
    assert len(store) == 36
    assert [p.name for p in tmp_path.iterdir() if p.name != "verified"] == [store.path.name]  # no temporary


def test_bad_parameters():
    with pytest.raises(ValidationError, match=r"The 'n_speakers' parameter of generate_synthetic"):
        generate_synthetic("/nonexistent/x", n_speakers=0)
    with pytest.raises(ValidationError, match=r"unknown option 'visual_dims'.*visual_dim"):
        default_synthetic(visual_dims=8)
