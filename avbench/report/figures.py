"""Figures 3-8 of the paper plus the robustness figures avbench adds (misalignment, occlusion, noise).

Each builder takes a :class:`~avbench.report.artifacts.ReportContext` and returns a :class:`FigureResult`
(an Agg figure and its caption) or raises :class:`~avbench.report.artifacts.Skip`.  Error bars are 95%
t-intervals of the mean over trials, cut to [0, 1] (none with a single trial); curves show their mean with
every trial as a dot, which stays readable with 2 trials as with 20.  The statistical plots (box, strip,
curves) are seaborn's, drawn on the report's own Agg figures.  All drawing happens inside
:func:`avbench.report.style.styled`, so every figure shares one look.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from avbench.conditions import ConditionKind, kinds
from avbench.report import style
from avbench.report.artifacts import (SYNTHETIC_NOTE, TRAINING_REGIMES, Artifact, ReportContext, Skip, artifact,
                                      artifact_family)
from avbench.report.presentation import model_color, model_marker, model_sort_key, presentation, proposed_models
from avbench.report.rundata import format_levels
from avbench.report.tables import TABLE_METRICS, ablation, audiovisual, audiovisual_models
from avbench.results import select
from avbench.stats import summarize

Summary = dict[str, float]


@dataclass
class FigureResult:
    key: str       # file stem
    number: str    # "Fig. 3"
    title: str
    caption: str
    fig: Figure
    files: list[Path] = field(default_factory=list)   # what the report wrote (PNG, PDF)


def _synthetic(ctx: ReportContext, fig: Figure) -> str:
    """The synthetic-corpus note, in small red italics under the figure and for the end of its caption ('' for
    a real corpus)."""
    if ctx.run.synthetic:
        fig.supxlabel(SYNTHETIC_NOTE, fontsize=6.5, color=style.OKABE_ITO["vermillion"], x=0.0, ha="left",
                      style="italic")
    return ctx.synthetic_note


def _ci_text(n: int) -> str:
    return (f"error bars: 95% t-intervals of the mean over {n} trials, cut at the limits of the score (0 and 1)"
            if n > 1 else "a single trial (no error bars)")


def _ntrials(t: pd.DataFrame) -> int:
    return int(t["seed"].nunique()) if len(t) else 0


def _letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def _corpus_panels(ctx: ReportContext, t: pd.DataFrame, extra_width: float, height: float,
                   stacked: bool = False) -> tuple[Figure, list[tuple[Any, str]]]:
    """A panel per corpus of ``t``, each titled with its corpus (lettered when there are several): side by
    side across the page (a lone panel one column plus ``extra_width`` wide), or ``stacked`` full-width.
    Returns the figure and its (axes, corpus) pairs."""
    corpora = sorted(t["corpus"].unique())
    several = len(corpora) > 1
    fig = style.new_figure(style.WIDTH_DOUBLE if several or stacked else style.WIDTH_SINGLE + extra_width, height)
    axes = fig.subplots(*((len(corpora), 1) if stacked else (1, len(corpora))), squeeze=False).ravel()
    for i, (ax, corpus) in enumerate(zip(axes, corpora)):
        ax.set_title(f"{_letter(i) + ' ' if several else ''}{ctx.run.corpus(corpus).label}")
    return fig, list(zip(axes, corpora))


# ---------------------------------------------------------------------------- Fig. 3
@artifact("fig3", kind="figure", needs="optimized", name="Fig. 3 (per-trial box plots)")
def fig3(ctx: ReportContext) -> FigureResult:
    """Per-trial scores of each audiovisual model (optimized training, or the regime the run has, full AV) as box
    plots."""
    metric = ctx.metric
    t = ctx.select(condition="full", variant="default", metric=metric)
    main = ctx.main if ctx.main in set(t["model"]) else None
    regime = ctx.regime(t, **({"model": main} if main else {}))
    if regime not in ctx.regimes(t, **({"model": main} if main else {})):
        raise Skip(f"needs full-AV {metric} scores of {main or 'the audiovisual models'}")
    t = select(t, regime=regime)
    models = audiovisual_models(t)
    fig, panels = _corpus_panels(ctx, t, 0.6, 2.6 if t["corpus"].nunique() > 1 else 2.7)
    outliers = False
    for ax, corpus in panels:
        outliers |= _trial_boxes(ctx, ax, select(t, corpus=corpus), models)
        ax.set_ylabel(f"{style.metric_label(metric)} (per trial)")
    legend = [Line2D([], [], color="black", linewidth=1.4, label="median"),
              Line2D([], [], marker="o", color="none", markerfacecolor="#BBBBBB", markeredgecolor="black",
                     label="mean"),
              Line2D([], [], marker=".", color="none", markerfacecolor="#555555", markeredgecolor="none",
                     label="one trial"),
              Line2D([], [], marker="+", color="none", markeredgecolor=style.OUTLIER_COLOR, label="outlier")]
    fig.legend(handles=legend[:4 if outliers else 3], loc="outside upper center", ncols=4)
    caption = _sentences(
        f"{style.metric_label(metric)} of the audiovisual models ({style.regime_phrase(regime)}) over "
        f"{_ntrials(t)} trials (full audiovisual test)",
        "boxes span the first to third quartile, the black bar is the median, the marker the mean, grey dots single "
        "trials; dashed whiskers reach the most extreme trial within 1.5 interquartile ranges"
        + (", red crosses are outliers beyond" if outliers else ""))
    return FigureResult("fig3_trials_boxplot", "Fig. 3", f"Per-trial scores ({style.regime_phrase(regime)})",
                        caption + _synthetic(ctx, fig), fig)


def _trial_boxes(ctx: ReportContext, ax, t: pd.DataFrame, models: list[str]) -> bool:
    """Per-trial scores of each model: seaborn box plot (Tukey whiskers), each trial as a grey dot
    (strip) and the mean as the model's marker.  Returns whether an outlier was drawn."""
    d = t[t["model"].isin(models)].assign(model=lambda f: f["model"].astype(str))
    common = {"data": d, "x": "model", "y": "value", "order": models, "ax": ax}
    # each model's colour at 30% over white: an opaque box fill that prints like a translucent one
    fills = {m: tuple(0.3 * np.asarray(to_rgb(model_color(m, models))) + 0.7) for m in models}
    with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11's deprecated vert= to bxp
        warnings.filterwarnings("ignore", "vert: bool", category=DeprecationWarning)
        sns.boxplot(**common, hue="model", hue_order=models, palette=fills, width=0.55, whis=1.5,
                    linecolor="black", linewidth=0.8, legend=False,
                    medianprops={"color": "black", "linewidth": 1.4}, whiskerprops={"linestyle": "--"},
                    flierprops={"marker": "+", "markeredgecolor": style.OUTLIER_COLOR, "markersize": 5})
    state = np.random.get_state()  # seaborn jitters with numpy's global generator: the same dots every build
    np.random.seed(0)
    try:
        sns.stripplot(**common, color="#555555", size=2.2, jitter=0.12, linewidth=0, zorder=3)
    finally:
        np.random.set_state(state)
    for x, m in enumerate(models):
        values = d.loc[d["model"] == m, "value"]
        if len(values):
            ax.scatter([x], [values.mean()], s=28, color=model_color(m, models), edgecolor="black", linewidth=0.6,
                       zorder=4, marker=model_marker(m))
    ax.set_xticks(range(len(models)), [ctx.label(m, short=True) for m in models], rotation=20, ha="right")
    ax.set_xlabel("")
    return any(line.get_marker() == "+" and len(line.get_xdata()) for line in ax.get_lines())


