"""One visual style for every avbench figure: the palette, rc settings, sizes and file formats.

Colours are the Okabe-Ito palette (colour-blind safe, and distinct in greyscale when combined with
the per-model markers and hatches).  How each model is named, coloured and marked is the model's
own declaration (:mod:`avbench.report.presentation`).  Figures are drawn on :class:`matplotlib.figure.Figure`
objects with the non-interactive Agg canvas, so building a report never opens a window and never
changes the backend of a caller's pyplot session.

The rc settings live in ``avbench.mplstyle`` beside this module, a matplotlib style file that is
also a style of the installed package: ``plt.style.use("avbench.report.avbench")`` gives your own
plots the same look.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Okabe & Ito (2008), "Color universal design": safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

#: Scenario colours of Fig. 4 (the paper: dashed orange = baseline 4 visual, solid green = acoustic).
SCENARIO_COLORS = {"AV": OKABE_ITO["blue"], "V": OKABE_ITO["orange"], "A": OKABE_ITO["bluish_green"]}
#: Reference lines of Fig. 5 (the paper: solid blue = full AV of our model, dashed red = baseline 4).  The full-AV
#: line takes the proposed model's own colour (AuxFormer's is this blue); this one only stands in for none.
FULL_AV_COLOR = OKABE_ITO["blue"]
BASELINE4_COLOR = OKABE_ITO["vermillion"]
OUTLIER_COLOR = OKABE_ITO["vermillion"]
REGIME_HATCH = {"standard": "///", "optimized": "", "pretrained": "..."}
REGIME_ALPHA = {"standard": 0.45, "optimized": 1.0, "pretrained": 0.7}
REGIME_LABELS = {"standard": "Standard training", "optimized": "Optimized training",
                 "pretrained": "Given weights, not trained by avbench"}
METRIC_LABELS = {"micro_f1": "Micro-F1", "macro_f1": "Macro-F1", "accuracy": "Accuracy"}

#: The rcParams every figure is drawn with, read from the package's style file.
RC = matplotlib.rc_params_from_file(Path(__file__).with_name("avbench.mplstyle"), use_default_template=False)
DPI = RC["savefig.dpi"]
WIDTH_SINGLE = 3.5   # inches: one IEEE column
WIDTH_DOUBLE = 7.16  # inches: full IEEE page width


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def styled() -> contextlib.AbstractContextManager:
    """Applies :data:`RC` for the duration of a ``with`` block, restoring the caller's settings after."""
    return matplotlib.rc_context(RC)


def new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no GUI, no global backend switch)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Writes ``stem.png`` (``DPI``) and ``stem.pdf`` (without a creation date, so a rebuild writes the same
    bytes); returns the paths written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=DPI)
    fig.savefig(stem.with_suffix(".pdf"), dpi=DPI, metadata={"CreationDate": None})
    return [stem.with_suffix(".png"), stem.with_suffix(".pdf")]


def regime_phrase(regime: str) -> str:
    """How a caption names the regime of its rows: ``optimized training``, or ``given weights (not trained by
    avbench)`` for units of ``avbench run --weights``."""
    label = REGIME_LABELS.get(regime, f"{regime} training")
    return label[0].lower() + label[1:]
