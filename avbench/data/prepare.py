"""From raw media to a feature store: resumable, parallel, and explicit about every bad file.

Input is a manifest with one row per clip, ``clip_id, speaker, label,
audio_path, video_path`` (paths relative to ``root`` or absolute) plus any
extra columns, which are kept.  Each clip is extracted on its own (joblib
processes): audio decoded with PyAV at the extractor's rate (from the audio
file, or with ``audio_from="video"`` from the video's own track) and turned
into the 130 ComParE LLDs or a speech model's hidden states
(:mod:`avbench.data.ssl_audio`), video decoded with PyAV, one face per frame
detected, cropped to 224x224 and embedded (VGG-Face, CLIP, pixels), or
per-clip visual arrays the user made elsewhere read instead (``import``).
A frame without a face becomes a zero vector marked missing in the store;
the fraction of such frames goes into the manifest.  ``pool="mean"`` stores
one row per clip instead of frames.

Each finished clip is written atomically to a staging folder keyed by the
extraction settings (``<out>.staging/<hash>/``), so a killed prepare resumes
where it stopped and never mixes clips made with other settings.  A clip
whose file is missing, empty, truncated or unreadable is skipped, named with
the reason in ``failed.csv``, and the run goes on.  Features are NOT
z-normalised here: that uses training-partition statistics and happens in
training.

Corpus defects handled on purpose (CREMA-D's README lists them):

* a clip without audio (no audio stream, or a clip the corpus lists as
  lacking audio) gets zero audio frames, all marked missing, and is flagged;
* a zero-length clip fails with reason ``zero_duration``;
* a video far longer than its audio (``trim_ratio``) is trimmed to the
  audio's length and flagged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from avbench.atomic import atomic_path
from avbench.data.faces import crop_faces
from avbench.data.media import MediaError, iter_video, probe_video, read_audio
from avbench.data.store import FeatureStore, StoreWriter
from avbench.data.tables import read_text_table
from avbench.validation import DataError, ValidationError, check_choice, check_int

MEDIA_COLUMNS = ("audio_path", "video_path")
STAGING_VERSION = 1  # bump when the same settings would stage different arrays
FAILED_COLUMNS = ("clip_id", "file", "reason", "message")


@dataclass(frozen=True)
class ExtractionSettings:
    """Everything that decides the features; its hash names the staging folder."""

    audio_extractor: str = "compare"
    visual_embedder: str = "vggface"
    face_detector: str = "haar"
    vggface_weights: str | None = None
    vggface_normalisation: str | None = None
    fc6: str = "relu"
    mtcnn_weights: str | None = None
    pixels_side: int = 16
    device: str = "cpu"
    known_no_audio: tuple[str, ...] = ()
    trim_ratio: float = 1.5
    batch_size: int = 32
    audio_model: str | None = None
    audio_layer: str = "last"
    audio_preset: str | None = None
    audio_weights: str | None = None
    max_seconds: float = 30.0
    audio_from: str = "audio"
    visual_model: str | None = None
    visual_layer: int | None = None
    visual_features: str | None = None
    visual_rate: float = 30.0
    precision: str = "fp32"
    pool: str = "none"
    save_crops: int = 0

    def key(self) -> str:
        d = asdict(self)
        for name in NOT_IN_KEY:  # these do not change the staged per-clip arrays
            d.pop(name)
        for name, default in ADDED_LATER.items():  # at their defaults, earlier staging folders stay valid
            if d[name] == default:
                d.pop(name)
        d["staging_version"] = STAGING_VERSION
        # Weights are identified by content, so replacing a file at the same path never reuses clips.
        for name in ("vggface_weights", "audio_weights", "mtcnn_weights", "audio_model", "visual_model"):
            if d.get(name):
                d[name] = _content(Path(d[name]))
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# device and batch size change features only up to float rounding; pooling happens when the store
# is written, so a pooled and a frame-level store share their staged clips
NOT_IN_KEY = ("device", "batch_size", "pool", "save_crops")
ADDED_LATER = {"audio_model": None, "audio_layer": "last", "audio_preset": None, "audio_weights": None,
               "max_seconds": 30.0, "audio_from": "audio", "visual_model": None, "visual_layer": None,
               "visual_features": None, "visual_rate": 30.0, "precision": "fp32"}
POOLS = ("none", "mean")
AUDIO_SOURCES = ("audio", "video")


def _content(path: Path) -> str:
    """A digest of a weights file, a checkpoint folder's files or a wheel; the path when it is absent."""
    if path.is_file():
        return _digest([path])
    if path.is_dir():
        return _digest(sorted(f for f in path.iterdir() if f.is_file() and f.suffix in (".pt", ".json", ".bin",
                                                                                     ".safetensors")))
    return str(path)