# ---------------------------------------------------------------------------- Fig. 4
#: The test conditions of Fig. 4: condition, short name, legend entry.
SCENARIOS = (("full", "AV", "AV (audiovisual)"), ("clip_audio", "V", "V (visual only)"),
             ("clip_visual", "A", "A (acoustic only)"))
#: Fig. 4's baseline-4 lines: modality, scenario of its colour, line style, name.
BASELINE4_LINES = (("visual", "V", "--", "visual"), ("audio", "A", "-", "acoustic"))


#: Below this many trials Fig. 4 draws each trial as a dot instead of a 95% interval.
DOTS_BELOW = 5


def _baseline4(ctx: ReportContext, modality: str, regime: str, corpus: str) -> Summary | None:
    """Baseline 4's score on its own (intact) ``modality`` in ``corpus`` (see ReportContext.baseline4)."""
    where = ctx.baseline4(modality, regime, metric=ctx.metric)
    values = ctx.select(corpus=corpus, metric=ctx.metric, **where)["value"] if where else []
    return summarize(values) if len(values) else None


@artifact("fig4", kind="figure", needs="training-regimes", name="Fig. 4 (standard vs optimized, AV / V / A)")
def fig4(ctx: ReportContext) -> FigureResult:
    """Grouped bars: AV / V / A scores of each model, standard vs optimized, baseline-4 lines."""
    metric = ctx.metric
    t = audiovisual(ctx.select(condition=[c for c, _, _ in SCENARIOS], variant="default", metric=metric))
    clipped = select(t, condition=["clip_audio", "clip_visual"])
    if clipped.empty:
        raise Skip("needs scores with one modality clipped (clip_audio / clip_visual)")
    regimes = [r for r in ctx.regimes(clipped) if r in TRAINING_REGIMES]  # the figure compares training regimes
    if not regimes:
        raise Skip("needs scores with one modality clipped of units trained by avbench (standard or optimized)")
    models = audiovisual_models(clipped)
    fig, panels = _corpus_panels(ctx, t, 0, 2.5 * t["corpus"].nunique() + 0.5, stacked=True)
    width = 0.8 / (len(SCENARIOS) * len(regimes))
    dots = _ntrials(t) < DOTS_BELOW
    drawn_b4: set[str] = set()
    drawn: set[str] = set()
    for ax, corpus in panels:
        for g, m in enumerate(models):
            for k, ((cond, scen, _), regime) in enumerate(itertools.product(SCENARIOS, regimes)):
                values = select(t, corpus=corpus, model=m, condition=cond, regime=regime)["value"]
                s = summarize(values)
                if not s["n"]:
                    continue
                x = g - 0.4 + width * (k + 0.5)
                if dots:  # too few trials for an interval to mean much: show the trials themselves
                    s = {**s, "ci95": float("nan")}
                    ax.scatter(np.full(len(values), x), values, s=4, color="black", linewidth=0, zorder=6)
                _bar(ax, x, s, width * 0.92, color=style.SCENARIO_COLORS[scen], alpha=style.REGIME_ALPHA[regime],
                     hatch=style.REGIME_HATCH[regime])
                drawn.add(scen)
        for modality, scen, ls, _ in BASELINE4_LINES:
            ref = _baseline4(ctx, modality, "standard", corpus)  # both regimes shown: standard first
            if ref is not None:
                drawn_b4.add(scen)
                ax.axhline(ref["mean"], color=style.SCENARIO_COLORS[scen], linestyle=ls, linewidth=1.2, zorder=5)
        ax.set_xticks(range(len(models)), [ctx.label(m) for m in models])
        ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel(style.metric_label(metric))
    scen = [Patch(facecolor=style.SCENARIO_COLORS[s], edgecolor="black", linewidth=0.4, label=lab)
            for _, s, lab in SCENARIOS if s in drawn]
    # the hatch tells the regimes apart only when there are two (the caption names a single one)
    regs = [Patch(facecolor="white", edgecolor="black", hatch=style.REGIME_HATCH[r], linewidth=0.4,
                  label=style.REGIME_LABELS[r]) for r in regimes] if len(regimes) > 1 else []
    b4 = [(s, ls, what) for _, s, ls, what in BASELINE4_LINES if s in drawn_b4]
    lines = [Line2D([], [], color=style.SCENARIO_COLORS[s], linestyle=ls, label=f"Baseline 4, {what} only")
             for s, ls, what in b4]
    handles = scen + regs + lines
    # one row when it fits; else the scenarios make the first column (the legend fills column by column)
    rows = 1 if len(handles) <= 5 else max(len(scen), 1)
    fig.legend(handles=handles, loc="outside upper center", ncols=-(-len(handles) // rows))
    missing = [r for r in TRAINING_REGIMES if r not in regimes]
    caption = _sentences(
        f"{style.metric_label(metric)} of the audiovisual models trained with the {' and '.join(regimes)} "
        f"procedure{'s' if len(regimes) > 1 else ''} and tested with both modalities (AV), the visual only (V, audio "
        f"clipped) or the acoustic only (A, visual clipped)" + ("; hatched: standard training" if regs else ""),
        f"bars: means over {_ntrials(t)} trials; dots: the individual trials (fewer than {DOTS_BELOW} trials: no "
        f"error bars)" if dots else _ci_text(_ntrials(t)),
        "horizontal lines: unimodal baseline 4 ("
        + ", ".join(f"{LINESTYLE_NAMES[ls]} = {what}" for _, ls, what in b4) + ")" if b4 else "",
        f"{' and '.join(missing)} training is not in this run (protocol training-regimes)" if missing else "")
    title = " vs ".join(regimes).capitalize() + " training, missing modality"  # the regimes drawn, only
    return FigureResult("fig4_regimes_clipping", "Fig. 4", title, caption + _synthetic(ctx, fig), fig)


# ---------------------------------------------------------------------------- curves (Fig. 5 and robustness)
def _trials_text(n: int) -> str:
    """What the curve figures draw, for their captions: one display at any number of trials (a 95% band
    over 2-3 trials fills the axes, and overlapping bands blur into each other)."""
    if n < 2:
        return "lines: a single trial"
    return f"lines: mean over {n} trials; dots: the individual trials of each solid line, side by side per model"


def _curves(ax, t: pd.DataFrame, models: list[str], x: Callable[[np.ndarray], np.ndarray], linestyle: str = "-",
            trials: bool = True) -> list[str]:
    """Mean score versus level of each model (seaborn lines), and with ``trials`` every trial as a dot
    beside its mean (a seaborn strip, dodged by model).  Returns the models drawn."""
    d = t[t["model"].isin(models)].dropna(subset=["level", "value"])
    drawn = [m for m in models if (d["model"] == m).any()]
    if not drawn:
        return []
    d = d.assign(x=x(d["level"].to_numpy(float)), model=d["model"].astype(str))
    for m in drawn:
        sns.lineplot(data=d[d["model"] == m], x="x", y="value", estimator="mean", errorbar=None, ax=ax,
                     color=model_color(m, models), marker=model_marker(m), markersize=3.5, linestyle=linestyle,
                     markeredgewidth=0, legend=False)
    if trials and d.groupby(["model", "x"])["seed"].nunique().max() > 1:
        sns.stripplot(data=d, x="x", y="value", hue="model", hue_order=drawn, ax=ax, native_scale=True,
                      dodge=True, jitter=False, size=1.8, alpha=0.55, linewidth=0, legend=False,
                      palette={m: model_color(m, models) for m in drawn}, zorder=1)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return drawn


def _fit_ylim(axes: np.ndarray) -> None:
    """One y range for all panels, fitted to everything drawn (lines and trial dots) and kept inside
    [0, 1], where every F1 lies."""
    ys = [np.ravel(np.asarray(line.get_ydata(), dtype=float)) for ax in np.ravel(axes) for line in ax.get_lines()
          if line.get_gid() != "no-ylim"]
    ys += [np.asarray(c.get_offsets(), dtype=float)[:, 1] for ax in np.ravel(axes) for c in ax.collections
           if len(c.get_offsets())]
    y = np.concatenate([np.empty(0)] + ys)
    y = y[np.isfinite(y)]
    if not y.size:
        return
    lo, hi = float(y.min()), float(y.max())
    pad = 0.08 * max(hi - lo, 0.05)
    for ax in np.ravel(axes):
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))


