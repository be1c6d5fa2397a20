"""Audio decoding (PyAV) and the 130 ComParE LLDs at 32 ms / 16 ms, LLD and deltas paired by position."""

import numpy as np
import pytest

pytest.importorskip("opensmile")
pytest.importorskip("av")
pytest.importorskip("cv2")  # the test videos draw faces with OpenCV

from avbench.data.extract_audio import ComParE, align_by_position, edit_lld_config  # noqa: E402
from avbench.data.media import MediaError, read_audio  # noqa: E402
from media_tree import SR, face_frames, speech_like, write_video, write_wav  # noqa: E402


@pytest.fixture(scope="module")
def compare():
    return ComParE()


def test_config_edit_changes_exactly_the_framers():
    text = ("[a:cFramer]\nframeSize = 0.060\nframeStep = 0.010\n[b:cFramer]\nframeSize = 0.020\n"
            "frameStep = 0.010\n")
    out = edit_lld_config(text)
    assert out.count("frameStep = 0.016") == 2 and "frameSize = 0.032" in out and "frameSize = 0.060" in out
    with pytest.raises(RuntimeError, match="not the expected one"):
        edit_lld_config("frameSize = 0.025\n")


def test_130_features_at_62_5_frames_per_second(compare):
    x = speech_like(3.0)
    feats = compare(x)
    assert feats.shape[1] == 130 and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert compare.rate == 62.5
    assert abs(len(feats) - 3.0 * 62.5) <= 6  # frames every 16 ms, less the edge of the 60 ms pitch window
    names = compare.columns()
    assert len(names) == 130 and names[65] == names[0] + "_de"


def test_lld_and_delta_rows_are_paired_by_position_on_purpose(compare):
    """The two sinks give different row counts with repeated end timestamps: joining them on the
    index would be wrong.  Pin both the fact and avbench's positional pairing."""
    x = speech_like(3.0, seed=1)
    lld = compare._smile["lld"].process_signal(x, SR)
    de = compare._smile["lld_de"].process_signal(x, SR)
    assert len(lld) != len(de)
    assert de.index.duplicated().any() or lld.index.duplicated().any()
    feats = compare(x)
    n = min(len(lld), len(de))
    assert len(feats) == n
    np.testing.assert_array_equal(feats[:, :65], lld.to_numpy(np.float32)[:n])
    np.testing.assert_array_equal(feats[:, 65:], de.to_numpy(np.float32)[:n])
    np.testing.assert_array_equal(align_by_position(np.ones((3, 1)), np.zeros((5, 1))), [[1, 0]] * 3)


def test_too_short_signal_gives_no_frames(compare):
    assert compare(np.zeros(100, np.float32)).shape == (0, 130)


def test_read_audio_from_wav_and_from_video_by_stream_type(tmp_path):
    sig = speech_like(0.5)
    got = read_audio(write_wav(tmp_path / "a.wav", sig))
    assert abs(len(got) - len(sig)) <= 1 and np.corrcoef(got[:len(sig)], sig[:len(got)])[0, 1] > 0.99
    # Audio is the first stream of this FLV; the reader picks streams by type, not by index.
    flv = write_video(tmp_path / "v.flv", face_frames(9, (200, 150, 120)), sig)
    assert abs(len(read_audio(flv)) - len(sig)) < 0.1 * SR
    silent = write_video(tmp_path / "s.flv", face_frames(9, (200, 150, 120)))
    with pytest.raises(MediaError, match="has no audio stream") as err:
        read_audio(silent)
    assert err.value.reason == "no_audio"


@pytest.mark.parametrize("setup, reason, message", [
    (lambda p: None, "missing", "audio file is missing"),
    (lambda p: p.write_bytes(b""), "empty", r"audio file is empty \(0 bytes\)"),
    (lambda p: p.write_bytes(b"RIFF....garbage"), "unreadable", "audio file cannot be opened"),
])
def test_bad_audio_files_are_named_with_a_reason(tmp_path, setup, reason, message):
    path = tmp_path / "clip.wav"
    setup(path)
    with pytest.raises(MediaError, match=rf"clip\.wav: {message}") as err:
        read_audio(path)
    assert err.value.reason == reason


def test_zero_duration_audio(tmp_path):
    with pytest.raises(MediaError, match="zero duration") as err:
        read_audio(write_wav(tmp_path / "z.wav", np.zeros(0, np.float32)))
    assert err.value.reason == "zero_duration"