def _digest(files: list[Path]) -> str:
    from avbench.data.store import sha256_file

    return hashlib.sha256("".join(sha256_file(f) for f in files).encode()).hexdigest()


_TOOLS: dict[str, tuple] = {}
# extractor keyword <- ExtractionSettings field, per modality
AUDIO_OPTIONS = {"model": "audio_model", "layer": "audio_layer", "max_seconds": "max_seconds",
                 "preset": "audio_preset", "weights": "audio_weights"}
VISUAL_OPTIONS = {"weights": "vggface_weights", "normalisation": "vggface_normalisation", "fc6": "fc6",
                  "side": "pixels_side", "model": "visual_model", "layer": "visual_layer",
                  "features": "visual_features", "rate": "visual_rate"}


def _options(settings: ExtractionSettings, names: dict[str, str]) -> dict[str, tuple[str, object, bool]]:
    """keyword -> (command-line option, value, given: differs from the default)."""
    default = ExtractionSettings()
    return {kw: ("--" + field.replace("_", "-"), getattr(settings, field),
                 getattr(settings, field) != getattr(default, field)) for kw, field in names.items()}


def build_tools(settings: ExtractionSettings) -> tuple:
    """(audio extractor, face detector or None, visual embedder), built once per process and settings.

    The detector is None for an embedder that reads no video (``import``)."""
    key = json.dumps(asdict(settings), sort_keys=True)
    if key not in _TOOLS:
        from avbench.data.embedders import make_extractor
        from avbench.data.faces import make_detector

        check_choice(settings.pool, "pool", "--pool", POOLS)
        check_choice(settings.audio_from, "audio_from", "--audio-from", AUDIO_SOURCES)
        common = {"device": settings.device, "precision": settings.precision, "batch_size": settings.batch_size}
        audio = make_extractor("audio", settings.audio_extractor, _options(settings, AUDIO_OPTIONS), common)
        embedder = make_extractor("visual", settings.visual_embedder, _options(settings, VISUAL_OPTIONS), common)
        detector = (make_detector(settings.face_detector, settings.mtcnn_weights, settings.device)
                    if getattr(embedder, "reads_video", True) else None)
        _TOOLS[key] = (audio, detector, embedder)
    return _TOOLS[key]


def _resolve(root: Path, value) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        return None
    p = Path(value)
    return p if p.is_absolute() else root / p