LINESTYLE_NAMES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dotted"}


def _sentences(*parts: str) -> str:
    """A caption from its parts: the empty ones left out, each a sentence of its own."""
    return " ".join(f"{p[0].upper()}{p[1:]}." for p in (p.strip().rstrip(".") for p in parts) if p)


def _model_handles(ctx: ReportContext, models: list[str]) -> list[Line2D]:
    return [Line2D([], [], color=model_color(m, models), marker=model_marker(m), label=ctx.label(m))
            for m in models]


def _main_color(ctx: ReportContext, t: pd.DataFrame) -> str:
    """The colour of the proposed model's full-AV line: the model's own, as its curve is drawn in ``t``'s figure."""
    return model_color(ctx.main, audiovisual_models(t)) if ctx.main else style.FULL_AV_COLOR


def _full_handle(ctx: ReportContext, t: pd.DataFrame, full: str) -> list[Line2D]:
    """The legend entry of :func:`_full_line` (``full``: its model's name, '' when none was drawn)."""
    return [Line2D([], [], color=_main_color(ctx, t), linewidth=1.0, label=f"{full}, full AV")] if full else []


def _full_text(full: str, what: str = "full audiovisual input") -> str:
    return f"solid horizontal line (in its colour): {full} with {what}" if full else ""


