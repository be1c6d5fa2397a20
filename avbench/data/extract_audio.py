"""Acoustic features: the 130 ComParE low-level descriptors of Sec. 4.2.2, through ``opensmile``.

The paper uses the 65 LLDs of the Interspeech 2013 ComParE set and their 65
deltas with a 32 ms window and a 16 ms step (62.5 frames/s).  ``opensmile``
ships the set (as ComParE_2016, the numerically fixed 2013 set) at a 20 ms
window and 10 ms step, so the extractor writes an edited copy of the shipped
configuration: the spectral framer gets ``frameSize = 0.032`` and every
framer ``frameStep = 0.016``; the pitch framer keeps its 60 ms window, which
the pitch tracker needs.  Smoothing and delta windows are counted in frames,
so at the longer step they cover more time (5 frames = 80 ms instead of 50).

The LLD and delta outputs do NOT share an index: they come from two sinks with
different row counts (the delta level emits a couple of extra frames with
repeated end timestamps).  Joining them on the index would pair the wrong
frames or duplicate rows, so they are aligned by position on purpose and cut
to the shorter of the two (``align_by_position``).

``opensmile`` is part of the ``media`` extra and imported lazily.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from avbench.paths import data_home
from avbench.registry import EXTRACTORS

SAMPLE_RATE = 16000
WINDOW_S, STEP_S = 0.032, 0.016
LLD_CONF = "compare/ComParE_2016_core.lld.conf.inc"


def _opensmile():
    try:
        import opensmile
    except ImportError as exc:
        raise ImportError("Acoustic features need opensmile: pip install 'avbench[media]' "
                          "(or pip install opensmile).") from exc
    return opensmile


def edit_lld_config(text: str, window: float = WINDOW_S, step: float = STEP_S) -> str:
    """The shipped LLD configuration with every framer's step set to ``step`` and the 20 ms
    spectral window set to ``window``; the 60 ms pitch window is kept."""
    text, n_window = re.subn(r"frameSize = 0\.020\b", f"frameSize = {window:.3f}", text)
    text, n_step = re.subn(r"frameStep = 0\.010\b", f"frameStep = {step:.3f}", text)
    if n_window != 1 or n_step != 2:
        raise RuntimeError(f"The opensmile ComParE LLD configuration is not the expected one (found {n_window} "
                           f"20 ms windows and {n_step} 10 ms steps, expected 1 and 2); this opensmile version "
                           "is not supported by avbench's ComParE extractor.")
    return text


def compare_config(window: float = WINDOW_S, step: float = STEP_S) -> Path:
    """Path of the edited ComParE_2016 configuration, written once under ``$AVBENCH_HOME``."""
    source = Path(_opensmile().__file__).parent / "core" / "config"
    lld = edit_lld_config((source / LLD_CONF).read_text(), window, step)
    digest = hashlib.sha256(lld.encode()).hexdigest()[:12]
    target = data_home() / "opensmile" / f"compare-{digest}"
    if not (target / "compare" / "ComParE_2016.conf").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".compare-", dir=target.parent))
        for sub in ("compare", "shared"):
            shutil.copytree(source / sub, tmp / sub)
        (tmp / LLD_CONF).write_text(lld)
        try:
            tmp.rename(target)
        except OSError:  # another process wrote the same config meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    return target / "compare" / "ComParE_2016.conf"


def align_by_position(lld: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``[lld | delta]`` row by row, cut to the shorter: the two sinks' indexes differ, so rows are
    paired by position, deliberately, never joined on their timestamps."""
    n = min(len(lld), len(delta))
    return np.concatenate([lld[:n], delta[:n]], axis=1)


class ComParE:
    """130 ComParE LLDs (65 + 65 deltas), 32 ms window, 16 ms step; the paper's acoustic input."""

    name = "compare"
    modality = "audio"
    dim = 130
    rate = 1.0 / STEP_S
    paper = True

    def __init__(self, window: float = WINDOW_S, step: float = STEP_S):
        opensmile = _opensmile()
        self.window, self.step = float(window), float(step)
        self.rate = 1.0 / self.step
        conf = str(compare_config(self.window, self.step))
        self._smile = {level: opensmile.Smile(feature_set=conf, feature_level=level) for level in ("lld", "lld_de")}

    def settings(self) -> dict:
        import opensmile

        return {"feature_set": "ComParE_2016 LLD + deltas (edited copy)", "window_s": self.window,
                "step_s": self.step, "pitch_window_s": 0.060, "sample_rate": SAMPLE_RATE,
                "alignment": "LLD and delta rows paired by position", "opensmile": opensmile.__version__}

    def __call__(self, signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """``frames x 130`` float32 for a mono signal; no rows when the signal is shorter than the
        60 ms pitch window (opensmile would return one row of NaN)."""
        if len(signal) < 0.060 * sample_rate:
            return np.zeros((0, self.dim), np.float32)
        parts = [self._smile[lv].process_signal(signal, sample_rate).to_numpy(np.float32) for lv in ("lld", "lld_de")]
        return align_by_position(*parts)

    def columns(self) -> list[str]:
        """Feature names, LLDs then deltas."""
        return [c for lv in ("lld", "lld_de") for c in self._smile[lv].feature_names]


EXTRACTORS.register("compare", ComParE)