def extract_clip(row: dict, root: Path, settings: ExtractionSettings, staging: Path) -> dict:
    """Extracts one clip into ``staging/<clip_id>.npz``; returns its report row (never raises on bad media)."""
    clip_id = str(row["clip_id"])
    report = {"clip_id": clip_id, "status": "ok", "reason": "", "file": "", "message": "", "flags": ""}
    target = staging / f"{clip_id}.npz"
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
            return {**report, **meta, "status": "reused"}
        except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError):
            target.unlink(missing_ok=True)  # a damaged staging file: extract again
    audio_tool, detector, embedder = build_tools(settings)
    rate = getattr(audio_tool, "sample_rate", 16000)
    flags = []
    video_path = _resolve(root, row.get("video_path"))
    from_video = settings.audio_from == "video"
    audio_path = video_path if from_video else _resolve(root, row.get("audio_path"))
    try:
        info = None
        if detector is not None:
            if video_path is None:
                raise MediaError(f"clip {clip_id}", "missing", "the manifest gives no video_path.")
            info = probe_video(video_path)
        signal = None
        if audio_path is None:
            if clip_id not in settings.known_no_audio:
                raise MediaError(f"clip {clip_id}", "missing", f"the manifest gives no {'video' if from_video else 'audio'}"
                                 "_path.")
        else:
            try:
                signal = read_audio(audio_path, rate)
            except MediaError as exc:
                known = clip_id in settings.known_no_audio
                if not known and (exc.reason != "no_audio" or from_video):  # --audio-from video: the track is the input
                    if exc.reason == "no_audio":
                        exc.detail += " (--audio-from video reads the video's audio track)"
                    raise
                flags.append(f"no_audio ({exc.reason})")
        if signal is not None and len(signal) < getattr(audio_tool, "min_samples", 0):
            raise MediaError(audio_path, "too_short", f"audio lasts {len(signal) / rate:.3f} s, shorter than the "
                             f"{settings.audio_extractor} model's receptive field ({audio_tool.min_samples} samples "
                             f"= {audio_tool.min_samples / rate * 1000:.0f} ms).")
        if info is None:
            visual = embedder.load(clip_id)
            missing_v, fps = np.zeros(len(visual), bool), embedder.rate
        else:
            max_frames = None
            if signal is not None:
                audio_frames_of_video = math.ceil(len(signal) / rate * info.fps)
                if info.expected_frames > settings.trim_ratio * audio_frames_of_video + info.fps:
                    max_frames = audio_frames_of_video
                    flags.append(f"video_trimmed ({info.expected_frames} -> {max_frames} frames)")
            crops_dir = staging / "crops" / clip_id if settings.save_crops else None
            visual, missing_v, fps = _visual(video_path, info, detector, embedder, max_frames, settings.batch_size,
                                             crops_dir, settings.save_crops)
        if signal is None:
            n_audio = max(1, round(len(visual) / fps * audio_tool.rate))
            audio = np.zeros((n_audio, audio_tool.dim), np.float32)
            missing_a = np.ones(n_audio, bool)
        else:
            audio = audio_tool(signal, rate)
            if len(audio) == 0:
                raise MediaError(audio_path, "zero_duration", f"audio is too short for one frame "
                                 f"({len(signal) / rate:.3f} s).")
            missing_a = np.zeros(len(audio), bool)
        if not np.isfinite(audio).all():
            raise MediaError(audio_path, "unreadable", "audio features contain NaN or inf.")
    except MediaError as exc:
        return {**report, "status": "failed", "reason": exc.reason, "file": exc.path, "message": exc.detail}
    meta = {"face_rate": float(1 - missing_v.mean()), "audio_missing_fraction": float(missing_a.mean()),
            "visual_missing_fraction": float(missing_v.mean()), "video_fps": fps, "flags": "; ".join(flags)}
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, audio=audio.astype(np.float32), visual=visual.astype(np.float32), audio_missing=missing_a,
                 visual_missing=missing_v, meta=np.array(json.dumps(meta)))
    return {**report, **meta}


def _visual(path: Path, info, detector, embedder, max_frames: int | None, batch: int, crops_dir: Path | None = None,
            save_crops: int = 0):
    feats, missing, buf = [], [], []
    saved = 0

    def flush():
        nonlocal saved
        boxes = detector(buf)
        crops = crop_faces(buf, boxes)
        if crops_dir is not None and saved < save_crops:
            saved += _save_crops(crops_dir, crops[:save_crops - saved], saved)
        emb = embedder(crops)
        out = np.zeros((len(buf), embedder.dim), np.float32)
        found = np.array([b is not None for b in boxes])
        out[found] = emb
        feats.append(out)
        missing.append(~found)
        buf.clear()

    for frame in iter_video(path, max_frames=max_frames):
        buf.append(frame)
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    return np.concatenate(feats), np.concatenate(missing), info.fps