def _full_line(ax, ctx: ReportContext, corpus: str, model: str, regime: str, color: str) -> bool:
    """``model``'s full-AV score as a horizontal line."""
    v = ctx.select(corpus=corpus, model=model, variant="default", regime=regime, condition="full",
                   metric=ctx.metric)["value"]
    if v.empty:
        return False
    ax.axhline(float(v.mean()), color=color, linestyle="-", linewidth=1.0, alpha=0.8, zorder=1)
    return True


def _curve_panels(ctx: ReportContext, t: pd.DataFrame, columns: list[str], regime: str,
                  draw: Callable[[Any, str, str, str], None]) -> tuple[Figure, str]:
    """The grid of a curve figure: a row per corpus of ``t``, a panel per column (a modality).  ``draw(ax,
    corpus, column, letter)`` draws a panel's own lines, title and x axis; each panel then gets the main
    proposed model's full-AV line and the metric on its y axis, and all panels one y range (:func:`_fit_ylim`).
    Returns the figure and the name of the model whose full-AV line was drawn ('' if none was)."""
    corpora = sorted(t["corpus"].unique())
    fig = style.new_figure(style.WIDTH_DOUBLE if len(columns) > 1 else style.WIDTH_SINGLE + 0.5,
                           2.35 * len(corpora) + 0.55)
    axes = fig.subplots(len(corpora), len(columns), squeeze=False, sharey="row")
    main, has_full = ctx.main, False
    for r, corpus in enumerate(corpora):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            draw(ax, corpus, column, _letter(r * len(columns) + c))
            has_full |= bool(main) and _full_line(ax, ctx, corpus, main, regime, _main_color(ctx, t))
            if c == 0:
                ax.set_ylabel(style.metric_label(ctx.metric))
            ax.tick_params(labelleft=True)
    _fit_ylim(axes)
    return fig, ctx.label(main, short=True) if has_full else ""


