"""From raw media to a feature store: resumable, parallel, and explicit about every bad file.

Input is a manifest with one row per clip, ``clip_id, speaker, label,
audio_path, video_path`` (paths relative to ``root`` or absolute) plus any
extra columns, which are kept.  Each clip is extracted on its own (joblib
processes): audio decoded with PyAV and turned into the 130 ComParE LLDs,
video decoded with PyAV, one face per frame detected, cropped to 224x224 and
embedded.  A frame without a face becomes a zero vector marked missing in
the store; the fraction of such frames goes into the manifest.

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

    def key(self) -> str:
        d = asdict(self)
        d.pop("device")  # the device does not change the features (up to float rounding)
        d.pop("batch_size")
        d["staging_version"] = STAGING_VERSION
        # Weights are identified by content, so replacing a file at the same path never reuses clips.
        if self.vggface_weights and Path(self.vggface_weights).is_file():
            d["vggface_weights"] = _digest([Path(self.vggface_weights)])
        if self.mtcnn_weights and Path(self.mtcnn_weights).is_dir():
            d["mtcnn_weights"] = _digest(sorted(Path(self.mtcnn_weights).glob("*.pt")))
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _digest(files: list[Path]) -> str:
    from avbench.data.store import sha256_file

    return hashlib.sha256("".join(sha256_file(f) for f in files).encode()).hexdigest()


_TOOLS: dict[str, tuple] = {}


def build_tools(settings: ExtractionSettings) -> tuple:
    """(audio extractor, face detector, visual embedder), built once per process and settings."""
    key = json.dumps(asdict(settings), sort_keys=True)
    if key not in _TOOLS:
        from avbench.data.embedders import make_embedder
        from avbench.data.faces import make_detector
        from avbench.registry import EXTRACTORS

        audio_cls = EXTRACTORS.get(settings.audio_extractor)
        if getattr(audio_cls, "modality", None) != "audio":
            raise ValidationError(f"The '--audio-extractor' option must name an audio extractor. "
                                  f"{settings.audio_extractor!r} is a {getattr(audio_cls, 'modality', '?')} extractor.")
        embedder = make_embedder(settings.visual_embedder, weights=settings.vggface_weights,
                                 normalisation=settings.vggface_normalisation, fc6=settings.fc6,
                                 device=settings.device, side=settings.pixels_side, batch_size=settings.batch_size)
        detector = make_detector(settings.face_detector, settings.mtcnn_weights, settings.device)
        _TOOLS[key] = (audio_cls(), detector, embedder)
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
    flags = []
    audio_path, video_path = _resolve(root, row.get("audio_path")), _resolve(root, row.get("video_path"))
    try:
        if video_path is None:
            raise MediaError(f"clip {clip_id}", "missing", "the manifest gives no video_path.")
        info = probe_video(video_path)
        signal = None
        if audio_path is None:
            if clip_id not in settings.known_no_audio:
                raise MediaError(f"clip {clip_id}", "missing", "the manifest gives no audio_path.")
        else:
            try:
                signal = read_audio(audio_path)
            except MediaError as exc:
                if exc.reason != "no_audio" and clip_id not in settings.known_no_audio:
                    raise
                flags.append(f"no_audio ({exc.reason})")
        max_frames = None
        if signal is not None:
            audio_seconds = len(signal) / 16000
            audio_frames_of_video = math.ceil(audio_seconds * info.fps)
            if info.expected_frames > settings.trim_ratio * audio_frames_of_video + info.fps:
                max_frames = audio_frames_of_video
                flags.append(f"video_trimmed ({info.expected_frames} -> {max_frames} frames)")
        visual, missing_v, fps = _visual(video_path, info, detector, embedder, max_frames, settings.batch_size)
        if signal is None:
            n_audio = max(1, round(len(visual) / info.fps * audio_tool.rate))
            audio = np.zeros((n_audio, audio_tool.dim), np.float32)
            missing_a = np.ones(n_audio, bool)
        else:
            audio = audio_tool(signal)
            if len(audio) == 0:
                raise MediaError(audio_path, "zero_duration", f"audio is too short for one frame "
                                 f"({len(signal) / 16000:.3f} s).")
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


def _visual(path: Path, info, detector, embedder, max_frames: int | None, batch: int):
    feats, missing, buf = [], [], []

    def flush():
        boxes = detector(buf)
        emb = embedder(crop_faces(buf, boxes))
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
                         audio_rate=audio_tool.rate, visual_rate=visual_rate, label_names=labels, dtype=dtype)
    with writer:
        for row, res in zip(rows, report.to_dict("records")):
            if res["status"] == "failed":
                continue
            with np.load(staging / f"{row['clip_id']}.npz", allow_pickle=False) as z:
                writer.add(row["clip_id"], row["speaker"], row["label"], z["audio"], z["visual"],
                           audio_missing=z["audio_missing"], visual_missing=z["visual_missing"],
                           **{c: row[c] for c in extras}, face_rate=round(res["face_rate"], 4),
                           visual_missing_fraction=round(res["visual_missing_fraction"], 4),
                           audio_missing_fraction=round(res["audio_missing_fraction"], 4), flags=res["flags"])
        tool_settings = {"audio": {"extractor": settings.audio_extractor, **audio_tool.settings()},
                         "face_detector": detector.settings(),
                         "visual": {"extractor": settings.visual_embedder, **embedder.settings()},
                         "code": {k: _origin(t) for k, t in (("audio", audio_tool), ("visual", embedder))}}
        summary.store = writer.close({"generator": "avbench.data.prepare", "sources": {"root": str(root.resolve())},
                                      "extraction": tool_settings, "normalized": False,
                                      "clips": {"extracted": int(ok.sum()), "failed": len(failed)},
                                      **(provenance or {})})
    _write_side_files(out, report, failed)
    if not keep_staging:
        shutil.rmtree(Path(f"{out}.staging"), ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary


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