def _save_crops(folder: Path, crops: np.ndarray, first: int) -> int:
    """Writes face crops as ``folder/NNNN.png`` (numbered from ``first``), so a user can look at
    what the detector found; returns how many."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"{first + i:04d}.png"), np.ascontiguousarray(crop[..., ::-1]))
    return len(crops)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """A prepare manifest: ``clip_id, speaker, label, audio_path, video_path`` and any extra columns."""
    path = Path(path)
    return check_manifest(read_text_table(path, "the clip manifest"), str(path))


def check_manifest(df: pd.DataFrame, where: str = "manifest") -> pd.DataFrame:
    required = ("clip_id", "speaker", "label") + MEDIA_COLUMNS
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing columns {', '.join(missing)}; expected {', '.join(required)} "
                              "(media paths relative to --root or absolute) plus optional columns.")
    if df.empty:
        raise DataError(f"{where}: has no clips.")
    for col in ("clip_id", "speaker", "label"):
        empty = df[col].astype(str).str.strip() == ""
        if empty.any():
            raise DataError(f"{where}, line {int(np.flatnonzero(empty)[0]) + 2}: empty {col}.")
    bad = df["clip_id"].astype(str).str.contains(r"[/\\]|^\.", regex=True)
    if bad.any():
        raise DataError(f"{where}: clip_id {df['clip_id'][bad].iloc[0]!r} cannot name a file; clip ids "
                              "must not contain path separators or start with a dot.")
    dup = df["clip_id"].duplicated()
    if dup.any():
        raise DataError(f"{where}, line {int(np.flatnonzero(dup)[0]) + 2}: duplicate clip_id "
                              f"{df['clip_id'][dup].iloc[0]!r}.")
    return df.reset_index(drop=True)


@dataclass
class PrepareSummary:
    """What a prepare did: the store, per-clip report, failures, and counts."""

    store: FeatureStore | None
    report: pd.DataFrame
    failed: pd.DataFrame
    extracted: int = 0
    reused: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def face_rate(self) -> float:
        ok = self.report[self.report["status"] != "failed"]
        return float(ok["face_rate"].mean()) if len(ok) else float("nan")


def prepare(manifest: pd.DataFrame | str | os.PathLike, root: str | os.PathLike, out: str | os.PathLike, *,
            settings: ExtractionSettings = ExtractionSettings(), label_names: list[str] | None = None,
            name: str | None = None, jobs: int = 1, dtype: str = "float32", keep_staging: bool = False,
            progress: bool = True, provenance: dict | None = None) -> PrepareSummary:
    """Extracts every clip of ``manifest`` and writes the feature store ``out``.

    Args:
        manifest: DataFrame or CSV path (see :func:`read_manifest`).
        root: Folder the manifest's media paths are relative to.
        out: The new store (must not exist).  ``out/failed.csv`` lists the
            clips left out and why; ``out/prepare_report.csv`` has one row per
            clip (status, face rate, flags).
        settings: Extractors and their options.
        label_names: Class order; default: sorted labels of the manifest.
        jobs: Clips extracted at once (processes).
        dtype: ``float32`` (default; raw LLDs can exceed float16's range) or
            ``float16``.
        keep_staging: Keep ``<out>.staging/`` after success (it is always
            kept after a failure, for resuming).
    """
    started = time.perf_counter()
    df = check_manifest(manifest) if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    root, out = Path(root), Path(out)
    jobs = check_int(jobs, "jobs", "prepare", minimum=1)
    check_choice(dtype, "dtype", "prepare", ("float16", "float32"))
    if not root.is_dir():
        raise ValidationError(f"{root}: no such directory; expected the corpus root the manifest's media paths "
                              "are relative to.")
    if out.exists():
        raise ValidationError(f"{out}: already exists; remove it or choose another output path.")
    labels = list(label_names) if label_names else sorted(df["label"].unique())
    unknown = sorted(set(df["label"]) - set(labels))
    if unknown:
        raise ValidationError(f"labels {', '.join(unknown)} of the manifest are not in label_names ({', '.join(labels)}).")
    if len(set(labels)) < 2:  # checked before hours of extraction, not when the store is written
        raise ValidationError(f"{manifest if not isinstance(manifest, pd.DataFrame) else 'the manifest'}: has only "
                              f"the label {labels[0]!r}; a feature store needs at least two classes.")
    audio_tool, detector, embedder = build_tools(settings)  # fails fast on a missing weights file
    staging = Path(f"{out}.staging") / settings.key()
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "settings.json").write_text(json.dumps(asdict(settings), indent=1, default=str) + "\n")
    rows = df.to_dict("records")
    results = _run(rows, root, settings, staging, jobs, progress)
    report = pd.DataFrame([results[str(r["clip_id"])] for r in rows])
    failed = report[report["status"] == "failed"][list(FAILED_COLUMNS)].reset_index(drop=True)
    summary = PrepareSummary(None, report, failed, extracted=int((report["status"] == "ok").sum()),
                             reused=int((report["status"] == "reused").sum()))
    ok = report["status"] != "failed"
    if not ok.any():
        _write_side_files(Path(f"{out}.staging"), report, failed)
        raise ValidationError(f"{out}: no clip could be extracted; see {out}.staging/failed.csv "
                              f"(first: {failed['file'].iloc[0]}: {failed['message'].iloc[0]})")
    fps = report.loc[ok, "video_fps"].round(3)
    visual_rate = float(fps.mode().iloc[0])
    off = ok & ((fps - visual_rate).abs() > 0.01 * visual_rate)
    if off.any():
        summary.notes.append(f"{int(off.sum())} clips have a video frame rate other than {visual_rate:g} fps "
                             f"(e.g. {report['clip_id'][off].iloc[0]}: {fps[off].iloc[0]:g}); the store records "
                             f"{visual_rate:g} fps for every clip.")
    extras = [c for c in df.columns if c not in ("clip_id", "speaker", "label")]
    writer = StoreWriter(out, name=name or out.name, audio_dim=audio_tool.dim, visual_dim=embedder.dim,
                         audio_rate=audio_tool.rate, visual_rate=visual_rate, label_names=labels, dtype=dtype,
                         frame_level=settings.pool == "none")
    with writer:
        for row, res in zip(rows, report.to_dict("records")):
            if res["status"] == "failed":
                continue
            with np.load(staging / f"{row['clip_id']}.npz", allow_pickle=False) as z:
                (audio, missing_a), (visual, missing_v) = (POOLING[settings.pool](z[m], z[f"{m}_missing"])
                                                           for m in ("audio", "visual"))
                writer.add(row["clip_id"], row["speaker"], row["label"], audio, visual,
                           audio_missing=missing_a, visual_missing=missing_v,
                           **{c: row[c] for c in extras}, face_rate=round(res["face_rate"], 4),
                           visual_missing_fraction=round(res["visual_missing_fraction"], 4),
                           audio_missing_fraction=round(res["audio_missing_fraction"], 4), flags=res["flags"])
        tool_settings = {"audio": {"extractor": settings.audio_extractor, "from": settings.audio_from,
                                   **audio_tool.settings()},
                         "face_detector": detector.settings() if detector is not None else None,
                         "visual": {"extractor": settings.visual_embedder, **embedder.settings()},
                         "pool": settings.pool,
                         "code": {k: _origin(t) for k, t in (("audio", audio_tool), ("visual", embedder))}}
        _write_side_files(writer.folder, report, failed)  # inside the store before it becomes visible
        summary.store = writer.close({"generator": "avbench.data.prepare", "sources": {"root": str(root.resolve())},
                                      "extraction": tool_settings, "normalized": False,
                                      "clips": {"extracted": int(ok.sum()), "failed": len(failed)},
                                      **(provenance or {})})
    if not keep_staging and not settings.save_crops:  # the crops a user asked to see live there
        shutil.rmtree(Path(f"{out}.staging"), ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _frames(frames: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return frames, missing


def mean_pool(frames: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per clip: the mean of the frames not marked missing (zeros, marked missing, when
    every frame is), so a clip's missing faces do not pull its mean towards zero."""
    kept = frames[~missing]
    if not len(kept):
        return np.zeros((1, frames.shape[1]), np.float32), np.ones(1, bool)
    return kept.astype(np.float64).mean(0, keepdims=True).astype(np.float32), np.zeros(1, bool)


POOLING = {"none": _frames, "mean": mean_pool}


def _origin(tool) -> str:
    """Module and distribution version of an extractor, so plugin-made stores say what made them."""
    from importlib.metadata import PackageNotFoundError, version

    module = type(tool).__module__
    try:
        return f"{module} ({module.split('.')[0]} {version(module.split('.')[0])})"
    except (PackageNotFoundError, ValueError):
        return module


def _write_side_files(folder: Path, report: pd.DataFrame, failed: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "failed.csv") as tmp:
        failed.to_csv(tmp, index=False)
    with atomic_path(folder / "prepare_report.csv") as tmp:
        report.to_csv(tmp, index=False)


def _run(rows: list[dict], root: Path, settings: ExtractionSettings, staging: Path, jobs: int,
         progress: bool) -> dict[str, dict]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(rows), desc="prepare", unit="clip", disable=not progress)
    results = {}
    if jobs == 1:
        for row in rows:
            res = extract_clip(row, root, settings, staging)
            results[res["clip_id"]] = res
            bar.update()
    else:
        from joblib import Parallel, delayed

        work = Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(extract_clip)(row, root, settings, staging) for row in rows)
        for res in work:
            results[res["clip_id"]] = res
            bar.update()
    bar.close()
    return results


def summary_lines(summary: PrepareSummary) -> list[str]:
    """The closing summary: extracted, reused, failed by reason, faces found, flags."""
    r = summary.report
    lines = [f"clips: {len(r)}; extracted now {summary.extracted}, reused from staging {summary.reused}, "
             f"failed {len(summary.failed)}"]
    if len(summary.failed):
        reasons = Counter(summary.failed["reason"])
        lines.append("failed: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        for f in summary.failed.head(10).itertuples():
            lines.append(f"  {f.clip_id}: {f.file}: {f.message}")
    ok = r[r["status"] != "failed"]
    if len(ok):
        low = ok[ok["face_rate"] < 0.5]
        lines.append(f"faces found in {100 * summary.face_rate:.1f}% of frames on average; "
                     f"{len(low)} clips below 50%" + (f" (e.g. {low['clip_id'].iloc[0]})" if len(low) else ""))
        flagged = ok[ok["flags"].astype(str) != ""]
        for f in flagged.head(10).itertuples():
            lines.append(f"  flagged {f.clip_id}: {f.flags}")
    lines += summary.notes
    return lines