def _level_sets(t: pd.DataFrame) -> list[str]:
    """The level sets of ``t``'s rows (its ``levels`` column, see avbench.report.rundata.level_sets), the
    largest first: each draws its own curves."""
    return sorted(set(t["levels"].astype(str)), key=lambda lv: (-len(lv.split(",")), lv))


def _sets_text(sets: list[str], set_ls: dict[str, str]) -> str:
    """What a curve figure's caption says when it draws several level sets ('' for one)."""
    if len(sets) < 2:
        return ""
    return ("protocols with different levels are drawn as separate curves: " +
            ", ".join(f"{LINESTYLE_NAMES[set_ls[lv]]} = levels {format_levels(lv)}" for lv in sets))


@artifact("fig5", kind="figure", needs="masking", name="Fig. 5 (random frame masking)", per_proposed=True)
def fig5(ctx: ReportContext) -> FigureResult:
    """Score vs % of frames kept, one panel per masked modality (and corpus)."""
    run, metric = ctx.run, ctx.metric
    t = audiovisual(ctx.select(condition=["mask_audio", "mask_visual"], metric=metric, variant="default"))
    if t.empty:
        raise Skip("needs frame-masking scores (mask_audio / mask_visual)")
    regime = ctx.regime(t)
    t = select(t, regime=regime)
    conds = [c for c in ("mask_audio", "mask_visual") if c in set(t["condition"])]
    models = audiovisual_models(t)
    sets = _level_sets(t)  # one curve per (model, level set): protocols with other levels are not merged
    set_ls = {lv: list(LINESTYLE_NAMES)[i % len(LINESTYLE_NAMES)] for i, lv in enumerate(sets)}
    b4: list[bool] = []

    def draw(ax, corpus: str, cond: str, letter: str) -> None:
        for i, lv in enumerate(sets):
            _curves(ax, select(t, corpus=corpus, condition=cond, levels=lv), models, lambda lv: 100 * lv,
                    linestyle=set_ls[lv], trials=i == 0)
        ref = _baseline4(ctx, "visual" if cond == "mask_audio" else "audio", regime, corpus)
        if ref is not None:
            b4.append(True)
            ax.axhline(ref["mean"], color=style.BASELINE4_COLOR, linestyle="--", linewidth=1.0, zorder=1)
        ax.set_title(f"{letter} {'Audio' if cond == 'mask_audio' else 'Video'} masking / {run.corpus(corpus).label}")
        ax.set_xlabel(f"Frames kept of the masked {'audio' if cond == 'mask_audio' else 'visual'} stream (%)")
        ax.set_xticks(range(10, 100, 10))

    fig, full = _curve_panels(ctx, t, conds, regime, draw)
    handles = _model_handles(ctx, models) + _full_handle(ctx, t, full)
    if len(sets) > 1:
        handles += [Line2D([], [], color="black", linestyle=set_ls[lv], label=f"levels {format_levels(lv)}")
                    for lv in sets]
    if b4:
        handles.append(Line2D([], [], color=style.BASELINE4_COLOR, linestyle="--", label="Baseline 4, intact modality"))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)))
    caption = _sentences(
        f"{style.metric_label(metric)} as a function of the percentage of frames kept in the masked modality (the "
        f"others zeroed at random; the other modality intact), {style.regime_phrase(regime)}",
        _trials_text(_ntrials(t)), _full_text(full),
        "dashed red line: baseline 4 on the intact modality" if b4 else "", _sets_text(sets, set_ls))
    return FigureResult("fig5_masking", "Fig. 5", "Random frame masking", caption + _synthetic(ctx, fig), fig)


