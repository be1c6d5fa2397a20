"""Prepare with today's features: speech-model audio, the video's own audio track, imported visual
frames, utterance pooling, saved face crops, and the bad inputs of each (one clip in failed.csv)."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("av")
pytest.importorskip("cv2")
tf = pytest.importorskip("transformers")

from avbench.cli import main  # noqa: E402
from avbench.data.crema_d import LABELS, crema_d_manifest  # noqa: E402
from avbench.data.prepare import ExtractionSettings, prepare  # noqa: E402
from media_tree import face_frames, make_crema_tree, speech_like, write_video, write_wav  # noqa: E402
from ssl_checkpoints import speech_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_crema_tree(tmp_path_factory.mktemp("crema") / "CREMA-D", actors=4, clips_per_actor=2, seconds=0.4,
                           defects=False)


@pytest.fixture(scope="module")
def w2v(tmp_path_factory):
    return speech_checkpoint(tmp_path_factory.mktemp("w2v") / "ckpt", "wav2vec2")


def settings(w2v, **kw):
    return ExtractionSettings(**{"audio_extractor": "wav2vec2", "audio_model": str(w2v), "visual_embedder": "pixels",
                                 "pixels_side": 4, **kw})


def test_speech_model_audio_from_the_wav_or_the_video_track(tree, w2v, tmp_path):
    manifest = crema_d_manifest(tree)
    s = prepare(manifest, tree, tmp_path / "wav", settings=settings(w2v), label_names=list(LABELS), progress=False)
    store = s.store
    assert store.audio_dim == 16 and store.audio_rate == 50 and len(store) == len(manifest) and store.frame_level
    audio = store.provenance["extraction"]["audio"]
    assert audio["extractor"] == "wav2vec2" and audio["from"] == "audio" and audio["layer"] == "last"
    assert len(audio["sha256"]["model.safetensors"]) == 64 and audio["frame_rate"] == 50
    # the store's frames are the extractor's output for the decoded WAV
    from avbench.data.media import read_audio
    from avbench.data.ssl_audio import WAV2VEC2

    signal = read_audio(tree / manifest["audio_path"][0])
    np.testing.assert_allclose(np.asarray(store.audio(0)), WAV2VEC2(model=w2v)(signal), atol=1e-6)
    video = prepare(manifest, tree, tmp_path / "video", settings=settings(w2v, audio_from="video"),
                    label_names=list(LABELS), progress=False).store
    assert video.provenance["extraction"]["audio"]["from"] == "video"
    assert video.checksum != store.checksum  # an MP3 track at 22.05 kHz is not the WAV


def test_bad_audio_fails_its_clip_alone(tree, w2v, tmp_path):
    rows = crema_d_manifest(tree).iloc[:4].to_dict("records")
    write_wav(tmp_path / "short.wav", speech_like(0.02))  # 320 samples < 400
    write_video(tmp_path / "silent.flv", face_frames(12, (200, 160, 130)))  # no audio track
    rows[0]["audio_path"] = str(tmp_path / "short.wav")
    rows[1]["video_path"] = str(tmp_path / "silent.flv")
    s = prepare(pd.DataFrame(rows), tree, tmp_path / "a", settings=settings(w2v), label_names=list(LABELS),
                progress=False)
    failed = s.failed.set_index("clip_id")
    assert list(failed.index) == [rows[0]["clip_id"]] and failed["reason"].iloc[0] == "too_short"
    assert "0.020 s, shorter than the wav2vec2 model's receptive field (400 samples = 25 ms)" in failed["message"].iloc[0]
    s = prepare(pd.DataFrame(rows), tree, tmp_path / "v", settings=settings(w2v, audio_from="video"),
                label_names=list(LABELS), progress=False)
    failed = s.failed.set_index("clip_id")
    assert list(failed.index) == [rows[1]["clip_id"]] and failed.loc[rows[1]["clip_id"], "file"].endswith("silent.flv")
    assert "has no audio stream. (--audio-from video reads the video's audio track)" in failed["message"].iloc[0]
    assert len(s.store) == 3


def test_imported_visual_frames_beside_extracted_audio(tree, w2v, tmp_path):
    manifest = crema_d_manifest(tree).iloc[:4].copy()
    feats = tmp_path / "emoca"
    feats.mkdir()
    rng = np.random.default_rng(0)
    for i, clip in enumerate(manifest["clip_id"]):
        if i != 2:
            np.save(feats / f"{clip}.visual.npy", rng.standard_normal((10 + i, 50)).astype(np.float32))
    manifest["video_path"] = ""  # no video needed
    s = prepare(manifest, tree, tmp_path / "s", settings=settings(w2v, visual_embedder="import",
                                                                   visual_features=str(feats), visual_rate=25.0),
                label_names=list(LABELS), progress=False)
    assert s.store.visual_dim == 50 and s.store.visual_rate == 25 and len(s.store) == 3
    assert s.store.provenance["extraction"]["face_detector"] is None
    clip = manifest["clip_id"].iloc[1]
    i = list(s.store.manifest["clip_id"]).index(clip)
    np.testing.assert_array_equal(np.asarray(s.store.visual(i)), np.load(feats / f"{clip}.visual.npy"))
    assert s.failed["reason"].tolist() == ["missing"] and s.failed["file"].iloc[0].endswith(".visual.npy")


def test_mean_pooled_store_and_frame_level_conditions_refused_when_planned(tree, w2v, tmp_path):
    manifest = crema_d_manifest(tree)
    frames = prepare(manifest, tree, tmp_path / "frames", settings=settings(w2v), label_names=list(LABELS),
                     progress=False, keep_staging=True).store
    pooled = prepare(manifest, tree, tmp_path / "frames2", settings=settings(w2v, pool="mean"),
                     label_names=list(LABELS), progress=False)
    assert settings(w2v).key() == settings(w2v, pool="mean").key()  # pooled at writing: same staged clips
    store = pooled.store
    assert not store.frame_level and store.meta["frame_level"] is False
    assert (store.manifest["audio_frames"] == 1).all() and (store.manifest["visual_frames"] == 1).all()
    for i in range(len(store)):
        np.testing.assert_allclose(np.asarray(store.audio(i))[0], np.asarray(frames.audio(i)).mean(0), atol=1e-5)
        kept = ~frames.missing("visual", i) if frames.missing("visual", i) is not None else slice(None)
        np.testing.assert_allclose(np.asarray(store.visual(i))[0], np.asarray(frames.visual(i))[kept].mean(0),
                                   atol=1e-5)
    r = CliRunner().invoke(main, ["run", "--protocol", "masking", "--model", "auxformer", "--corpus", str(store.path),
                                  "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "run"), "--dry-run"])
    assert r.exit_code == 2 and "The condition mask_audio (frame masking) needs frame-level features" in r.output, \
        r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["run", "--protocol", "masking", "--model", "auxformer", "--corpus", str(frames.path),
                                  "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "run"), "--dry-run"])
    # the frame-level store passes the planning check; the tree's few speakers then leave a test class out of
    # training, which the split audit (after the planning checks) refuses on its own account
    assert "frame-level" not in r.output and "Traceback" not in r.output
    assert r.exit_code == 0 or "partition has no clip of class" in r.output, r.output


def test_cli_preset_save_crops_and_refused_options(tree, tmp_path):
    release = speech_checkpoint(tmp_path / "release", "wav2vec2", num_hidden_layers=13, do_stable_layer_norm=True,
                                feat_extract_norm="layer")
    out = tmp_path / "store"
    r = CliRunner().invoke(main, ["data", "crema-d", "prepare", "--root", str(tree), "--out", str(out),
                                  "--audio-preset", "auxformer-release", "--audio-model", str(release),
                                  "--audio-from", "video", "--visual-embedder", "pixels", "--save-crops", "2",
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    from avbench.data import open_corpus

    audio = open_corpus(out).provenance["extraction"]["audio"]
    assert audio["extractor"] == "wav2vec2" and audio["preset"] == "auxformer-release" and audio["hidden_layers"] == 12
    crops = sorted(tmp_path.glob("store.staging/*/crops/*/*.png"))
    assert len(crops) == 2 * 8 and "face crops (first 2 per clip)" in r.output
    import cv2

    assert cv2.imread(str(crops[0])).shape == (224, 224, 3)
    r = CliRunner().invoke(main, ["data", "crema-d", "prepare", "--root", str(tree), "--out", str(tmp_path / "o2"),
                                  "--audio-model", str(release), "--visual-embedder", "pixels", "--quiet"])
    assert r.exit_code == 2 and "The '--audio-model' option does not apply to the 'compare' audio extractor" in r.output
    r = CliRunner().invoke(main, ["data", "crema-d", "prepare", "--root", str(tree), "--out", str(tmp_path / "o3"),
                                  "--audio-extractor", "hubert", "--audio-model", str(release),
                                  "--visual-embedder", "pixels", "--quiet"])
    assert r.exit_code == 2 and "model_type is 'wav2vec2', but the '--audio-model' folder must hold a hubert" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o3").exists()


def test_staging_keys_of_earlier_settings_are_unchanged():
    """The options added here are left out of the staging key at their defaults, so a prepare killed
    before this version resumes from its staged clips (keys computed by the previous prepare.py)."""
    assert ExtractionSettings().key() == "ac3262d8b7e821a0"
    assert ExtractionSettings(visual_embedder="pixels", pixels_side=4).key() == "835a8dbac9507620"
    assert ExtractionSettings(audio_from="video").key() != ExtractionSettings().key()
    assert ExtractionSettings(pool="mean", save_crops=3, device="cuda").key() == ExtractionSettings().key()
