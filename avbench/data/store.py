"""One on-disk format for a prepared corpus: a manifest, two flat feature files, offsets.

Every model and protocol reads the same clips many times, and a corpus with
4096-d visual frames does not fit in memory several times over, so features
live in two raw binary files (``audio.bin``, ``visual.bin``: all clips' frames
concatenated, little-endian, row-major) that are memory-mapped and addressed by
``*_offsets.npy``.  ``manifest.csv`` keeps per-clip metadata readable, and
``store.json`` records dims, rates, label order, checksums and provenance so
that every result can be traced back to the exact data it came from.

Two optional parts serve real corpora: ``<modality>_missing.bin`` (one byte per
frame, 1 where the frame is missing, e.g. no face was found; its features are
zeros), listed under ``missing_frames`` in store.json, so that per-trial
z-normalisation can leave such frames out of its statistics and keep them at
zero; and ``normalized: true`` for features that are already z-normalised, so
avbench does not normalise them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avbench.atomic import make_public, remove_stale_temporaries, temporary_prefix
from avbench.faults import crash_point
from avbench.validation import DataError, ValidationError, check_choice, check_float, check_features, check_int

FORMAT_VERSION = 1
MODALITIES = ("audio", "visual")
REQUIRED_COLUMNS = ("clip_id", "speaker", "label", "audio_frames", "visual_frames")
TEXT_COLUMNS = ("clip_id", "speaker", "label", "intended_label", "sentence", "gender")
DATA_FILES = ("manifest.csv", "audio.bin", "visual.bin", "audio_offsets.npy", "visual_offsets.npy")
META_KEYS = ("format_version", "name", "audio_dim", "visual_dim", "audio_rate", "visual_rate",
             "dtype", "label_names", "n_clips", "synthetic", "checksums", "provenance")
DTYPES = {"float16": "<f2", "float32": "<f4"}
FLOAT16_MAX = float(np.finfo(np.float16).max)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks so large feature files never sit in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_checksum(checksums: dict[str, str]) -> str:
    """One short digest for a whole store, so results can cite the data they used."""
    text = "\n".join(f"{k}:{checksums[k]}" for k in sorted(checksums))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fail(where: Any, problem: str) -> None:
    raise DataError(f"{where}: {problem}")


class FeatureStore:
    """A prepared corpus on disk; features are memory-mapped, never loaded whole.

    Use :meth:`open`; the constructor takes already-validated parts.
    """

    def __init__(self, path: Path, meta: dict, manifest: pd.DataFrame,
                 offsets: dict[str, np.ndarray], data: dict[str, np.memmap]):
        self.path = path
        self.meta = meta
        self.manifest = manifest
        self.name: str = meta["name"]
        self.label_names: list[str] = list(meta["label_names"])
        self.audio_dim: int = int(meta["audio_dim"])
        self.visual_dim: int = int(meta["visual_dim"])
        self.audio_rate: float = float(meta["audio_rate"])
        self.visual_rate: float = float(meta["visual_rate"])
        self.dtype: str = meta["dtype"]
        self.provenance: dict = meta["provenance"]
        self.synthetic: bool = bool(meta["synthetic"])
        self.checksum: str = content_checksum(meta["checksums"])
        index = {n: i for i, n in enumerate(self.label_names)}
        self.labels: np.ndarray = manifest["label"].map(index).to_numpy(np.int64)
        self.speakers: np.ndarray = manifest["speaker"].to_numpy(str)
        self._offsets = offsets
        self._data = data
        self._missing = {m: _map_missing(path, m, offsets[m]) for m in meta.get("missing_frames", [])}

    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = False) -> "FeatureStore":
        """Opens and checks a store; with ``verify`` also recomputes every checksum.

        The cheap checks (files present, sizes consistent with the manifest and
        offsets, labels known) always run, so a truncated copy fails here with a
        clear message rather than deep inside training.
        """
        path = Path(path)
        meta = _read_meta(path)
        manifest = _read_manifest(path / "manifest.csv", meta)
        offsets = {m: _read_offsets(path, m, manifest) for m in MODALITIES}
        data = {m: _map_features(path, m, meta, offsets[m]) for m in MODALITIES}
        store = cls(path, meta, manifest, offsets, data)
        if verify:
            store.verify()
        return store

    def __len__(self) -> int:
        return len(self.manifest)

    def __reduce__(self):
        # Pickling a memmap copies its data; worker processes reopen the path instead.
        return (FeatureStore.open, (str(self.path),))

    def __repr__(self) -> str:
        return (f"FeatureStore({self.name!r}, {len(self)} clips, audio {self.audio_dim}-d @ "
                f"{self.audio_rate:g}/s, visual {self.visual_dim}-d @ {self.visual_rate:g}/s, "
                f"{self.dtype}, checksum {self.checksum})")

    def _frames(self, modality: str, i: int) -> np.ndarray:
        o = self._offsets[modality]
        return self._data[modality][o[i]:o[i + 1]]

    def frames(self, modality: str) -> np.ndarray:
        """Every clip's ``modality`` frames, concatenated in manifest order: a read-only
        ``(total frames, dim)`` memmap (clip ``i`` is rows ``offsets(modality)[i:i + 2]``), for
        readers of the whole file such as :mod:`avbench.data.integrity`."""
        return self._data[modality]

    def offsets(self, modality: str) -> np.ndarray:
        """Where each clip's ``modality`` frames start in :meth:`frames` (one entry more than clips)."""
        return self._offsets[modality]

    def audio(self, i: int) -> np.ndarray:
        """Clip ``i``'s audio frames: a read-only ``(frames, audio_dim)`` memmap view."""
        return self._frames("audio", i)

    def visual(self, i: int) -> np.ndarray:
        """Clip ``i``'s visual frames: a read-only ``(frames, visual_dim)`` memmap view."""
        return self._frames("visual", i)

    @property
    def frame_level(self) -> bool:
        """False for a pooled store (``--pool mean``: one row per clip); frame-level conditions
        (masking, bursts, shifts) are meaningless on it and refused when a run is planned."""
        return bool(self.meta.get("frame_level", True))

    @property
    def normalized(self) -> bool:
        """True when store.json says the features are already z-normalised."""
        return bool(self.meta.get("normalized", False))

    def missing(self, modality: str, i: int) -> np.ndarray | None:
        """Clip ``i``'s per-frame missing mask (True: no features, e.g. no face found), or None
        when the store marks no frame of ``modality`` as missing."""
        mask = self._missing.get(modality)
        if mask is None:
            return None
        o = self._offsets[modality]
        return mask[o[i]:o[i + 1]].view(bool)

    def verify(self) -> None:
        """Recomputes each file's sha256 and checks every feature value is finite; raises naming
        the file that differs, or the clip, frame and column of the first NaN or inf."""
        from avbench.data.integrity import record_verified, verify_store

        verify_store(self)
        record_verified(self)