def kind_figure(ctx: ReportContext, ckind: ConditionKind, number: str) -> FigureResult:
    """Score versus level of one condition kind, one panel per modality (and corpus).

    Everything specific to the kind comes from its :class:`~avbench.conditions.KindFigure`: axis,
    level-to-x mapping, the caption's note, and a second kind drawn beside it in another line style.
    """
    run, metric = ctx.run, ctx.metric
    spec = ckind.figure
    kinds = (ckind.name,) + ((spec.beside,) if spec.beside else ())
    what = ckind.what or ckind.name
    xmaps = {ckind.name: spec.x, spec.beside: spec.beside_x or spec.x}
    key = spec.key or f"fig{number.removeprefix('Fig. ')}_{ckind.name}"
    title = spec.title or what.capitalize()
    conds = [f"{k}_{m}" for k in kinds for m in ("audio", "visual")]
    t = audiovisual(ctx.select(condition=conds, metric=metric))
    primary = select(t, condition=[f"{kinds[0]}_audio", f"{kinds[0]}_visual"])
    if primary.empty:
        raise Skip(f"needs {what} scores ({kinds[0]}_audio / {kinds[0]}_visual)")
    regime = ctx.regime(primary)
    t = select(t, regime=regime)
    mods = [m for m in ("audio", "visual") if not select(primary, condition=f"{kinds[0]}_{m}").empty]
    models = audiovisual_models(t)
    # one curve per (kind, model, training variant, level set): protocols with other levels are not merged, and
    # each (kind, variant, level set) has its own line style, which the legend and the caption name
    sets = _level_sets(t)
    variants = sorted({(v, lv) for v, lv in zip(t["variant"], t["levels"].astype(str))},
                      key=lambda vl: (vl[0] != "default", vl[0], sets.index(vl[1])))
    lines = [(kind, vl) for kind in kinds for vl in variants
             if not select(t, condition=[f"{kind}_audio", f"{kind}_visual"], variant=vl[0], levels=vl[1]).empty]
    line_style = {line: list(LINESTYLE_NAMES)[i % len(LINESTYLE_NAMES)] for i, line in enumerate(lines)}
    drawn_lines: list[tuple[str, tuple[str, str]]] = []
    kind_names = dict(zip(kinds, spec.legend)) if len(kinds) > 1 else {}

    def name(line: tuple[str, tuple[str, str]]) -> str:
        kind, (v, lv) = line
        parts = [kind_names.get(kind, kind)] if len(kinds) > 1 else []
        parts += [ctx.variant_label(t, v)] if len({v for v, _ in variants}) > 1 else []
        several_sets = len({vl[1] for k, vl in lines if k == kind}) > 1
        return ", ".join(parts + ([f"levels {format_levels(lv)}"] if several_sets else []))

    def draw(ax, corpus: str, mod: str, letter: str) -> None:
        for line in lines:
            kind, vl = line
            here = select(t, corpus=corpus, condition=f"{kind}_{mod}", variant=vl[0], levels=vl[1])
            if _curves(ax, here, models, xmaps[kind], linestyle=line_style[line], trials=line == lines[0]):
                drawn_lines.append(line)
        if spec.zero_line:
            ax.axvline(0, color="#999999", linewidth=0.6, zorder=0, gid="no-ylim")
        if spec.invert:
            ax.invert_xaxis()
        ax.set_title(f"{letter} {mod.capitalize()} {what} / {run.corpus(corpus).label}")
        ax.set_xlabel(spec.xlabel.format(mod=mod))

    fig, full = _curve_panels(ctx, t, mods, regime, draw)
    handles = _model_handles(ctx, models)
    drawn = [line for line in lines if line in drawn_lines]
    styles_text = ""
    if len(drawn) > 1:
        handles += [Line2D([], [], color="black", linestyle=line_style[line], label=name(line)) for line in drawn]
        styles_text = "line styles: " + ", ".join(f"{LINESTYLE_NAMES[line_style[line]]} = {name(line)}"
                                                  for line in drawn)
    handles += _full_handle(ctx, t, full)
    fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)))
    caption = _sentences(f"{style.metric_label(metric)} under {what} of one modality (the other intact), "
                         f"{style.regime_phrase(regime)}", spec.note, styles_text, _trials_text(_ntrials(t)),
                         _full_text(full, "intact input"))
    return FigureResult(key, number, title, caption + _synthetic(ctx, fig), fig)


