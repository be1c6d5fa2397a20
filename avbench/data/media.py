"""Decoding audio and video files with PyAV, with every failure named and explained.

Corpora ship damaged files (CREMA-D: FLV files without an audio track, a
zero-length clip, a clip a minute long), and a damaged file often decodes
without any exception: a truncated FLV reports the header's full duration and
yields a single partial frame.  So streams are chosen by type, never by index
(their order differs between files), and the decoded frame count is compared
with the count the container announces.

PyAV (the ``av`` package, part of the ``media`` extra) is imported lazily so
that the rest of avbench works without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

# Truncated: fewer than 90% of the announced frames, less a quarter second, were decoded.  The slack
# exists because a container without a frame count announces its longest stream's duration, and
# the audio often runs a few frames past the video.
TRUNCATION_TOLERANCE, TRUNCATION_SLACK_S = 0.9, 0.25


class MediaError(Exception):
    """A media file that cannot be used; ``reason`` is a short machine-readable key."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {detail}")


def _av():
    try:
        import av
    except ImportError as exc:
        raise ImportError("Decoding media needs PyAV: pip install 'avbench[media]' (or pip install av).") from exc
    return av


def _open(path: Path, kind: str):
    if not path.is_file():
        raise MediaError(path, "missing", f"{kind} file is missing.")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty", f"{kind} file is empty (0 bytes).")
    av = _av()
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(path, "unreadable", f"{kind} file cannot be opened ({exc}).") from None


def read_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """The first audio stream of ``path`` as mono float32 at ``sample_rate`` Hz.

    Raises:
        MediaError: ``missing``, ``empty``, ``unreadable``, ``no_audio`` (no
            audio stream, as in CREMA-D's pre-2020 FLV files) or
            ``zero_duration`` (a stream without samples).
    """
    path = Path(path)
    av = _av()
    with _open(path, "audio") as container:
        if not container.streams.audio:
            raise MediaError(path, "no_audio", "has no audio stream.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(path, "unreadable", f"audio cannot be decoded ({exc}).") from None
    signal = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(signal) == 0:
        raise MediaError(path, "zero_duration", "audio stream has zero duration (no samples).")
    return signal


@dataclass(frozen=True)
class VideoInfo:
    """What the container announces about its first video stream."""

    fps: float
    expected_frames: int  # from the stream's frame count, else duration x fps; 0 when unknown
    width: int
    height: int


def _video_info(container, path: Path) -> VideoInfo:
    if not container.streams.video:
        raise MediaError(path, "no_video", "has no video stream.")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if fps <= 0:
        raise MediaError(path, "unreadable", "video stream has no frame rate.")
    expected = int(stream.frames or 0)
    if not expected:
        if stream.duration is not None and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = container.duration / 1_000_000
        else:
            seconds = 0.0
        expected = int(round(seconds * fps))
    return VideoInfo(fps, expected, int(stream.codec_context.width or 0), int(stream.codec_context.height or 0))


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The frame rate and announced frame count of ``path``'s first video stream."""
    path = Path(path)
    with _open(path, "video") as container:
        return _video_info(container, path)


def iter_video(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yields the RGB frames (``H x W x 3`` uint8) of ``path``'s first video stream.

    Stops after ``max_frames`` (a video far longer than its audio is trimmed).
    After the last frame it checks the count: fewer than 90% of the frames the
    container announces (less a quarter second) means a truncated file, raised as ``MediaError``
    (``truncated``) rather than passed on as a short clip.
    """
    path = Path(path)
    av = _av()
    with _open(path, "video") as container:
        info = _video_info(container, path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                n += 1
                if max_frames is not None and n >= max_frames:
                    return
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(path, "truncated" if n else "unreadable",
                             f"video decoding failed after {n} frames ({exc}).") from None
    if n == 0:
        raise MediaError(path, "zero_duration", "video stream has no frames.")
    if info.expected_frames and n < TRUNCATION_TOLERANCE * info.expected_frames - TRUNCATION_SLACK_S * info.fps:
        raise MediaError(path, "truncated", f"decoded {n} video frames but the file announces "
                         f"{info.expected_frames} ({info.fps:g} fps); the file is truncated.")