def _read_meta(path: Path) -> dict:
    if not path.is_dir():
        _fail(path, "no such feature store directory (expected a directory containing store.json).")
    meta_path = path / "store.json"
    if not meta_path.is_file():
        _fail(meta_path, "file is missing; a feature store directory must contain store.json.")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        _fail(meta_path, f"cannot be read as JSON ({exc}).")
    if not isinstance(meta, dict):
        _fail(meta_path, "expected a JSON object.")
    if meta.get("format_version") != FORMAT_VERSION:
        _fail(meta_path, f"unknown format_version {meta.get('format_version')!r}; this avbench reads "
              f"format_version {FORMAT_VERSION}. Upgrade avbench or re-create the store.")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        _fail(meta_path, f"missing keys {', '.join(missing)}.")
    if meta["dtype"] not in DTYPES:
        _fail(meta_path, f"dtype must be one of {', '.join(DTYPES)}. Got {meta['dtype']!r} instead.")
    _check_meta_values(meta_path, meta)
    missing_frames = meta.get("missing_frames", [])
    if not isinstance(missing_frames, list) or not set(missing_frames) <= set(MODALITIES):
        _fail(meta_path, f"missing_frames must be a list of modalities ({', '.join(MODALITIES)}). "
              f"Got {missing_frames!r} instead.")
    for key, default in (("normalized", False), ("frame_level", True)):
        if not isinstance(meta.get(key, default), bool):
            _fail(meta_path, f"{key} must be true or false. Got {meta[key]!r} instead.")
    for name in DATA_FILES + tuple(f"{m}_missing.bin" for m in missing_frames):
        if not (path / name).is_file():
            _fail(path / name, "file is missing; the feature store is incomplete. Re-create it.")
    return meta