# ---------------------------------------------------------------------------- bars (Figs. 6-8)
def _bar(ax, x: float, st: Summary, width: float, fontsize: float | None = None, capsize: float = 1.5,
         hatch: str = "", **kw: Any) -> tuple[float, float]:
    """A bar at the mean of ``st`` with its 95% interval cut to [0, 1] (a t-interval over 2-3 trials can pass
    the limits of an F1), and with ``fontsize`` the mean written upright at its foot, where no error bar
    reaches (see :func:`_zoom`); returns the interval's ends (the mean alone without an interval)."""
    ax.bar(x, st["mean"], width, hatch=hatch, edgecolor="black", linewidth=0.4, **kw)
    low, high = st["mean"], st["mean"]
    if np.isfinite(st["ci95"]):
        low, high = max(0.0, st["mean"] - st["ci95"]), min(1.0, st["mean"] + st["ci95"])
        ax.errorbar(x, st["mean"], yerr=[[st["mean"] - low], [high - st["mean"]]], color="black", linewidth=0.7,
                    capsize=capsize)
    if fontsize:
        ax.text(x, 0.02, f"{st['mean']:.3f}", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                rotation=90, fontsize=fontsize, bbox={"boxstyle": "square,pad=0.15", "facecolor": "white",
                                                      "alpha": 0.8, "linewidth": 0})
    return low, high


def _ablation_figure(ctx: ReportContext, fig_no: int, option: str, protocol: str, title: str,
                     what: str) -> FigureResult:
    """Fig. ``fig_no``: micro- and macro-F1 of each variant of the protocol varying model ``option`` (the paper's
    configuration first), a bar per variant, a panel per corpus."""
    ab = ablation(ctx, option, protocol)
    regime = ctx.regime(ab.table)
    rows = sorted(ab.rows, key=lambda r: not r["proposed"])
    colors = style.RC["axes.prop_cycle"].by_key()["color"]
    fig, panels = _corpus_panels(ctx, ab.table, 0.9, 2.7)
    width = 0.8 / max(1, len(rows))
    n = 0
    for ax, corpus in panels:
        ends = []
        for g, metric in enumerate(TABLE_METRICS):
            for k, r in enumerate(rows):
                st = summarize(select(ab.table, corpus=corpus, metric=metric, model=r["model"], variant=r["variant"],
                                      regime=regime, condition="full")["value"])
                n = max(n, st["n"])
                if st["n"]:
                    label = r["label"] + (" (paper)" if r["proposed"] else "") if g == 0 else None
                    ends.append(_bar(ax, g - 0.4 + width * (k + 0.5), st, width * 0.9, 5.2,
                                     color=colors[k % len(colors)], label=label))
        _zoom(ax, ends)
        ax.set_xticks(range(len(TABLE_METRICS)), [style.metric_label(m) for m in TABLE_METRICS])
        ax.set_xlim(-0.5, len(TABLE_METRICS) - 0.5)
        ax.set_ylabel("F1-score")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(4 if len(panels) > 1 else 2, len(labels)))
    caption = _sentences(f"{what} {ab.names}, {style.regime_phrase(regime)}, full audiovisual test: mean "
                         f"F1-scores over {n} "
                         f"trials (protocol {ab.protocol}); {_ci_text(n)}", _zoom_text(fig.axes))
    return FigureResult(f"fig{fig_no}_{option}", f"Fig. {fig_no}", title, caption + _synthetic(ctx, fig), fig)


@artifact("fig6", kind="figure", needs="self-attention", name="Fig. 6 (self-attention ablation)")
def fig6(ctx: ReportContext) -> FigureResult:
    return _ablation_figure(ctx, 6, "self_attention", "self-attention", "Self-attention ablation",
                            "Self-attention layers with learnable scaling kept, removed, or replaced by an LSTM or "
                            "GRU:")


@artifact("fig7", kind="figure", needs="token", name="Fig. 7 (classification token)")
def fig7(ctx: ReportContext) -> FigureResult:
    return _ablation_figure(ctx, 7, "token", "token", "Classification token",
                            "Classification token: last time step (the paper's), prepended CLS token, or sequence "
                            "mean:")


