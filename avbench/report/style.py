"""One visual style for every avbench figure and one naming scheme for every table.

Colours are the Okabe-Ito palette (colour-blind safe, and distinct in greyscale when combined with
the per-model markers and hatches used here).  Figures are drawn on :class:`matplotlib.figure.Figure`
objects with the non-interactive Agg canvas, so building a report never opens a window and never
changes the backend of a caller's pyplot session.

``reports/avbench.mplstyle`` is a copy of :data:`RC` for people who want the same look in their own
plots (``plt.style.use("reports/avbench.mplstyle")``); :func:`mplstyle_text` regenerates it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Okabe & Ito (2008), "Color universal design": safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

#: Row order of the paper's tables (proposed model first, then baselines 1-4, then the upscaled ones).
MODEL_ORDER = ("auxformer", "baseline1", "mult", "xmodal", "unimodal-audio", "unimodal-visual",
               "mult-xl", "xmodal-xl")
#: The paper's names for the models (Tables 1-5).
MODEL_LABELS = {
    "auxformer": "AuxFormer (ours)",
    "baseline1": "Baseline 1",
    "mult": "Baseline 2 (MulT)",
    "xmodal": "Baseline 3 (Cross-modal)",
    "unimodal-audio": "Baseline 4 (acoustic)",
    "unimodal-visual": "Baseline 4 (visual)",
    "mult-xl": "Upscaled Baseline 2",
    "xmodal-xl": "Upscaled Baseline 3",
}
#: Short names for crowded axes.
MODEL_SHORT = {
    "auxformer": "AuxFormer", "baseline1": "B1", "mult": "B2 (MulT)", "xmodal": "B3 (X-modal)",
    "unimodal-audio": "B4 (A)", "unimodal-visual": "B4 (V)", "mult-xl": "B2-XL", "xmodal-xl": "B3-XL",
}
#: Compact names for table rows (the paper's "Baseline 2 [17]" style; captions say which is which).
TABLE_LABELS = {
    "auxformer": "AuxFormer (ours)", "baseline1": "Baseline 1", "mult": "Baseline 2", "xmodal": "Baseline 3",
    "unimodal-audio": "Baseline 4 (A)", "unimodal-visual": "Baseline 4 (V)", "mult-xl": "Upscaled B2",
    "xmodal-xl": "Upscaled B3",
}
#: What each baseline is, for captions.
MODEL_KEYS = {
    "baseline1": "Baseline 1 = AuxFormer without the auxiliary networks",
    "mult": "Baseline 2 = MulT (Tsai et al., 2019) without its text branch",
    "xmodal": "Baseline 3 = cross-modal transformer (Parthasarathy & Sundaram, 2020)",
    "unimodal-audio": "Baseline 4 = unimodal model of the modality left (A: acoustic, V: visual)",
    "unimodal-visual": "Baseline 4 = unimodal model of the modality left (A: acoustic, V: visual)",
    "mult-xl": "Upscaled B2/B3 = baselines 2/3 widened to about 7M parameters",
    "xmodal-xl": "Upscaled B2/B3 = baselines 2/3 widened to about 7M parameters",
}
MODEL_COLORS = {
    "auxformer": OKABE_ITO["blue"], "baseline1": OKABE_ITO["orange"], "mult": OKABE_ITO["bluish_green"],
    "xmodal": OKABE_ITO["reddish_purple"], "unimodal-audio": OKABE_ITO["bluish_green"],
    "unimodal-visual": OKABE_ITO["orange"], "mult-xl": OKABE_ITO["sky_blue"], "xmodal-xl": OKABE_ITO["yellow"],
}
MODEL_MARKERS = {"auxformer": "o", "baseline1": "s", "mult": "^", "xmodal": "D", "unimodal-audio": "v",
                 "unimodal-visual": "P", "mult-xl": "X", "xmodal-xl": "*"}
_EXTRA_COLORS = (OKABE_ITO["vermillion"], OKABE_ITO["black"], OKABE_ITO["grey"], OKABE_ITO["sky_blue"])
_EXTRA_MARKERS = ("h", "p", "<", ">")

#: Scenario colours of Fig. 4 (the paper: dashed orange = baseline 4 visual, solid green = acoustic).
SCENARIO_COLORS = {"AV": OKABE_ITO["blue"], "V": OKABE_ITO["orange"], "A": OKABE_ITO["bluish_green"]}
#: Reference lines of Fig. 5 (the paper: solid blue = full AV of our model, dashed red = baseline 4).
FULL_AV_COLOR = OKABE_ITO["blue"]
BASELINE4_COLOR = OKABE_ITO["vermillion"]
OUTLIER_COLOR = OKABE_ITO["vermillion"]
REGIME_HATCH = {"standard": "///", "optimized": ""}
REGIME_ALPHA = {"standard": 0.45, "optimized": 1.0}
REGIME_LABELS = {"standard": "Standard training", "optimized": "Optimized training"}
METRIC_LABELS = {"micro_f1": "Micro-F1", "macro_f1": "Macro-F1", "accuracy": "Accuracy"}
MODALITY_LABELS = {"audio": "acoustic", "visual": "visual"}

DPI = 200
FORMATS = ("png", "pdf")
WIDTH_SINGLE = 3.5   # inches: one IEEE column
WIDTH_DOUBLE = 7.16  # inches: full IEEE page width

#: The rcParams every figure is drawn with (also written to reports/avbench.mplstyle).
RC: dict[str, object] = {
    "font.family": "sans-serif",
    "font.size": 8.0,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 7.0,
    "legend.title_fontsize": 7.0,
    "figure.titlesize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
    "lines.markersize": 4.0,
    "errorbar.capsize": 2.0,
    "legend.frameon": False,
    "savefig.dpi": DPI,
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,   # TrueType in PDFs: editable text, accepted by IEEE PDF eXpress
    "ps.fonttype": 42,
    "axes.prop_cycle": matplotlib.cycler(color=[OKABE_ITO[k] for k in (
        "blue", "orange", "bluish_green", "reddish_purple", "sky_blue", "vermillion", "yellow", "black")]),
}


def model_label(model: str, short: bool = False) -> str:
    """The paper's name of a model (registry name for models the paper does not have)."""
    return (MODEL_SHORT if short else MODEL_LABELS).get(model, model)


