"""Figures 3-8 of the paper plus the robustness figures avbench adds (misalignment, occlusion, noise).

Each builder takes the run and the figure metric, returns a :class:`FigureResult` (an Agg figure
and its caption) or raises :class:`~avbench.report.tables.Skip`.  Error bars and bands are 95%
t-intervals of the mean over trials (none with a single trial).  All drawing happens inside
:func:`avbench.report.style.styled`, so every figure shares one look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from avbench.conditions import ConditionKind, kinds
from avbench.report import style
from avbench.report.rundata import RunData, select, summarize, variant_parts
from avbench.report.presentation import (model_color, model_label, model_marker, model_sort_key, multimodal_models,
                                         presentation, proposed_models, unimodal_reference)
from avbench.report.tables import Skip, ablation, main_proposed, option_label

Summary = dict[str, float]


@dataclass
class FigureResult:
    key: str       # file stem
    number: str    # "Fig. 3"
    title: str
    caption: str
    fig: Figure


def _synthetic(run: RunData, fig: Figure) -> str:
    if run.synthetic:
        style.add_footnote(fig, "SYNTHETIC corpus: these numbers test the software, not emotion recognition.")
        return " SYNTHETIC corpus: the numbers test the software, not emotion recognition."
    return ""


def _ci_text(n: int) -> str:
    return "95% confidence intervals of the mean over trials" if n > 1 else "a single trial (no interval)"


def _ntrials(t: pd.DataFrame) -> int:
    return int(t["seed"].nunique()) if len(t) else 0


def _mm(run: RunData, t: pd.DataFrame) -> list[str]:
    return multimodal_models(t["model"].unique().tolist())


def _letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def _corpus_title(run: RunData, corpus: str, n_corpora: int) -> str:
    return run.corpus(corpus).label


# ---------------------------------------------------------------------------- Fig. 3
def fig3(run: RunData, metric: str) -> FigureResult:
    """Per-trial scores of each audiovisual model (optimized training, full AV) as box plots."""
    t = select(run.table, condition="full", variant="default", metric=metric)
    main = main_proposed(t["model"].unique().tolist())
    regime = "optimized" if not select(t, regime="optimized", model=main).empty else None
    if regime is None:
        raise Skip(f"needs full-AV {metric} scores of {main} with optimized training", "optimized")
    t = select(t, regime=regime)
    models = _mm(run, t)
    corpora = sorted(t["corpus"].unique())
    fig = style.new_figure(style.WIDTH_DOUBLE if len(corpora) > 1 else style.WIDTH_SINGLE + 0.6,
                           2.6 if len(corpora) > 1 else 2.7)
    axes = fig.subplots(1, len(corpora), squeeze=False)[0]
    rng = np.random.default_rng(0)
    for i, (ax, corpus) in enumerate(zip(axes, corpora)):
        data = [select(t, corpus=corpus, model=m)["value"].to_numpy(float) for m in models]
        pos = np.arange(len(models))
        box = ax.boxplot(data, positions=pos, widths=0.55, whis=1.5, patch_artist=True,
                         medianprops={"color": "black", "linewidth": 1.4},
                         whiskerprops={"linestyle": "--", "linewidth": 0.8},
                         capprops={"linewidth": 0.8},
                         flierprops={"marker": "+", "markeredgecolor": style.OUTLIER_COLOR, "markersize": 5})
        for patch, m in zip(box["boxes"], models):
            patch.set_facecolor(model_color(m, models))
            patch.set_alpha(0.30)
            patch.set_edgecolor("black")
        for p, m, d in zip(pos, models, data):
            if len(d):
                ax.scatter(p + rng.uniform(-0.12, 0.12, len(d)), d, s=5, color="#555555", zorder=3, linewidths=0)
                ax.scatter([p], [d.mean()], s=28, color=model_color(m, models), edgecolor="black",
                           linewidth=0.6, zorder=4, marker=model_marker(m))
        ax.set_xticks(pos, [model_label(m, short=True) for m in models], rotation=20, ha="right")
        ax.set_ylabel(f"{style.metric_label(metric)} (per trial)")
        ax.set_title(f"{_letter(i) + ' ' if len(corpora) > 1 else ''}{_corpus_title(run, corpus, len(corpora))}")
    legend = [Line2D([], [], color="black", linewidth=1.4, label="median"),
              Line2D([], [], marker="o", color="none", markerfacecolor="#BBBBBB", markeredgecolor="black",
                     label="mean"),
              Line2D([], [], marker=".", color="none", markerfacecolor="#555555", markeredgecolor="none",
                     label="one trial"),
              Line2D([], [], marker="+", color="none", markeredgecolor=style.OUTLIER_COLOR, label="outlier")]
    fig.legend(handles=legend, loc="outside upper center", ncols=4)
    n = _ntrials(t)
    caption = (f"{style.metric_label(metric)} of the audiovisual models trained with the optimized procedure over "
               f"{n} trials (full audiovisual test). Boxes span the first to third quartile, the black bar is the "
               f"median, the marker the mean, grey dots single trials; dashed whiskers reach the most extreme trial "
               f"within 1.5 interquartile ranges, red crosses are outliers beyond.")
    return FigureResult("fig3_trials_boxplot", "Fig. 3", "Per-trial scores (optimized training)",
                        caption + _synthetic(run, fig), fig)


# ---------------------------------------------------------------------------- Fig. 4
SCENARIOS = (("full", "AV"), ("clip_audio", "V"), ("clip_visual", "A"))


def _baseline4(run: RunData, modality: str, metric: str, corpus: str) -> Summary | None:
    """Baseline 4 on its own (intact) modality: its full row, else the clipping of the other modality."""
    model = unimodal_reference(modality)
    other = "clip_audio" if modality == "visual" else "clip_visual"
    rows = select(run.table, model=model, variant="default", metric=metric, corpus=corpus)
    for regime in ("standard", "optimized"):
        for cond in ("full", other):
            v = select(rows, regime=regime, condition=cond)["value"]
            if len(v):
                return summarize(v)
    return None


def fig4(run: RunData, metric: str) -> FigureResult:
    """Grouped bars: AV / V / A scores of each model, standard vs optimized, baseline-4 lines."""
    t = select(run.table, condition=[c for c, _ in SCENARIOS], variant="default", metric=metric)
    t = t[t["model"].isin(_mm(run, t))]
    clipped = select(t, condition=["clip_audio", "clip_visual"])
    if clipped.empty:
        raise Skip("needs scores with one modality clipped (clip_audio / clip_visual)", "training-regimes")
    regimes = [r for r in ("standard", "optimized") if not select(clipped, regime=r).empty]
    models = _mm(run, clipped)
    corpora = sorted(t["corpus"].unique())
    fig = style.new_figure(style.WIDTH_DOUBLE, 2.5 * len(corpora) + 0.5)
    axes = fig.subplots(len(corpora), 1, squeeze=False)[:, 0]
    nbar = len(SCENARIOS) * len(regimes)
    width = 0.8 / nbar
    drawn_b4: set[str] = set()
    for i, (ax, corpus) in enumerate(zip(axes, corpora)):
        for g, m in enumerate(models):
            k = 0
            for cond, scen in SCENARIOS:
                for regime in regimes:
                    s = summarize(select(t, corpus=corpus, model=m, condition=cond, regime=regime)["value"])
                    x = g - 0.4 + width * (k + 0.5)
                    k += 1
                    if not s["n"]:
                        continue
                    ax.bar(x, s["mean"], width * 0.92, color=style.SCENARIO_COLORS[scen],
                           alpha=style.REGIME_ALPHA[regime], hatch=style.REGIME_HATCH[regime],
                           edgecolor="black", linewidth=0.4)
                    if np.isfinite(s["ci"]):  # an F1 lies in [0, 1]: so does its interval as drawn
                        yerr = [[min(s["ci"], s["mean"])], [min(s["ci"], 1.0 - s["mean"])]]
                        ax.errorbar(x, s["mean"], yerr=yerr, color="black", linewidth=0.7, capsize=1.5)
        for modality, scen, ls in (("visual", "V", "--"), ("audio", "A", "-")):
            ref = _baseline4(run, modality, metric, corpus)
            if ref is not None:
                drawn_b4.add(scen)
                ax.axhline(ref["mean"], color=style.SCENARIO_COLORS[scen], linestyle=ls, linewidth=1.2, zorder=5)
        ax.set_xticks(range(len(models)), [model_label(m) for m in models])
        ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel(style.metric_label(metric))
        ax.set_title(f"{_letter(i) + ' ' if len(corpora) > 1 else ''}{_corpus_title(run, corpus, len(corpora))}")
    blank = Patch(facecolor="none", edgecolor="none", label=" ")
    scen = [Patch(facecolor=style.SCENARIO_COLORS[s], edgecolor="black", linewidth=0.4, label=lab)
            for s, lab in (("AV", "AV (audiovisual)"), ("V", "V (visual only)"), ("A", "A (acoustic only)"))]
    regs = [Patch(facecolor="white", edgecolor="black", hatch=style.REGIME_HATCH[r], linewidth=0.4,
                  label=style.REGIME_LABELS[r]) for r in regimes]
    lines = [Line2D([], [], color=style.SCENARIO_COLORS[s], linestyle=ls, label=f"Baseline 4, {what} only")
             for s, ls, what in (("V", "--", "visual"), ("A", "-", "acoustic")) if s in drawn_b4]
    # one legend column per kind of symbol (the legend fills column by column); blanks only to
    # keep the columns apart, never a column of blanks
    columns = [scen, regs] + ([lines] if lines else [])
    depth = max(len(c) for c in columns)
    handles = [h for c in columns for h in c + [blank] * (depth - len(c))]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(columns))
    n = _ntrials(t)
    missing = [r for r in ("standard", "optimized") if r not in regimes]
    caption = (f"{style.metric_label(metric)} of the audiovisual models trained with the "
               f"{' and '.join(regimes)} procedure{'s' if len(regimes) > 1 else ''} and tested with both modalities "
               f"(AV), the visual only (V, audio clipped) or the acoustic only (A, visual clipped); error bars: "
               f"{_ci_text(n)} ({n})."
               + (" Horizontal lines: unimodal baseline 4 (dashed = visual, solid = acoustic)." if drawn_b4 else "")
               + (f" {' and '.join(missing)} training is not in this run (protocol training-regimes)." if missing else ""))
    return FigureResult("fig4_regimes_clipping", "Fig. 4", "Standard vs optimized training, missing modality",
                        caption + _synthetic(run, fig), fig)


# ---------------------------------------------------------------------------- curves (Fig. 5 and robustness)
def _curve(ax, t: pd.DataFrame, model: str, models: list[str], x: Callable[[np.ndarray], np.ndarray],
           linestyle: str = "-", label: str | None = None, band: bool = True) -> bool:
    g = t[t["model"] == model]
    if g.empty:
        return False
    levels = sorted(g["level"].dropna().unique())
    stats_ = [summarize(g[np.isclose(g["level"], lv)]["value"]) for lv in levels]
    xs = x(np.asarray(levels, dtype=float))
    order = np.argsort(xs)
    xs = xs[order]
    mean = np.array([s["mean"] for s in stats_])[order]
    ci = np.array([s["ci"] for s in stats_])[order]
    color = model_color(model, models)
    ax.plot(xs, mean, linestyle=linestyle, color=color, marker=model_marker(model),
            label=label or model_label(model), markersize=3.5)
    if band and np.isfinite(ci).any():
        ax.fill_between(xs, np.clip(mean - ci, 0, 1), np.clip(mean + ci, 0, 1), color=color, alpha=0.12,
                        linewidth=0)
    return True


def _full_line(ax, run: RunData, corpus: str, metric: str, regime: str, model: str | None = None,
               variant: str = "default") -> bool:
    """The full-AV score of ``model`` (default: the main proposed model) as a horizontal line."""
    model = model or main_proposed(run.table["model"].unique().tolist())
    v = select(run.table, corpus=corpus, model=model, variant=variant, regime=regime, condition="full",
               metric=metric)["value"]
    if v.empty:
        return False
    ax.axhline(float(v.mean()), color=style.FULL_AV_COLOR, linestyle="-", linewidth=1.0, alpha=0.8, zorder=1)
    return True


def _fit_ylim(axes: np.ndarray) -> None:
    """One y range for all panels, fitted to the mean curves and reference lines (not to the confidence
    bands, which with few trials can span the whole [0, 1] range and flatten every curve)."""
    ys = [np.asarray(line.get_ydata(), dtype=float) for ax in np.ravel(axes) for line in ax.get_lines()
          if line.get_gid() != "no-ylim"]
    ys = [y[np.isfinite(y)] for y in ys if np.size(y)]
    if not ys:
        return
    lo, hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
    pad = 0.3 * max(hi - lo, 0.05)
    for ax in np.ravel(axes):
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) if hi <= 1.0 else hi + pad)


def _grid(n_rows: int, n_cols: int) -> tuple[Figure, np.ndarray]:
    fig = style.new_figure(style.WIDTH_DOUBLE if n_cols > 1 else style.WIDTH_SINGLE + 0.5, 2.35 * n_rows + 0.55)
    return fig, fig.subplots(n_rows, n_cols, squeeze=False, sharey="row")


def _regime(t: pd.DataFrame) -> str:
    return "optimized" if not select(t, regime="optimized").empty else "standard"


def fig5(run: RunData, metric: str) -> FigureResult:
    """Score vs % of frames kept, one panel per masked modality (and corpus)."""
    t = select(run.table, condition=["mask_audio", "mask_visual"], metric=metric, variant="default")
    t = t[t["model"].isin(_mm(run, t))]
    if t.empty:
        raise Skip("needs frame-masking scores (mask_audio / mask_visual)", "masking")
    regime = _regime(t)
    t = select(t, regime=regime)
    corpora = sorted(t["corpus"].unique())
    conds = [c for c in ("mask_audio", "mask_visual") if c in set(t["condition"])]
    models = _mm(run, t)
    fig, axes = _grid(len(corpora), len(conds))
    has_full = has_b4 = False
    k = 0
    for r, corpus in enumerate(corpora):
        for c, cond in enumerate(conds):
            ax = axes[r, c]
            here = select(t, corpus=corpus, condition=cond)
            for m in models:
                _curve(ax, here, m, models, lambda lv: 100 * lv)
            has_full |= _full_line(ax, run, corpus, metric, regime)
            intact = "visual" if cond == "mask_audio" else "audio"
            ref = _baseline4(run, intact, metric, corpus)
            if ref is not None:
                has_b4 = True
                ax.axhline(ref["mean"], color=style.BASELINE4_COLOR, linestyle="--", linewidth=1.0, zorder=1)
            masked = "Audio" if cond == "mask_audio" else "Video"
            ax.set_title(f"{_letter(k)} {masked} masking / {run.corpus(corpus).label}")
            k += 1
            ax.set_xlabel(f"Frames kept of the masked {'audio' if cond == 'mask_audio' else 'visual'} stream (%)")
            ax.set_xticks(range(10, 100, 10))
            if c == 0:
                ax.set_ylabel(style.metric_label(metric))
            ax.tick_params(labelleft=True)
    handles = [Line2D([], [], color=model_color(m, models), marker=model_marker(m), label=model_label(m))
               for m in models]
    if has_full:
        handles.append(Line2D([], [], color=style.FULL_AV_COLOR, linewidth=1.0, label="AuxFormer, full AV"))
    if has_b4:
        handles.append(Line2D([], [], color=style.BASELINE4_COLOR, linestyle="--", label="Baseline 4, intact modality"))
    _fit_ylim(axes)
    fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)))
    n = _ntrials(t)
    lines = ([f"solid blue line: {model_label(main_proposed(models), short=True)} with full audiovisual input"]
             if has_full else []) + (["dashed red line: baseline 4 on the intact modality"] if has_b4 else [])
    caption = (f"{style.metric_label(metric)} as a function of the percentage of frames kept in the masked modality "
               f"(the others zeroed at random; the other modality intact), {regime} training; bands: {_ci_text(n)} "
               f"({n})." + (f" {'; '.join(lines)}." if lines else "")).replace(". solid", ". Solid")
    return FigureResult("fig5_masking", "Fig. 5", "Random frame masking", caption + _synthetic(run, fig), fig)


def kind_figure(run: RunData, metric: str, ckind: ConditionKind, number: str) -> FigureResult:
    """Score versus level of one condition kind, one panel per modality (and corpus).

    Everything specific to the kind comes from its :class:`~avbench.conditions.KindFigure`: axis,
    level-to-x mapping, the caption's note, and a second kind drawn dashed beside it.
    """
    spec = ckind.figure
    kinds = (ckind.name,) + ((spec.beside,) if spec.beside else ())
    what, protocol = ckind.what or ckind.name, spec.protocol or ckind.name
    styles = {ckind.name: "-", spec.beside: "--"} if spec.beside else None
    alt_x = {spec.beside: spec.beside_x} if spec.beside and spec.beside_x else None
    x, xlabel = spec.x, spec.xlabel
    zero_line, invert = spec.zero_line, spec.invert
    key = spec.key or f"fig{number.removeprefix('Fig. ')}_{ckind.name}"
    title = spec.title or what.capitalize()
    conds = [f"{k}_{m}" for k in kinds for m in ("audio", "visual")]
    t = select(run.table, condition=conds, metric=metric)
    t = t[t["model"].isin(_mm(run, t))]
    primary = select(t, condition=[f"{kinds[0]}_audio", f"{kinds[0]}_visual"])
    if primary.empty:
        raise Skip(f"needs {what} scores ({kinds[0]}_audio / {kinds[0]}_visual)", protocol)
    regime = _regime(primary)
    t = select(t, regime=regime)
    corpora = sorted(t["corpus"].unique())
    mods = [m for m in ("audio", "visual") if not select(primary, condition=f"{kinds[0]}_{m}").empty]
    models = _mm(run, t)
    variants = sorted(t["variant"].unique(), key=lambda v: (v != "default", v))
    variant_ls = {v: ["-", "--", ":", "-."][i % 4] for i, v in enumerate(variants)}
    fig, axes = _grid(len(corpora), len(mods))
    k = 0
    line_kinds: list[tuple[str, str]] = []
    for r, corpus in enumerate(corpora):
        for c, mod in enumerate(mods):
            ax = axes[r, c]
            for kind_i, kind in enumerate(kinds):
                here = select(t, corpus=corpus, condition=f"{kind}_{mod}")
                for v in variants:
                    hv = here[here["variant"] == v]
                    ls = (styles or {}).get(kind, "-") if len(kinds) > 1 else variant_ls[v]
                    fx = (alt_x or {}).get(kind, x)
                    for m in models:
                        if _curve(ax, hv, m, models, fx, linestyle=ls, band=kind_i == 0 and v == variants[0]):
                            tag = (kind, v)
                            if tag not in line_kinds:
                                line_kinds.append(tag)
            _full_line(ax, run, corpus, metric, regime)
            if zero_line:
                ax.axvline(0, color="#999999", linewidth=0.6, zorder=0, gid="no-ylim")
            if invert:
                ax.invert_xaxis()
            ax.set_title(f"{_letter(k)} {mod.capitalize()} {what} / {run.corpus(corpus).label}")
            k += 1
            ax.set_xlabel(xlabel.format(mod=mod))
            if c == 0:
                ax.set_ylabel(style.metric_label(metric))
            ax.tick_params(labelleft=True)
    handles = [Line2D([], [], color=model_color(m, models), marker=model_marker(m), label=model_label(m))
               for m in models]
    if len(kinds) > 1:
        names = dict(zip(kinds, spec.legend))
        handles += [Line2D([], [], color="black", linestyle=(styles or {}).get(kd, "-"), label=names.get(kd, kd))
                    for kd in kinds if any(tag[0] == kd for tag in line_kinds)]
    elif len(variants) > 1:
        handles += [Line2D([], [], color="black", linestyle=variant_ls[v], label=_variant_label(t, v)) for v in variants]
    handles.append(Line2D([], [], color=style.FULL_AV_COLOR, linewidth=1.0, label="AuxFormer, full AV"))
    _fit_ylim(axes)
    fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)))
    n = _ntrials(t)
    note = f"{spec.note}; " if spec.note else ""
    caption = f"{style.metric_label(metric)} under {what} of one modality (the other intact), {regime} training; " \
              f"{note}bands: {_ci_text(n)} ({n}); solid blue line: AuxFormer with intact input."
    return FigureResult(key, number, title, caption + _synthetic(run, fig), fig)


def _variant_label(table: pd.DataFrame, variant: str) -> str:
    name, shift = variant_parts(table, variant)
    if shift:
        return f"trained with random shifts (±{shift:g} ms)" + ("" if name == "default" else f", {name}")
    return "trained without shifts" if variant == "default" else f"variant {variant}"


# ---------------------------------------------------------------------------- bars (Figs. 6-8)
def _bar_panels(run: RunData, t: pd.DataFrame, series: list[dict[str, Any]],
                metrics: list[str]) -> tuple[Figure, int]:
    """One panel per corpus; x groups = metrics; one bar per series (a dict: label, filt, color, hatch)."""
    corpora = sorted(t["corpus"].unique())
    fig = style.new_figure(style.WIDTH_DOUBLE if len(corpora) > 1 else style.WIDTH_SINGLE + 0.9, 2.7)
    axes = fig.subplots(1, len(corpora), squeeze=False)[0]
    width = 0.8 / max(1, len(series))
    n = 0
    for i, (ax, corpus) in enumerate(zip(axes, corpora)):
        lows, highs = [], []
        for g, metric in enumerate(metrics):
            for k, s in enumerate(series):
                vals = select(s.get("table", t), corpus=corpus, metric=metric, **s["filt"])["value"]
                st = summarize(vals)
                n = max(n, st["n"])
                if not st["n"]:
                    continue
                x = g - 0.4 + width * (k + 0.5)
                ax.bar(x, st["mean"], width * 0.9, color=s["color"], hatch=s.get("hatch", ""), edgecolor="black",
                       linewidth=0.4, label=s["label"] if g == 0 else None)
                err = st["ci"] if np.isfinite(st["ci"]) else 0.0
                if err:
                    ax.errorbar(x, st["mean"], yerr=err, color="black", linewidth=0.7, capsize=1.5)
                ax.text(x, st["mean"] + err, f" {st['mean']:.3f}", ha="center", va="bottom", fontsize=5.2,
                        rotation=90)
                lows.append(st["mean"] - err)
                highs.append(st["mean"] + err)
        _zoom(ax, lows, highs)
        ax.set_xticks(range(len(metrics)), [style.metric_label(m) for m in metrics])
        ax.set_xlim(-0.5, len(metrics) - 0.5)
        ax.set_ylabel("F1-score" if len(metrics) > 1 else style.metric_label(metrics[0]))
        ax.set_title(f"{_letter(i) + ' ' if len(corpora) > 1 else ''}{run.corpus(corpus).label}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(4 if len(corpora) > 1 else 2, len(labels)))
    return fig, n


def _palette(k: int) -> list[str]:
    cols = [style.OKABE_ITO[c] for c in ("blue", "orange", "bluish_green", "reddish_purple", "sky_blue",
                                          "vermillion", "yellow", "black")]
    return [cols[i % len(cols)] for i in range(k)]


def _ablation_figure(run: RunData, key_option: str, protocol: str, key: str, number: str, title: str,
                     what: str) -> FigureResult:
    ab = ablation(run, key_option, protocol, option_label(key_option))
    regime = "optimized" if "optimized" in ab.regimes else ab.regimes[0]
    rows = sorted(ab.rows, key=lambda r: not r["proposed"])
    colors = _palette(len(rows))
    series = [{"label": r["label"] + (" (paper)" if r["proposed"] else ""),
               "filt": {"model": r["model"], "variant": r["variant"], "regime": regime, "condition": "full"},
               "color": colors[i], "table": ab.table} for i, r in enumerate(rows)]
    fig, n = _bar_panels(run, ab.table, series, ["micro_f1", "macro_f1"])
    caption = (f"{what} AuxFormer, {regime} training, full audiovisual test: mean F1-scores over {n} trials "
               f"(protocol {ab.protocol}); error bars: {_ci_text(n)}. The y axis does not start at 0.")
    return FigureResult(key, number, title, caption + _synthetic(run, fig), fig)


def fig6(run: RunData, metric: str) -> FigureResult:
    return _ablation_figure(run, "self_attention", "self-attention", "fig6_self_attention", "Fig. 6",
                            "Self-attention ablation",
                            "Self-attention layers with learnable scaling kept, removed, or replaced by an LSTM or GRU:")


def fig7(run: RunData, metric: str) -> FigureResult:
    return _ablation_figure(run, "token", "token", "fig7_token", "Fig. 7", "Classification token",
                            "Classification token: last time step (the paper's), prepended CLS token, or sequence mean:")


def fig8(run: RunData, metric: str) -> FigureResult:
    """AuxFormer beside baselines 2 and 3 and their upscaled (about 7M parameters) versions."""
    t = select(run.table, condition="full", variant="default", metric=metric)
    present = t["model"].unique().tolist()
    xl = sorted((m for m in present if presentation(m).role == "upscaled"), key=model_sort_key)
    if not xl:
        from avbench.registry import MODELS

        known = " / ".join(m for m in MODELS.names() if presentation(m).role == "upscaled")
        raise Skip(f"needs full-AV scores of the upscaled baselines ({known})", "upscaled")
    regime = "optimized" if not select(t, regime="optimized", model=xl[0]).empty else "standard"
    t = select(t, regime=regime)
    # the proposed models, then each upscaled model right after the baseline it widens
    order = proposed_models(present) + [m for x in xl for m in (presentation(x).upscaled_from, x)]
    models = [m for m in dict.fromkeys(order) if m and not select(t, model=m).empty]
    params = select(run.table, condition="train", metric="params", variant="default")
    corpora = sorted(t["corpus"].unique())
    fig = style.new_figure(style.WIDTH_DOUBLE if len(corpora) > 1 else style.WIDTH_SINGLE + 0.5, 2.6)
    axes = fig.subplots(1, len(corpora), squeeze=False)[0]
    n = 0
    for i, (ax, corpus) in enumerate(zip(axes, corpora)):
        lows, highs, labels = [], [], []
        for x, m in enumerate(models):
            st = summarize(select(t, corpus=corpus, model=m)["value"])
            p = params[(params["model"] == m) & (params["corpus"] == corpus)]["value"]
            labels.append(model_label(m, short=True) + (f"\n{p.mean() / 1e6:.2f}M" if len(p) else ""))
            if not st["n"]:
                continue
            n = max(n, st["n"])
            err = st["ci"] if np.isfinite(st["ci"]) else 0.0
            upscaled = presentation(m).role == "upscaled"
            ax.bar(x, st["mean"], 0.7, color=model_color(presentation(m).upscaled_from or m if upscaled else m),
                   hatch="///" if upscaled else "", edgecolor="black", linewidth=0.4)
            if err:
                ax.errorbar(x, st["mean"], yerr=err, color="black", linewidth=0.7, capsize=2)
            ax.text(x, st["mean"] + err, f"{st['mean']:.3f}", ha="center", va="bottom", fontsize=6)
            lows.append(st["mean"] - err)
            highs.append(st["mean"] + err)
        _zoom(ax, lows, highs)
        ax.set_xticks(range(len(models)), labels)
        ax.set_ylabel(style.metric_label(metric))
        ax.set_title(f"{_letter(i) + ' ' if len(corpora) > 1 else ''}{run.corpus(corpus).label}")
    caption = (f"{style.metric_label(metric)} of AuxFormer and of baselines 2 (MulT) and 3 (cross-modal) beside their "
               f"upscaled versions (XL, hatched), {regime} training, full audiovisual test, mean over {n} trials; "
               f"error bars: {_ci_text(n)}. Under each name: trainable parameters (millions). The y axis does not "
               f"start at 0.")
    return FigureResult("fig8_upscaled", "Fig. 8", "Upscaled baselines", caption + _synthetic(run, fig), fig)


def _zoom(ax, lows: list[float], highs: list[float]) -> None:
    """A y range that shows differences of a few points (bars then do not start at 0: captions say so)."""
    if not lows:
        return
    lo, hi = max(0.0, min(lows)), min(1.0, max(highs))
    span = max(hi - lo, 0.02)
    ax.set_ylim(max(0.0, lo - 0.6 * span), hi + 0.45 * span)


FIGURES: dict[str, tuple[Callable[[RunData, str], FigureResult], str]] = {
    "fig3": (fig3, "optimized"),
    "fig4": (fig4, "training-regimes"),
    "fig5": (fig5, "masking"),
    "fig6": (fig6, "self-attention"),
    "fig7": (fig7, "token"),
    "fig8": (fig8, "upscaled"),
}


def kind_figures() -> list[tuple[ConditionKind, str]]:
    """Every registered condition kind that has a robustness figure, with its figure number:
    the number the kind declares, else the next free ``Fig. R<n>``."""
    drawn = [k for k in kinds() if k.figure is not None and k.levels]
    taken = {k.figure.number for k in drawn if k.figure.number}
    free = (f"Fig. R{i}" for i in range(1, 1000) if f"Fig. R{i}" not in taken)
    numbered = [(k, k.figure.number or next(free)) for k in drawn]
    return sorted(numbered, key=lambda kn: int(kn[1].removeprefix("Fig. R")) if kn[1].startswith("Fig. R") else 0)


def all_figures() -> dict[str, tuple[Callable[[RunData, str], FigureResult], str, str]]:
    """Key -> (builder, producing protocol, artifact name) of every figure a report can draw."""
    out = {key: (fn, protocol, "") for key, (fn, protocol) in FIGURES.items()}
    for kind, number in kind_figures():
        name = f"{number} ({(kind.figure.title or kind.what or kind.name).lower()})"
        out[kind.name] = (lambda run, metric, k=kind, n=number: kind_figure(run, metric, k, n),
                          kind.figure.protocol or kind.name, name)
    return out