@artifact("fig8", kind="figure", needs="upscaled", name="Fig. 8 (upscaled baselines)")
def fig8(ctx: ReportContext) -> FigureResult:
    """AuxFormer beside baselines 2 and 3 and their upscaled (about 7M parameters) versions."""
    run, metric = ctx.run, ctx.metric
    t = ctx.select(condition="full", variant="default", metric=metric)
    present = t["model"].unique().tolist()
    xl = sorted((m for m in present if presentation(m).role == "upscaled"), key=model_sort_key)
    if not xl:
        from avbench.registry import MODELS

        known = " / ".join(m for m in MODELS.names() if presentation(m).role == "upscaled")
        raise Skip(f"needs full-AV scores of the upscaled baselines ({known})")
    regime = ctx.regime(t, model=xl[0])
    t = select(t, regime=regime)
    # the protocol's own models that are not upscaled pairs (the paper: AuxFormer), then each upscaled model
    # right after the baseline it widens
    own = (run.definition("upscaled") or {}).get("models") or proposed_models(present)
    pairs = [m for x in xl for m in (presentation(x).upscaled_from, x)]
    order = [m for m in own if m not in pairs] + pairs
    models = [m for m in dict.fromkeys(order) if m and not select(t, model=m).empty]
    params = select(run.table, condition="train", metric="params", variant="default")
    fig, panels = _corpus_panels(ctx, t, 0.5, 2.6)
    n = 0
    for ax, corpus in panels:
        ends, labels = [], []
        for x, m in enumerate(models):
            st = summarize(select(t, corpus=corpus, model=m)["value"])
            p = params[(params["model"] == m) & (params["corpus"] == corpus)]["value"]
            labels.append(ctx.label(m, short=True) + (f"\n{p.mean() / 1e6:.2f}M" if len(p) else ""))
            if not st["n"]:
                continue
            n = max(n, st["n"])
            upscaled = presentation(m).role == "upscaled"
            ends.append(_bar(ax, x, st, 0.7, 6, capsize=2.0, hatch="///" if upscaled else "",
                             color=model_color(presentation(m).upscaled_from or m if upscaled else m)))
        _zoom(ax, ends)
        ax.set_xticks(range(len(models)), labels)
        ax.set_ylabel(style.metric_label(metric))
    plain = [ctx.label(m) for m in models if presentation(m).role != "upscaled"]
    caption = _sentences(
        f"{style.metric_label(metric)} of {', '.join(plain)} beside the upscaled versions of the baselines (hatched, "
        f"after the model each widens), {style.regime_phrase(regime)}, full audiovisual test, mean over {n} trials; "
        f"{_ci_text(n)}", "under each name: trainable parameters (millions)",
        _zoom_text(fig.axes))
    return FigureResult("fig8_upscaled", "Fig. 8", "Upscaled baselines", caption + _synthetic(ctx, fig), fig)


def _zoom(ax, ends: list[tuple[float, float]]) -> None:
    """A y range inside [0, 1] that shows differences of a few points between the bars' intervals
    (``ends``; bars then do not start at 0: captions say so), with room at the bottom for the value labels."""
    if not ends:
        return
    lo, hi = max(0.0, min(low for low, _ in ends)), min(1.0, max(high for _, high in ends))
    span = max(hi - lo, 0.02)
    ax.set_ylim(max(0.0, lo - 0.6 * span), min(1.0, hi + 0.1 * span))


def _zoom_text(axes) -> str:
    """What a bar chart's caption says when :func:`_zoom` lifted a y axis off 0."""
    return "" if all(ax.get_ylim()[0] <= 0 for ax in axes) else "the y axis does not start at 0"


@artifact_family("kind-figures")
def robustness_figures(ctx: ReportContext) -> list[Artifact]:
    """A figure per registered condition kind that declares one (avbench.conditions), numbered as the
    kind declares, else with the next free ``Fig. R<n>``."""
    drawn = [k for k in kinds() if k.figure is not None and k.levels]
    taken = {k.figure.number for k in drawn if k.figure.number}
    free = (f"Fig. R{i}" for i in range(1, 1000) if f"Fig. R{i}" not in taken)
    numbered = sorted(((k, k.figure.number or next(free)) for k in drawn),
                      key=lambda kn: int(kn[1].removeprefix("Fig. R")) if kn[1].startswith("Fig. R") else 0)
    return [Artifact(kind.name, "figure", kind.figure.protocol or kind.name,
                     f"{number} ({(kind.figure.title or kind.what or kind.name).lower()})",
                     lambda c, k=kind, n=number: kind_figure(c, k, n), per_proposed=True)
            for kind, number in numbered]
