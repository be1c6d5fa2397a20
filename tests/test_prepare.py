"""Prepare: raw media -> feature store, resumable, with every bad file named; then splits and a run."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("opensmile")
pytest.importorskip("av")
pytest.importorskip("cv2")

from avbench.cli import main  # noqa: E402
from avbench.data.crema_d import LABELS, crema_d_manifest  # noqa: E402
from avbench.data.prepare import ExtractionSettings, extract_clip, prepare, summary_lines  # noqa: E402
from avbench.data.splits import load_splits  # noqa: E402
from avbench.validation import ValidationError  # noqa: E402
from media_tree import TONES, face_frames, make_crema_tree, speech_like, write_video, write_wav  # noqa: E402

PIXELS = ExtractionSettings(visual_embedder="pixels", pixels_side=4)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_crema_tree(tmp_path_factory.mktemp("crema") / "CREMA-D", actors=9, clips_per_actor=3, seconds=0.4)


def test_crema_d_prepare_then_splits_then_run(tree, tmp_path):
    """The whole path with no manual step: prepare (pixels embedder) -> splits -> avbench run."""
    store_dir = tmp_path / "store"
    r = CliRunner().invoke(main, ["data", "crema-d", "prepare", "--root", str(tree), "--out", str(store_dir),
                                  "--visual-embedder", "pixels", "--pixels-side", "4", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "extracted now 25, reused from staging 0, failed 2" in r.output
    assert "1070_DFA_ANG_XX.flv: decoded 1 video frames but the file announces" in r.output
    assert "1070_IEO_DIS_XX.wav: audio file is empty (0 bytes)" in r.output
    assert "NOT the paper's visual feature" in r.output and "1067" in r.output  # counts beside the paper's
    failed = pd.read_csv(store_dir / "failed.csv")
    assert sorted(failed["reason"]) == ["empty", "truncated"]
    assert not (tmp_path / "store.staging").exists()

    from avbench.data import open_corpus

    store = open_corpus(store_dir)
    assert len(store) == 25 and store.audio_dim == 130 and store.visual_dim == 16
    assert store.audio_rate == 62.5 and store.visual_rate == 30 and not store.meta["normalized"]
    assert store.label_names == list(LABELS)
    row = store.manifest.set_index("clip_id").loc["1070_TIE_FEA_XX"]  # its video ends faceless (half the frames)
    assert row["visual_missing_fraction"] == 0.5 and row["gender"] == "male" and row["sentence"] == "TIE"
    i = int(np.flatnonzero(store.manifest["clip_id"] == "1070_TIE_FEA_XX")[0])
    mask = store.missing("visual", i)
    assert mask[-3:].all() and not mask[:3].any() and (np.asarray(store.visual(i))[mask] == 0).all()
    extraction = store.provenance["extraction"]
    assert extraction["audio"]["window_s"] == 0.032 and extraction["visual"]["embedder"] == "pixels"
    assert extraction["face_detector"]["detector"].startswith("opencv")

    splits = load_splits(store, 1)
    assert set(splits[0].train).isdisjoint(splits[0].test)
    r = CliRunner().invoke(main, ["run", "--protocol", "standard", "--model", "auxformer", "--corpus", str(store_dir),
                                  "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert {"micro_f1", "macro_f1"} <= set(results["metric"]) and "SYNTHETIC" not in r.output


def test_a_killed_prepare_resumes_from_staged_clips(tree, tmp_path):
    manifest = crema_d_manifest(tree).iloc[:8]  # clips 0 and 1 are broken
    out = tmp_path / "store"
    staging = tmp_path / "store.staging" / PIXELS.key()
    staging.mkdir(parents=True)
    # What a prepare killed after three clips leaves behind, plus one damaged staging file.
    done = [extract_clip(r, tree, PIXELS, staging) for r in manifest.iloc[2:5].to_dict("records")]
    assert all(d["status"] == "ok" for d in done)
    (staging / f"{manifest['clip_id'].iloc[5]}.npz").write_bytes(b"half a file")
    summary = prepare(manifest, tree, out, settings=PIXELS, label_names=list(LABELS), progress=False)
    assert summary.reused == 3 and summary.extracted == 3 and len(summary.failed) == 2
    # Resumed clips are the same as freshly extracted ones.
    fresh = prepare(manifest, tree, tmp_path / "fresh", settings=PIXELS, label_names=list(LABELS), progress=False)
    assert fresh.reused == 0 and fresh.store.checksum == summary.store.checksum
    # Other settings never reuse these clips: they stage under another key.
    assert ExtractionSettings(visual_embedder="pixels", pixels_side=8).key() != PIXELS.key()
    assert ExtractionSettings(visual_embedder="pixels", pixels_side=4, device="cuda").key() == PIXELS.key()


def test_corpus_defects_are_handled_and_flagged(tmp_path):
    root = tmp_path / "media"
    sig = speech_like(0.4)
    write_wav(root / "a.wav", sig)
    write_video(root / "long.flv", face_frames(60, TONES["brown"]))  # 2 s of video for 0.4 s of audio
    write_video(root / "ok.flv", face_frames(12, TONES["light"]), sig)
    (root / "empty.wav").write_bytes(b"")
    rows = [{"clip_id": "long", "speaker": "s1", "label": "anger", "audio_path": "a.wav", "video_path": "long.flv"},
            {"clip_id": "noaudio", "speaker": "s2", "label": "neutral", "audio_path": "ok.flv",
             "video_path": "long.flv"},
            {"clip_id": "1076_MTI_SAD_XX", "speaker": "s3", "label": "sadness", "audio_path": "empty.wav",
             "video_path": "ok.flv"},
            {"clip_id": "gone", "speaker": "s3", "label": "anger", "audio_path": "nowhere.wav",
             "video_path": "ok.flv"}]
    rows[1]["audio_path"] = "long.flv"  # an FLV without an audio track
    settings = ExtractionSettings(visual_embedder="pixels", pixels_side=4, known_no_audio=("1076_MTI_SAD_XX",))
    s = prepare(pd.DataFrame(rows), root, tmp_path / "store", settings=settings, progress=False)
    report = s.report.set_index("clip_id")
    assert "video_trimmed (" in report.loc["long", "flags"]
    m = s.store.manifest.set_index("clip_id")
    assert m.loc["long", "visual_frames"] <= 13  # trimmed to the audio's 0.4 s
    assert report.loc["noaudio", "flags"] == "no_audio (no_audio)"
    assert report.loc["1076_MTI_SAD_XX", "flags"] == "no_audio (empty)" and m.loc["1076_MTI_SAD_XX", "audio_missing_fraction"] == 1
    i = list(s.store.manifest["clip_id"]).index("noaudio")
    assert s.store.missing("audio", i).all() and not np.asarray(s.store.audio(i)).any()
    assert abs(s.store.manifest["audio_frames"][i] - 2.0 * 62.5) <= 2  # as long as the video
    assert list(s.failed["clip_id"]) == ["gone"] and "nowhere.wav: audio file is missing" in "\n".join(summary_lines(s))


def test_bad_manifests_and_options_are_refused(tree, tmp_path):
    with pytest.raises(ValidationError, match=r"m\.csv: missing columns audio_path, video_path"):
        pd.DataFrame({"clip_id": ["a"], "speaker": ["s"], "label": ["x"]}).to_csv(tmp_path / "m.csv", index=False)
        prepare(tmp_path / "m.csv", tree, tmp_path / "o", settings=PIXELS)
    dup = pd.DataFrame({"clip_id": ["a", "a"], "speaker": ["s", "s"], "label": ["x", "x"],
                        "audio_path": ["", ""], "video_path": ["", ""]})
    with pytest.raises(ValidationError, match=r"line 3: duplicate clip_id 'a'"):
        prepare(dup, tree, tmp_path / "o", settings=PIXELS)
    with pytest.raises(ValidationError, match="needs --vggface-weights FILE"):
        prepare(dup.iloc[:1], tree, tmp_path / "o", label_names=["x", "y"])
    r = CliRunner().invoke(main, ["data", "crema-d", "prepare", "--root", str(tree), "--out", str(tmp_path / "o"),
                                  "--visual-embedder", "pixelz"])
    assert r.exit_code == 2 and "Unknown extractor 'pixelz'. Did you mean 'pixels'" in r.output
    assert not (tmp_path / "o").exists()


def test_generic_prepare_command_reads_a_manifest(tree, tmp_path):
    manifest = crema_d_manifest(tree).iloc[3:9]
    manifest.to_csv(tmp_path / "clips.csv", index=False)
    r = CliRunner().invoke(main, ["data", "prepare", "--manifest", str(tmp_path / "clips.csv"), "--root", str(tree),
                                  "--out", str(tmp_path / "s"), "--visual-embedder", "pixels", "--quiet",
                                  "--label-names", ",".join(LABELS), "--keep-staging"])
    assert r.exit_code == 0, r.output
    assert "(6 clips, audio 130-d @ 62.5/s, visual 256-d @ 30/s" in r.output
    assert (tmp_path / "s.staging").is_dir()
    settings = json.loads(next((tmp_path / "s.staging").glob("*/settings.json")).read_text())
    assert settings["visual_embedder"] == "pixels"


@pytest.mark.slow
def test_parallel_prepare_matches_serial(tree, tmp_path):
    manifest = crema_d_manifest(tree).iloc[:8]
    a = prepare(manifest, tree, tmp_path / "a", settings=PIXELS, label_names=list(LABELS), progress=False, jobs=2)
    b = prepare(manifest, tree, tmp_path / "b", settings=PIXELS, label_names=list(LABELS), progress=False)
    assert a.store.checksum == b.store.checksum and len(a.failed) == 2


def test_msp_improv_prepare_finds_mp4_media_by_name(tmp_path):
    root = tmp_path / "MSP-IMPROV"
    names = [f"MSP-IMPROV-S0{k}A-{g}0{k}-P-FM01" for k, g in ((1, "F"), (2, "M"), (3, "F"))]
    for k, name in enumerate(names):
        sig = speech_like(0.3, k)
        write_wav(root / f"session{k + 1}" / "S01A" / "P" / f"{name}.wav", sig)
        write_video(root / f"session{k + 1}" / "S01A" / "P" / f"{name}.mp4", face_frames(9, TONES["dark"], k),
                    sig, codec="h264")
    ratings = pd.DataFrame({"clip_id": names * 2, "rater": ["r1"] * 3 + ["r2"] * 3,
                            "label": ["A", "S", "H", "angry", "sad", "N"]})  # the third clip is a tie
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    r = CliRunner().invoke(main, ["data", "msp-improv", "prepare", "--labels", str(tmp_path / "ratings.csv"),
                                  "--root", str(root), "--out", str(tmp_path / "s"), "--visual-embedder", "pixels",
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    assert "left out: 1 tied" in r.output and "(2 clips," in r.output
    from avbench.data import open_corpus

    store = open_corpus(tmp_path / "s")
    assert store.label_names == ["anger", "happiness", "sadness", "neutral"]
    assert list(store.manifest["speaker"]) == ["F01", "M02"] and list(store.manifest["session"]) == [1, 2]
    assert store.manifest["face_rate"].min() > 0.8  # dark-skinned drawn faces found in h264 video


def test_extractor_plugins_join_through_the_registry(tree, tmp_path):
    """A third-party audio extractor (as an ``avbench.extractors`` entry point would register it)."""
    from avbench.registry import EXTRACTORS

    class Loudness:
        name, modality, dim, rate = "loudness", "audio", 1, 100.0

        def settings(self):
            return {"what": "frame RMS, 10 ms"}

        def __call__(self, signal, sample_rate=16000):
            frames = signal[: len(signal) // 160 * 160].reshape(-1, 160)
            return np.sqrt((frames ** 2).mean(1, keepdims=True)).astype(np.float32)

    EXTRACTORS.register("loudness", Loudness)
    try:
        settings = ExtractionSettings(audio_extractor="loudness", visual_embedder="pixels", pixels_side=4)
        s = prepare(crema_d_manifest(tree).iloc[2:5], tree, tmp_path / "s", settings=settings,
                    label_names=list(LABELS), progress=False)
        assert s.store.audio_dim == 1 and s.store.audio_rate == 100
        assert s.store.provenance["extraction"]["audio"] == {"extractor": "loudness", "from": "audio",
                                                             "what": "frame RMS, 10 ms"}
        assert s.store.provenance["extraction"]["code"]["audio"] == "test_prepare"
        with pytest.raises(ValidationError, match="'--audio-extractor' option must name an audio extractor"):
            prepare(crema_d_manifest(tree).iloc[2:5], tree, tmp_path / "t",
                    settings=ExtractionSettings(audio_extractor="pixels", visual_embedder="pixels"))
    finally:
        EXTRACTORS.unregister("loudness")


def test_a_failing_prepare_leaves_no_store_and_one_label_is_refused_before_extraction(tree, tmp_path):
    """A store appears only complete: a one-label manifest used to be extracted, moved into place
    and then refused on opening, leaving a store.json that made every rerun say 'already exists'."""
    manifest = crema_d_manifest(tree).iloc[2:6].assign(label="anger")
    out = tmp_path / "store"
    with pytest.raises(ValidationError, match="has only the label 'anger'; a feature store needs at least two"):
        prepare(manifest, tree, out, settings=PIXELS, progress=False)
    assert not out.exists() and not (tmp_path / "store.staging").exists()  # nothing extracted
    fixed = prepare(crema_d_manifest(tree).iloc[2:6], tree, out, settings=PIXELS, progress=False)
    assert fixed.store.path == out and (out / "failed.csv").is_file() and (out / "prepare_report.csv").is_file()


def test_old_option_names_of_prepare_still_work_with_a_warning(tree, tmp_path):
    """--jobs and --device meant another thing in data prepare than in avbench run: renamed --processes and
    --extract-device, the old names kept as deprecated aliases."""
    base = ["data", "crema-d", "prepare", "--root", str(tree), "--visual-embedder", "pixels", "--pixels-side", "4",
            "--quiet"]
    new = CliRunner().invoke(main, base + ["--out", str(tmp_path / "new"), "--processes", "2",
                                           "--extract-device", "cpu"])
    old = CliRunner().invoke(main, base + ["--out", str(tmp_path / "old"), "--jobs", "2", "--device", "cpu"])
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert "deprecated" not in new.output
    assert "--jobs of data prepare is deprecated" in old.output and "use --processes" in old.output
    assert "--device of data prepare is deprecated" in old.output and "use --extract-device" in old.output
    assert (json.loads((tmp_path / "old" / "store.json").read_text())["checksums"] ==
            json.loads((tmp_path / "new" / "store.json").read_text())["checksums"])
    clash = CliRunner().invoke(main, base + ["--out", str(tmp_path / "x"), "--jobs", "2", "--processes", "1"])
    assert clash.exit_code == 2 and "--jobs 2 and --processes 1 disagree" in clash.output
    assert not (tmp_path / "x").exists()