def _check_meta_values(meta_path: Path, meta: dict) -> None:
    """Dims and rates must be positive and labels a list of names: a hand-edited store.json
    otherwise fails deep inside a model or a condition."""
    for key in ("audio_dim", "visual_dim"):
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            _fail(meta_path, f"{key} must be a positive integer. Got {v!r} instead.")
    for key in ("audio_rate", "visual_rate"):
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            _fail(meta_path, f"{key} must be a positive number of frames per second. Got {v!r} instead.")
    names = meta["label_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        _fail(meta_path, f"label_names must be a list of at least two class names. Got {names!r} instead.")


def _read_manifest(path: Path, meta: dict) -> pd.DataFrame:
    try:
        head = pd.read_csv(path, nrows=0).columns
        df = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS if c in head}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        _fail(path, f"cannot be read as CSV ({exc}).")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        _fail(path, f"missing columns {', '.join(missing)}; expected at least {', '.join(REQUIRED_COLUMNS)}.")
    if len(df) != meta["n_clips"]:
        _fail(path, f"has {len(df)} rows but store.json says n_clips = {meta['n_clips']}.")
    for col in ("audio_frames", "visual_frames"):
        if not pd.api.types.is_integer_dtype(df[col]) or (df[col] < 1).any():
            _fail(path, f"column {col!r} must hold positive integers.")
    for col in ("clip_id", "speaker"):
        empty = df[col].astype(str).str.strip() == ""
        if empty.any():
            _fail(path, f"line {int(empty.to_numpy().argmax()) + 2}: the {col!r} field is empty.")
    dup = df["clip_id"][df["clip_id"].duplicated()]
    if len(dup):
        _fail(path, f"duplicate clip_id {dup.iloc[0]!r}; clip ids must be unique.")
    unknown = sorted(set(df["label"]) - set(meta["label_names"]))
    if unknown:
        _fail(path, f"labels {', '.join(map(repr, unknown))} are not in store.json's label_names "
              f"({', '.join(meta['label_names'])}).")
    return df


def _read_offsets(path: Path, modality: str, manifest: pd.DataFrame) -> np.ndarray:
    file = path / f"{modality}_offsets.npy"
    try:
        off = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        _fail(file, f"cannot be read as a .npy array ({exc}); it may be truncated or corrupt.")
    frames = manifest[f"{modality}_frames"].to_numpy(np.int64)
    expected = np.concatenate([[0], np.cumsum(frames)])
    if off.shape != expected.shape or not np.issubdtype(off.dtype, np.integer):
        _fail(file, f"expected {len(expected)} integer offsets (n_clips + 1). "
              f"Got shape {off.shape}, dtype {off.dtype} instead.")
    bad = np.flatnonzero(off != expected)
    if len(bad):
        i = int(bad[0])
        _fail(file, f"offsets disagree with manifest.csv's {modality}_frames at entry {i} "
              f"(expected {expected[i]}, found {off[i]}).")
    return off.astype(np.int64)


def _map_features(path: Path, modality: str, meta: dict, offsets: np.ndarray) -> np.memmap:
    file = path / f"{modality}.bin"
    dim, dtype = int(meta[f"{modality}_dim"]), np.dtype(DTYPES[meta["dtype"]])
    rows = int(offsets[-1])
    expected, found = rows * dim * dtype.itemsize, file.stat().st_size
    if found != expected:
        _fail(file, f"size does not match the manifest: expected {expected} bytes ({rows} frames x "
              f"{dim} x {dtype.itemsize}) but found {found} bytes. The file is truncated or corrupt; "
              "re-create the store.")
    return np.memmap(file, dtype=dtype, mode="r", shape=(rows, dim))


def _map_missing(path: Path, modality: str, offsets: np.ndarray) -> np.memmap:
    file = path / f"{modality}_missing.bin"
    rows, found = int(offsets[-1]), file.stat().st_size
    if found != rows:
        _fail(file, f"size does not match the manifest: expected {rows} bytes (one per {modality} frame) "
              f"but found {found} bytes. The file is truncated or corrupt; re-create the store.")
    return np.memmap(file, dtype=np.uint8, mode="r", shape=(rows,))


def _default_provenance() -> dict:
    import avbench

    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "pandas": pd.__version__, "avbench": avbench.__version__},
    }


