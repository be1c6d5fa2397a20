"""Test media made in the tests themselves: speech-like WAVs, FLV videos of drawn faces of five
skin tones, and a miniature CREMA-D tree with its label tables in the real format."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

TONES = {"light": (241, 194, 167), "medium": (224, 172, 105), "tan": (198, 134, 66),
         "brown": (141, 85, 36), "dark": (90, 56, 37)}
EMOTIONS = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "SAD": "S", "NEU": "N"}
FPS, SR = 30, 16000


def draw_face(tone, h=144, w=192, cx=None, cy=None, s=0.6, bg=(40, 90, 160)):
    """A frontal face: skin ellipse, hair, eye sockets, brows, eyes, nose and mouth, shaded relative to
    the skin tone (as real faces are) so that no tone gets easier contrast than another."""
    import cv2

    cx, cy = cx or w // 2, cy or h // 2
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = bg
    tone = np.array(tone, float)
    c = lambda f: tuple(int(min(255, v * f)) for v in tone)  # noqa: E731
    q = lambda v: int(round(v * s))  # noqa: E731
    cv2.ellipse(img, (cx, cy + q(10)), (q(50), q(68)), 0, 0, 360, c(1), -1)
    cv2.ellipse(img, (cx, cy - q(50)), (q(52), q(30)), 0, 180, 360, (30, 20, 15), -1)
    for dx in (-22, 22):
        ex, ey = cx + q(dx), cy - q(8)
        cv2.ellipse(img, (ex, ey), (q(16), q(10)), 0, 0, 360, c(0.6), -1)
        cv2.ellipse(img, (ex, ey - q(14)), (q(14), q(4)), 0, 180, 360, c(0.3), -1)
        cv2.ellipse(img, (ex, ey), (q(9), q(4)), 0, 0, 360, c(1.2), -1)
        cv2.circle(img, (ex, ey), max(1, q(4)), (40, 25, 20), -1)
    cv2.ellipse(img, (cx, cy + q(12)), (q(7), q(18)), 0, 0, 360, c(1.2), -1)
    cv2.ellipse(img, (cx, cy + q(28)), (q(9), q(4)), 0, 0, 360, c(0.4), -1)
    cv2.ellipse(img, (cx, cy + q(46)), (q(20), q(7)), 0, 0, 360, c(0.55), -1)
    return img


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced signal with a wandering pitch, harmonics and syllable-rate amplitude changes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 40 * rng.random() + 20 * np.sin(2 * np.pi * (1 + rng.random()) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.random() * 6) ** 2
    return (0.2 * x * env + 0.005 * rng.normal(size=len(t))).astype(np.float32)


def write_wav(path: Path, signal: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        f.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def write_video(path: Path, frames: list[np.ndarray], audio: np.ndarray | None = None, codec: str = "flv") -> Path:
    """FLV (FLV1 video + MP3 audio, as CREMA-D's VideoFlash) or MP4 (h264 + AAC) via PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        if audio is not None:  # audio stream first: streams must be chosen by type, not index
            a = c.add_stream("mp3" if codec == "flv" else "aac", rate=22050)
            a.layout = "mono"
        v = c.add_stream(codec, rate=FPS)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        for img in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if audio is not None:
            idx = np.round(np.arange(int(len(audio) * 22050 / SR)) * SR / 22050).astype(int).clip(0, len(audio) - 1)
            frame = av.AudioFrame.from_ndarray(audio[idx][None], format="fltp", layout="mono")
            frame.sample_rate = 22050
            for p in list(a.encode(frame)) + list(a.encode()):
                c.mux(p)
    return path


def face_frames(n: int, tone, seed: int = 0, faceless: int = 0) -> list[np.ndarray]:
    """``n`` frames of a gently moving face; the last ``faceless`` frames show only the background."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i >= n - faceless:
            out.append(np.full((144, 192, 3), (40, 90, 160), np.uint8))
            continue
        out.append(draw_face(tone, cx=96 + int(3 * np.sin(i / 3)), cy=72 + int(rng.integers(-2, 3))))
    return out


def make_crema_tree(root: Path, actors: int = 9, clips_per_actor: int = 4, seconds: float = 0.6,
                    defects: bool = True) -> Path:
    """A miniature CREMA-D: AudioWAV/, VideoFlash/, processedResults/summaryTable.csv,
    VideoDemographics.csv.  With ``defects``: one truncated video, one empty WAV, one clip whose
    video ends faceless (no audio track in its FLV)."""
    sentences = ("DFA", "IEO", "TIE", "MTI")
    emotions = list(EMOTIONS)
    rows, demo = [], []
    tones = list(TONES.values())
    for a in range(actors):
        actor = f"{1070 + a}"
        demo.append({"ActorID": actor, "Age": 30, "Sex": "Female" if a % 2 else "Male", "Race": "-", "Ethnicity": "-"})
        for k in range(clips_per_actor):
            emo = emotions[(a + k) % len(emotions)]
            name = f"{actor}_{sentences[k % len(sentences)]}_{emo}_XX"
            seed = a * 100 + k
            sig = speech_like(seconds, seed)
            write_wav(root / "AudioWAV" / f"{name}.wav", sig)
            write_video(root / "VideoFlash" / f"{name}.flv", face_frames(int(seconds * FPS), tones[a % len(tones)], seed),
                        sig)
            vote = EMOTIONS[emo] if k != 1 else f"{EMOTIONS[emo]}:N"
            rows.append({"FileName": name, "VoiceVote": EMOTIONS[emo], "VoiceLevel": 60, "FaceVote": EMOTIONS[emo],
                         "FaceLevel": 60, "MultiModalVote": vote, "MultiModalLevel": 60})
    if defects:
        first = rows[0]["FileName"]
        data = (root / "VideoFlash" / f"{first}.flv").read_bytes()
        (root / "VideoFlash" / f"{first}.flv").write_bytes(data[: len(data) // 3])  # truncated
        (root / "AudioWAV" / f"{rows[1]['FileName']}.wav").write_bytes(b"")  # empty WAV
        name = rows[2]["FileName"]
        write_video(root / "VideoFlash" / f"{name}.flv",
                    face_frames(int(seconds * FPS), tones[0], 7, faceless=int(seconds * FPS) // 2))
    import pandas as pd

    (root / "processedResults").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "processedResults" / "summaryTable.csv")
    pd.DataFrame(demo).to_csv(root / "VideoDemographics.csv", index=False)
    return root
