"""The feature store: round trips, lazy loading, integrity checks, clear errors."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from avbench.data import FeatureStore, StoreWriter, crema_d_labels, import_arrays, open_corpus
from avbench.validation import ValidationError

LABELS = ["anger", "neutral"]


def clips(n=5, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield (f"c{i}", f"s{i % 3}", LABELS[i % 2], rng.normal(size=(3 + i, 4)), rng.normal(size=(2 + i, 3)))


def writer(path, dtype="float16"):
    return StoreWriter(path, name="tiny", audio_dim=4, visual_dim=3, audio_rate=62.5, visual_rate=30,
                       label_names=LABELS, dtype=dtype)


def write_store(path, dtype="float16", n=5):
    with writer(path, dtype) as w:
        for c in clips(n):
            w.add(*c, sentence="IEO")
        return w.close({"generator": "test"})


@pytest.mark.parametrize("dtype,tol", [("float16", 1e-2), ("float32", 1e-6)])
def test_round_trip(tmp_path, dtype, tol):
    store = write_store(tmp_path / "s", dtype)
    again = FeatureStore.open(tmp_path / "s", verify=True)
    assert len(again) == 5 and again.dtype == dtype and again.label_names == LABELS
    for i, (cid, spk, label, audio, visual) in enumerate(clips()):
        assert again.manifest.clip_id[i] == cid and again.speakers[i] == spk
        assert again.label_names[again.labels[i]] == label
        np.testing.assert_allclose(again.audio(i), audio, atol=tol, rtol=tol)
        np.testing.assert_allclose(again.visual(i), visual, atol=tol, rtol=tol)
        assert again.audio(i).dtype == np.dtype(dtype)
    assert list(again.manifest.columns[:5]) == ["clip_id", "speaker", "label", "audio_frames", "visual_frames"]
    assert (again.manifest.sentence == "IEO").all()
    assert store.checksum == again.checksum and len(again.checksum) == 16


def test_lazy_memmap_and_provenance(tmp_path):
    store = write_store(tmp_path / "s")
    assert isinstance(store.audio(2), np.memmap) and isinstance(store.visual(2), np.memmap)
    assert not store.audio(2).flags.writeable
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert set(meta["checksums"]) == {"manifest.csv", "audio.bin", "visual.bin",
                                      "audio_offsets.npy", "visual_offsets.npy"}
    assert store.provenance["generator"] == "test"
    assert set(store.provenance["versions"]) >= {"python", "numpy", "avbench"} and store.provenance["created"]
    assert store.synthetic is False
    copy = pickle.loads(pickle.dumps(store))  # e.g. to DataLoader or joblib workers
    assert len(pickle.dumps(store)) < 500 and copy.checksum == store.checksum
    np.testing.assert_array_equal(copy.visual(1), store.visual(1))
    assert not list(tmp_path.glob(".s.tmp-*")), "temporary directory left behind"


def test_verify_detects_flipped_byte(tmp_path):
    write_store(tmp_path / "s")
    data = bytearray((tmp_path / "s" / "visual.bin").read_bytes())
    data[7] ^= 0xFF
    (tmp_path / "s" / "visual.bin").write_bytes(bytes(data))
    store = FeatureStore.open(tmp_path / "s")  # sizes still match
    with pytest.raises(ValidationError, match=r"visual\.bin.*sha256"):
        store.verify()
    with pytest.raises(ValidationError, match=r"visual\.bin"):
        FeatureStore.open(tmp_path / "s", verify=True)


def test_open_truncated_audio_names_file_and_sizes(tmp_path):
    write_store(tmp_path / "s")
    f = tmp_path / "s" / "audio.bin"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ValidationError, match=rf"audio\.bin.*expected {size} bytes.*found {size - 10} bytes"):
        FeatureStore.open(tmp_path / "s")


@pytest.mark.parametrize("change,match", [
    (lambda d: (d / "manifest.csv").unlink(), r"manifest\.csv: file is missing"),
    (lambda d: (d / "store.json").unlink(), r"store\.json: file is missing"),
    (lambda d: pd.read_csv(d / "manifest.csv").drop(columns="speaker").to_csv(d / "manifest.csv", index=False),
     r"missing columns speaker"),
    (lambda d: pd.read_csv(d / "manifest.csv").assign(label="joy").to_csv(d / "manifest.csv", index=False),
     r"'joy' are not in store.json's label_names"),
    (lambda d: np.save(d / "audio_offsets.npy", np.arange(6) * 4), r"audio_offsets\.npy.*disagree"),
    (lambda d: (d / "store.json").write_text(
        json.dumps({**json.loads((d / "store.json").read_text()), "format_version": 99})),
     r"unknown format_version 99"),
])
def test_open_errors(tmp_path, change, match):
    write_store(tmp_path / "s")
    change(tmp_path / "s")
    with pytest.raises(ValidationError, match=match):
        FeatureStore.open(tmp_path / "s")


def test_open_missing_directory(tmp_path):
    with pytest.raises(ValidationError, match="no such feature store directory"):
        FeatureStore.open(tmp_path / "nope")


@pytest.mark.parametrize("audio,visual,label,match", [
    (np.zeros((3, 5)), np.zeros((2, 3)), "anger", r"clip 'x': audio features must have 4 columns"),
    (np.zeros((3, 4)), np.zeros((2, 3, 1)), "anger", r"clip 'x': visual features must be a 2-D array"),
    (np.full((3, 4), np.nan), np.zeros((2, 3)), "anger", r"clip 'x': audio features contain NaN or inf"),
    (np.zeros((3, 4)), np.array([[0, np.inf, 0]]), "anger", r"clip 'x': visual features contain NaN or inf"),
    (np.zeros((0, 4)), np.zeros((2, 3)), "anger", r"clip 'x': audio features are empty"),
    (np.zeros((3, 4)), np.zeros((2, 3)), "joy", r"clip 'x': unknown label 'joy'; expected one of anger, neutral"),
    (np.full((3, 4), 1e6), np.zeros((2, 3)), "anger", r"clip 'x': audio values reach 1e\+06, beyond the float16"),
])
def test_add_rejects_bad_clips(tmp_path, audio, visual, label, match):
    with writer(tmp_path / "s") as w:
        with pytest.raises(ValidationError, match=match):
            w.add("x", "s0", label, audio, visual)
        w.add("ok", "s0", "anger", np.zeros((3, 4)), np.zeros((2, 3)))  # still usable
        store = w.close({})
    assert len(store) == 1


def test_add_rejects_duplicate_id_and_writer_options(tmp_path):
    with writer(tmp_path / "s") as w:
        w.add("x", "s0", "anger", np.zeros((3, 4)), np.zeros((2, 3)))
        with pytest.raises(ValidationError, match=r"clip 'x': duplicate clip_id"):
            w.add("x", "s1", "neutral", np.zeros((3, 4)), np.zeros((2, 3)))
        w.close({})
    with pytest.raises(ValidationError, match="already exists"):
        writer(tmp_path / "s")
    with pytest.raises(ValidationError, match=r"The 'dtype' parameter of StoreWriter must be one of"):
        StoreWriter(tmp_path / "t", name="t", audio_dim=4, visual_dim=3, audio_rate=1, visual_rate=1,
                    label_names=LABELS, dtype="int8")


def test_failed_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with writer(tmp_path / "s") as w:
            w.add("x", "s0", "anger", np.zeros((3, 4)), np.zeros((2, 3)))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_store_that_would_not_open_is_never_moved_into_place(tmp_path):
    """One class used to pass the writer, be renamed into place, then fail FeatureStore.open,
    leaving a store.json that blocked every rerun."""
    with pytest.raises(ValidationError, match="label_names' parameter of StoreWriter must be a list of at least two"):
        StoreWriter(tmp_path / "one", name="one", audio_dim=4, visual_dim=3, audio_rate=1, visual_rate=1,
                    label_names=["anger"])
    with writer(tmp_path / "s") as w:
        w.add("x", "s0", "anger", np.zeros((3, 4)), np.zeros((2, 3)))
        w.audio_rate = -1.0  # what close() writes into store.json would not open
        with pytest.raises(ValidationError, match="audio_rate must be a positive number"):
            w.close({})
    assert list(tmp_path.iterdir()) == []


def export_npy(tmp_path):
    rows = []
    (tmp_path / "feat").mkdir()
    for cid, spk, label, audio, visual in clips():
        np.save(tmp_path / "feat" / f"{cid}.audio.npy", audio.astype(np.float32))
        np.save(tmp_path / "feat" / f"{cid}.visual.npy", visual.astype(np.float32))
        rows.append({"clip_id": cid, "speaker": spk, "label": label, "gender": "female"})
    pd.DataFrame(rows).to_csv(tmp_path / "clips.csv", index=False)


def test_import_arrays_round_trip(tmp_path):
    export_npy(tmp_path)
    store = import_arrays(tmp_path / "out", tmp_path / "clips.csv", tmp_path / "feat", audio_rate=62.5,
                          visual_rate=30, dtype="float32")
    assert (store.audio_dim, store.visual_dim, len(store)) == (4, 3, 5)
    assert store.label_names == LABELS and (store.manifest.gender == "female").all()
    for i, (_, _, _, audio, visual) in enumerate(clips()):
        np.testing.assert_allclose(store.audio(i), audio, rtol=1e-6)
        np.testing.assert_allclose(store.visual(i), visual, rtol=1e-6)
    assert "feature_dir" in store.provenance["sources"]


def test_import_arrays_errors(tmp_path):
    export_npy(tmp_path)
    args = dict(audio_rate=62.5, visual_rate=30)
    (tmp_path / "feat" / "c3.visual.npy").unlink()
    with pytest.raises(ValidationError, match=r"c3\.visual\.npy: file is missing"):
        import_arrays(tmp_path / "a", tmp_path / "clips.csv", tmp_path / "feat", **args)
    f = tmp_path / "feat" / "c2.audio.npy"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(ValidationError, match=r"c2\.audio\.npy: cannot be read.*truncated or corrupt"):
        import_arrays(tmp_path / "b", tmp_path / "clips.csv", tmp_path / "feat", **args)
    np.save(tmp_path / "feat" / "c2.audio.npy", np.zeros((3, 9)))
    with pytest.raises(ValidationError, match=r"c2\.audio\.npy.*must have 4 columns"):
        import_arrays(tmp_path / "c", tmp_path / "clips.csv", tmp_path / "feat", **args)
    assert not any(p.name[0] in "abc" for p in tmp_path.iterdir() if p.is_dir())


def test_crema_d_labels(tmp_path, caplog):
    pd.DataFrame({"FileName": ["1001_DFA_ANG_XX", "1002_IEO_HAP_HI", "1003_TIE_SAD_LO"],
                  "VoiceVote": ["A", "H", "S"], "VoiceLevel": [50, 60, 70], "FaceVote": ["A", "H", "N"],
                  "FaceLevel": [50, 50, 50], "MultiModalVote": ["A", "N", "N:S"],
                  "MultiModalLevel": [60, 70, 50]}).to_csv(tmp_path / "summaryTable.csv")
    with caplog.at_level("WARNING"):
        df = crema_d_labels(tmp_path / "summaryTable.csv", ties="drop")
    assert "dropped 1 of 3" in caplog.text
    assert df[["clip_id", "speaker", "label", "intended_label", "sentence"]].to_dict("list") == {"clip_id": ["1001_DFA_ANG_XX", "1002_IEO_HAP_HI"], "speaker": ["1001", "1002"],
                                  "label": ["anger", "neutral"], "intended_label": ["anger", "happiness"],
                                  "sentence": ["DFA", "IEO"]}


def test_open_corpus_path_and_errors(tmp_path):
    write_store(tmp_path / "s")
    assert len(open_corpus(tmp_path / "s")) == 5
    with pytest.raises(ValidationError, match=r"registered corpus name \(Available: .*synthetic.*store\.json"):
        open_corpus(tmp_path / "nope")


def test_close_refuses_to_replace_a_store_created_meanwhile(tmp_path):
    w = writer(tmp_path / "s")
    w.add("x", "s0", "anger", np.zeros((3, 4)), np.zeros((2, 3)))
    write_store(tmp_path / "s")  # another process got there first
    with pytest.raises(ValidationError, match="could not move the finished store into place"):
        w.close({})
    assert len(FeatureStore.open(tmp_path / "s")) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