def table_label(model: str) -> str:
    """The row name of a model in the tables."""
    return TABLE_LABELS.get(model, model)


def model_key_sentence(models) -> str:
    """' Baseline 1 = ...; Baseline 2 = ....' for the baselines among ``models`` ('' if none)."""
    parts = list(dict.fromkeys(MODEL_KEYS[m] for m in sorted(models, key=model_sort_key) if m in MODEL_KEYS))
    return f" {'; '.join(parts)}." if parts else ""


def model_sort_key(model: str) -> tuple[int, str]:
    return (MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER), model)


def model_color(model: str, others: list[str] | tuple[str, ...] = ()) -> str:
    if model in MODEL_COLORS:
        return MODEL_COLORS[model]
    extra = sorted(m for m in others if m not in MODEL_COLORS)
    return _EXTRA_COLORS[extra.index(model) % len(_EXTRA_COLORS)] if model in extra else OKABE_ITO["grey"]


def model_marker(model: str) -> str:
    return MODEL_MARKERS.get(model, _EXTRA_MARKERS[sum(map(ord, model)) % len(_EXTRA_MARKERS)])


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def mplstyle_text() -> str:
    """:data:`RC` in matplotlib's style-file syntax."""
    lines = ["# avbench figure style (generated by avbench.report.style.mplstyle_text; edit RC there)."]
    for key, value in RC.items():
        if key == "axes.prop_cycle":
            colors = ", ".join(f"'{c.lstrip('#')}'" for c in value.by_key()["color"])
            lines.append(f"axes.prop_cycle: cycler('color', [{colors}])")
        elif isinstance(value, bool):
            lines.append(f"{key}: {str(value)}")
        elif isinstance(value, str) and value.startswith("#"):
            lines.append(f"{key}: {value.lstrip('#')}")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """Applies :data:`RC` for the duration of a block, restoring the caller's settings after."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no GUI, no global backend switch)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def add_footnote(fig: Figure, text: str) -> None:
    """A small note under the axes (e.g. that the corpus is synthetic)."""
    fig.supxlabel(text, fontsize=6.5, color=OKABE_ITO["vermillion"], x=0.0, ha="left", style="italic")


def save_figure(fig: Figure, stem: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Writes ``stem.png`` (``DPI``) and ``stem.pdf``; returns the paths written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=DPI, metadata={"CreationDate": None} if fmt == "pdf" else None)
        paths.append(path)
    return paths