class StoreWriter:
    """Streams clips into a new store; usable as a context manager.

    Clips go straight to disk (nothing but per-clip metadata is held in
    memory), inside a temporary sibling directory that :meth:`close` renames
    into place in one step.  A killed or concurrent writer therefore never
    leaves a half-written store at ``path``.
    """

    def __init__(self, path: str | os.PathLike, *, name: str, audio_dim: int, visual_dim: int,
                 audio_rate: float, visual_rate: float, label_names: list[str],
                 dtype: str = "float16", synthetic: bool = False, normalized: bool = False,
                 frame_level: bool = True):
        owner = "StoreWriter"
        self.audio_dim = check_int(audio_dim, "audio_dim", owner, minimum=1)
        self.visual_dim = check_int(visual_dim, "visual_dim", owner, minimum=1)
        self.audio_rate = check_float(audio_rate, "audio_rate", owner, low=0, low_open=True)
        self.visual_rate = check_float(visual_rate, "visual_rate", owner, low=0, low_open=True)
        self.dtype = check_choice(dtype, "dtype", owner, DTYPES)
        names = list(label_names) if not isinstance(label_names, str) else []
        if len(names) < 2 or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ValidationError(f"The 'label_names' parameter of {owner} must be a list of at least two "
                                  f"distinct non-empty strings. Got {label_names!r} instead.")
        self.label_names, self.name, self.synthetic = names, str(name), bool(synthetic)
        self.normalized = bool(check_choice(normalized, "normalized", owner, (True, False)))
        self.frame_level = bool(check_choice(frame_level, "frame_level", owner, (True, False)))
        self.path = Path(path)
        if self.path.exists():
            _fail(self.path, "already exists; remove it or choose another output path.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path.parent, self.path.name)  # a killed writer's leftovers
        self._tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(self.path.name), suffix=".tmp",
                                          dir=self.path.parent))
        make_public(self._tmp, directory=True)
        self._files = {m: open(self._tmp / f"{m}.bin", "wb") for m in MODALITIES}
        self._hashes = {m: hashlib.sha256() for m in MODALITIES}
        # one byte per frame, 1 = missing; kept only for a modality where some frame is missing
        self._missing_files = {m: open(self._tmp / f"{m}_missing.bin", "wb") for m in MODALITIES}
        self._missing_hashes = {m: hashlib.sha256() for m in MODALITIES}
        self._any_missing = {m: False for m in MODALITIES}
        self._dims = {"audio": self.audio_dim, "visual": self.visual_dim}
        self._rows: list[dict] = []
        self._ids: set[str] = set()
        self._closed = False

    @property
    def folder(self) -> Path:
        """The hidden folder the store is written in until :meth:`close` moves it into place; side
        files written here (a prepare's report) appear with the store, never before it."""
        return self._tmp

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._closed:
            self.abort()
            if exc_type is None:
                raise RuntimeError(f"StoreWriter for {self.path} exited without close(provenance); "
                                   "nothing was written.")

    def add(self, clip_id: str, speaker: str, label: str, audio: Any, visual: Any, *,
            audio_missing: Any = None, visual_missing: Any = None, **extra: Any) -> None:
        """Validates one clip fully, then appends its frames and metadata.

        Nothing is written unless every check passes, so a rejected clip leaves
        the writer usable.

        Args:
            clip_id, speaker, label: The clip's identity and class.
            audio, visual: ``(frames, dim)`` features.
            audio_missing, visual_missing: Optional boolean per-frame masks, True where the frame
                is missing (e.g. no face found); those frames' features must be zeros.
            **extra: Further manifest columns (``sentence``, ``gender``, ...).
        """
        clip_id = str(clip_id)
        where = f"clip {clip_id!r}"
        if not clip_id:
            _fail(where, "clip_id must be a non-empty string.")
        if clip_id in self._ids:
            _fail(where, "duplicate clip_id; every clip needs a unique id.")
        if not isinstance(speaker, str) or not speaker.strip():
            _fail(where, f"the speaker must be a non-empty string (splits are drawn by speaker). Got {speaker!r} "
                  "instead.")
        if label not in self.label_names:
            _fail(where, f"unknown label {label!r}; expected one of {', '.join(self.label_names)}.")
        arrays = {m: check_features(x, dim=self._dims[m], what=m, where=where)
                  for m, x in (("audio", audio), ("visual", visual))}
        masks = {m: self._check_missing(x, arrays[m], m, where)
                 for m, x in (("audio", audio_missing), ("visual", visual_missing))}
        if self.dtype == "float16":
            for m, a in arrays.items():
                peak = float(np.abs(a).max())
                if peak > FLOAT16_MAX:
                    _fail(where, f"{m} values reach {peak:g}, beyond the float16 range (+-{FLOAT16_MAX:g}); "
                          "rescale (e.g. z-normalise) the features or use dtype='float32'.")
        for m, a in arrays.items():
            raw = np.ascontiguousarray(a, dtype=DTYPES[self.dtype]).tobytes()
            self._files[m].write(raw)
            self._hashes[m].update(raw)
            flags = masks[m].astype(np.uint8).tobytes()
            self._missing_files[m].write(flags)
            self._missing_hashes[m].update(flags)
            self._any_missing[m] |= bool(masks[m].any())
        self._ids.add(clip_id)
        crash_point("synth-clip")
        self._rows.append({"clip_id": clip_id, "speaker": str(speaker), "label": label,
                           "audio_frames": len(arrays["audio"]), "visual_frames": len(arrays["visual"]),
                           **extra})

    @staticmethod
    def _check_missing(mask: Any, features: np.ndarray, modality: str, where: str) -> np.ndarray:
        if mask is None:
            return np.zeros(len(features), dtype=bool)
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (len(features),):
            _fail(where, f"{modality}_missing must be a boolean array with one entry per {modality} frame "
                  f"({len(features)}). Got dtype {m.dtype}, shape {m.shape} instead.")
        if m.any() and np.any(features[m] != 0):
            _fail(where, f"{modality} frames marked missing must hold zeros (frame "
                  f"{int(np.flatnonzero(m & np.any(features != 0, axis=1))[0])} does not).")
        return m

    def close(self, provenance: dict) -> FeatureStore:
        """Writes offsets, manifest and store.json, then moves the store into place.

        Args:
            provenance: How the data was made (generator or source paths and
                parameters); creation time and package versions are added.

        Returns:
            The new store, opened.
        """
        if not self._rows:
            self.abort()
            _fail(self.path, "no clips were added; a store needs at least one clip.")
        checksums = {}
        for m in MODALITIES:
            self._files[m].flush()
            os.fsync(self._files[m].fileno())
            self._files[m].close()
            checksums[f"{m}.bin"] = self._hashes[m].hexdigest()
            self._missing_files[m].close()
            if self._any_missing[m]:
                checksums[f"{m}_missing.bin"] = self._missing_hashes[m].hexdigest()
            else:
                (self._tmp / f"{m}_missing.bin").unlink()
        missing_frames = [m for m in MODALITIES if self._any_missing[m]]
        manifest = pd.DataFrame(self._rows)
        for m in MODALITIES:
            off = np.concatenate([[0], np.cumsum(manifest[f"{m}_frames"])]).astype(np.int64)
            np.save(self._tmp / f"{m}_offsets.npy", off)
        manifest.to_csv(self._tmp / "manifest.csv", index=False)
        for name in ("manifest.csv", "audio_offsets.npy", "visual_offsets.npy"):
            checksums[name] = sha256_file(self._tmp / name)
        meta = {"format_version": FORMAT_VERSION, "name": self.name, "audio_dim": self.audio_dim,
                "visual_dim": self.visual_dim, "audio_rate": self.audio_rate,
                "visual_rate": self.visual_rate, "dtype": self.dtype, "label_names": self.label_names,
                "n_clips": len(manifest), "synthetic": self.synthetic, "normalized": self.normalized,
                "missing_frames": missing_frames, "checksums": checksums,
                "provenance": {**_default_provenance(), **provenance}}
        if not self.frame_level:
            meta["frame_level"] = False
        (self._tmp / "store.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        try:
            FeatureStore.open(self._tmp)  # a store that would not open is never moved into place
        except DataError:
            self.abort()
            raise
        try:
            os.rename(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            _fail(self.path, f"could not move the finished store into place ({exc}); another process "
                  "may have created it meanwhile.")
        self._closed = True
        store = FeatureStore.open(self.path)
        from avbench.data.integrity import record_verified  # every clip was hashed and checked finite above

        record_verified(store)
        return store

    def abort(self) -> None:
        """Discards everything written so far."""
        for f in (*self._files.values(), *self._missing_files.values()):
            f.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._closed = True


def _load_npy(file: Path, clip_id: str) -> np.ndarray:
    try:
        return np.load(file, allow_pickle=False)
    except FileNotFoundError:
        _fail(file, f"file is missing; expected the features of clip {clip_id!r} there.")
    except (OSError, ValueError, EOFError) as exc:
        _fail(file, f"cannot be read as a .npy array ({exc}); the file may be truncated or corrupt.")


def _read_clip_table(csv: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(csv, dtype={c: str for c in ("clip_id", "speaker", "label")})
    except (OSError, ValueError) as exc:
        _fail(csv, f"cannot be read as CSV ({exc}).")
    missing = [c for c in ("clip_id", "speaker", "label") if c not in df.columns]
    if missing:
        _fail(csv, f"missing columns {', '.join(missing)}; expected clip_id, speaker, label "
              "(plus optional columns).")
    if df.empty:
        _fail(csv, "has no clips.")
    for column in ("clip_id", "speaker", "label"):
        empty = df[column].isna() | (df[column].str.strip() == "")
        if empty.any():
            _fail(csv, f"line {int(empty.to_numpy().argmax()) + 2}: the {column!r} field is empty; every clip "
                  "needs a clip_id, a speaker and a label.")
    return df


def feature_file(feature_dir: Path, clip_id: str, modality: str) -> Path:
    """``feature_dir/<clip_id>.<modality>.npy``, refusing a clip id that leads outside
    ``feature_dir`` (``../x``, an absolute path): a manifest must not make avbench read
    arbitrary files."""
    file = feature_dir / f"{clip_id}.{modality}.npy"
    base = os.path.normpath(os.path.abspath(feature_dir))
    if os.path.commonpath([base, os.path.normpath(os.path.abspath(file))]) != base:
        _fail(f"clip {clip_id!r}", f"the clip id leads outside the feature directory {feature_dir}; clip ids "
              "must name files inside it.")
    return file


def import_arrays(out: str | os.PathLike, manifest_csv: str | os.PathLike,
                  feature_dir: str | os.PathLike, *, audio_rate: float, visual_rate: float,
                  label_names: list[str] | None = None, dtype: str = "float16",
                  name: str | None = None) -> FeatureStore:
    """Builds a store from features extracted elsewhere (e.g. CREMA-D, MSP-IMPROV).

    Args:
        out: Directory of the new store (must not exist).
        manifest_csv: CSV with ``clip_id, speaker, label`` and any extra
            columns (kept in the manifest), one row per clip.
        feature_dir: Holds ``<clip_id>.audio.npy`` and ``<clip_id>.visual.npy``
            (frames x dim each).
        audio_rate, visual_rate: Frames per second of each modality.
        label_names: Class order; defaults to the sorted labels in the CSV.
        dtype: ``"float16"`` or ``"float32"`` on disk.
        name: Store name; defaults to the output directory's name.

    Dims are taken from the first clip and enforced on every other clip.
    """
    csv, feature_dir = Path(manifest_csv), Path(feature_dir)
    for given in (csv, feature_dir):
        if not given.exists():
            _fail(given, "not found.")
    table = _read_clip_table(csv)
    names = sorted(table["label"].dropna().unique()) if label_names is None else list(label_names)
    extras = [c for c in table.columns if c not in ("clip_id", "speaker", "label")]

    dims: dict[str, int] = {}

    def load(clip_id: str) -> list[np.ndarray]:
        arrays = []
        for m in MODALITIES:
            file = feature_file(feature_dir, clip_id, m)
            a = _load_npy(file, clip_id)
            dim = dims.setdefault(m, a.shape[1] if a.ndim == 2 else -1)
            arrays.append(check_features(a, dim=dim, what=m, where=f"clip {clip_id!r} ({file})"))
        return arrays

    load(table["clip_id"].iloc[0])  # fixes the dims
    with StoreWriter(out, name=name or Path(out).name, audio_dim=dims["audio"], visual_dim=dims["visual"],
                     audio_rate=audio_rate, visual_rate=visual_rate, label_names=names,
                     dtype=dtype) as writer:
        for row in table.to_dict("records"):
            audio, visual = load(row["clip_id"])
            writer.add(row["clip_id"], row["speaker"], row["label"], audio, visual,
                       **{c: row[c] for c in extras})
        return writer.close({"generator": "avbench.data.store.import_arrays",
                             "sources": {"manifest_csv": str(csv.resolve()),
                                         "feature_dir": str(feature_dir.resolve())}})
