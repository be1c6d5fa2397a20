"""Report artifacts of the statistics across cells: the ranking of models across conditions (a CD diagram and a
table of mean ranks), the Bayesian comparison of the proposed model with each baseline (a table and a figure of
the posteriors), and calibration under masking (ECE against the masking level).

Each is registered with :func:`avbench.report.artifacts.artifact` like the paper's tables and figures. What needs
the optional extra ``avbench[stats]`` is skipped without it, the reason naming the extra.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import ticker, transforms

from avbench import stats
from avbench.report import style
from avbench.report.artifacts import ReportContext, Skip, artifact
from avbench.report.figures import FigureResult, _sentences, _synthetic
from avbench.report.presentation import model_color, model_key_sentence
from avbench.report.render import Cell, Row, Section, Table
from avbench.report.rundata import CELL_CONDITIONS, format_levels
from avbench.report.tables import audiovisual, audiovisual_models, family_label, family_rank, trials_phrase
from avbench.results import select
from avbench.stats.extra import EXTRA, MissingExtra
from avbench.validation import ValidationError

#: Where a skipped artifact of this module says its input comes from, when the extra is missing.
EXTRA_SOURCE = f"optional extra avbench[{EXTRA}]"
CONDITION_TITLES = {"full": "Full audiovisual input", "clip_audio": "Visual only (audio clipped)",
                    "clip_visual": "Acoustic only (visual clipped)"}


def _proposed(ctx: ReportContext, models: list[str]) -> str:
    """The proposed model these artifacts compare with the others: the report's choice (ctx.main)."""
    return ctx.tested("the Bayesian comparison sets it against every other model")


def _skip_missing(exc: MissingExtra) -> Skip:
    return Skip(str(exc), EXTRA_SOURCE)


# ---------------------------------------------------------------------------- ranking across conditions
def ranking_blocks(ctx: ReportContext) -> tuple[pd.DataFrame, str]:
    """The rows ranked: one block per (corpus, condition family) scored by the family's AUC, plus one per (corpus,
    full or clip condition) scored by the figure metric; deduplicated table, one regime, the default variant,
    audiovisual models. Returns the rows (metric renamed ``score``) and the regime."""
    metric = ctx.metric
    t = audiovisual(ctx.select(variant="default"))
    regime = ctx.regime(select(t, metric=[metric, f"auc_{metric}"]))
    cells = ctx.select(t, regime=regime, metric=metric, condition=list(CELL_CONDITIONS), level=None)
    families = _widest_level_sets(ctx.select(t, regime=regime, metric=f"auc_{metric}"))
    families = families.assign(condition=_family_blocks(families))
    rows = pd.concat([cells, families], ignore_index=True)
    rows["condition"] = rows["condition"].astype(str)
    rows["metric"] = "score"
    return rows, regime


def _ranking(ctx: ReportContext) -> tuple[stats.Ranking, pd.DataFrame, str]:
    rows, regime = ranking_blocks(ctx)
    if rows.empty:
        raise Skip(f"needs full, clipped or robustness-summary ({ctx.metric}) scores of audiovisual models")
    try:
        ranking = stats.rank_models(rows, "score", blocks=["corpus", "condition"], alpha=ctx.config.alpha)
    except MissingExtra as exc:
        raise _skip_missing(exc) from None
    except ValidationError:
        ranking = None
    if ranking is None or ranking.n_models < stats.MIN_MODELS or ranking.n_blocks < stats.MIN_BLOCKS:
        n_models = rows.groupby("model", observed=True)["condition"].nunique()
        raise Skip(f"a ranking needs at least {stats.MIN_MODELS} models scored in at least {stats.MIN_BLOCKS} "
                   f"blocks; this run has {len(n_models)} audiovisual model(s) over "
                   f"{rows[['corpus', 'condition']].drop_duplicates().shape[0]} block(s)")
    return ranking, rows, regime


def _family_blocks(rows: pd.DataFrame) -> pd.Series:
    """The block name of each AUC row: its condition family, with ``|<levels>`` where the family was scored over
    more than one level set (AUCs over different levels are different quantities: separate blocks)."""
    cond, levels = rows["condition"].astype(str), rows["levels"].astype(str)
    several = levels.groupby(cond).transform("nunique") > 1
    return cond.where(~several, cond + "|" + levels)


def _widest_level_sets(rows: pd.DataFrame) -> pd.DataFrame:
    """The AUC rows of one level set per (corpus, condition family): the set scored for the most models (then
    the one with the most levels).  A ranking needs every model in every block, so a level set of the user's
    own protocol, scored for one model only, must not push every other model out of the ranking."""
    if rows.empty:
        return rows
    width = rows.groupby(["corpus", "condition", "levels"], observed=True)["model"].nunique().reset_index()
    width["n_levels"] = width["levels"].astype(str).str.count(",")
    best = (width.sort_values(["model", "n_levels"], ascending=False)
            .drop_duplicates(["corpus", "condition"])[["corpus", "condition", "levels"]])
    keep = set(zip(*(best[c].astype(str) for c in ("corpus", "condition", "levels"))))
    return rows[[key in keep for key in zip(*(rows[c].astype(str) for c in ("corpus", "condition", "levels")))]]


def _family_text(condition: str) -> str:
    fam, _, levels = condition.partition("|")
    return family_label(fam) + (f" (levels {format_levels(levels)})" if levels else "")


def _block_text(ctx: ReportContext, block: str) -> str:
    corpus, _, condition = block.partition(" / ")
    name = {"full": "full", "clip_audio": "audio clipped", "clip_visual": "visual clipped"}.get(
        condition, f"{_family_text(condition)} (AUC)")
    return f"{name}, {ctx.run.corpus(corpus).label}" if len(ctx.run.corpora) > 1 else name


def _ranking_facts(ctx: ReportContext, r: stats.Ranking, rows: pd.DataFrame, regime: str) -> str:
    """What was ranked, the Friedman test, and the caveat on blocks: said by the table and the figure alike."""
    metric = style.metric_label(ctx.metric)
    blocks = "; ".join(_block_text(ctx, b) for b in r.scores.index)
    dropped = (f" Left out (not scored in every block): {', '.join(f'{ctx.label(m, short=True)} ({why})' for m, why in r.dropped.items())}."
               if r.dropped else "")
    return (f"Mean rank (1 = best) of the audiovisual models over {r.n_blocks} blocks ({blocks}): one block per "
            f"corpus and condition family, scored by the family's AUC of {metric}, plus the full and clipped "
            f"conditions, scored by {metric}; {style.regime_phrase(regime)}, default variant, each block scored "
            f"by the mean "
            f"over {trials_phrase(rows.groupby('model', observed=True)['seed'].nunique().to_dict())} trials. Friedman "
            f"χ² = {r.friedman_chi2:.2f} (p = {r.friedman_p:.3g}; Iman-Davenport F = {r.iman_davenport_f:.2f}, "
            f"p = {r.iman_davenport_p:.3g}). The blocks share test clips and are not independent data sets, so the "
            f"tests describe this run's conditions rather than a population of tasks.{dropped}")


def _letters(groups: list[list[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, group in enumerate(groups):
        for m in group:
            out[m] = out.get(m, "") + chr(ord("a") + i)
    return out


@artifact("ranking", kind="table", needs="masking / occlusion / misalignment / noise + clipping",
          name="Table R2 (mean ranks across conditions)")
def ranking_table(ctx: ReportContext) -> Table:
    """Mean rank of each audiovisual model across the run's blocks, with the groups of the two post-hoc tests."""
    r, rows, regime = _ranking(ctx)
    nemenyi, wilcoxon = _letters(r.groups("nemenyi")), _letters(r.groups("wilcoxon"))
    table_rows = []
    for m, rank in r.mean_ranks.items():
        mean = float(r.scores[m].mean())
        table_rows.append(Row(ctx.table_label(m), [Cell(f"{rank:.2f}", rank), Cell(f"{mean:.3f}", mean),
                                               Cell(nemenyi.get(m, "")), Cell(wilcoxon.get(m, ""))], key={"model": m}))
    caption = (_ranking_facts(ctx, r, rows, regime) + f" Models sharing a letter do not differ significantly at "
               f"α = {r.alpha:g}: Nemenyi (critical difference {r.critical_difference:.2f}) and the two-sided Wilcoxon "
               f"signed-rank test over blocks with Holm's correction (Benavoli et al. 2016)."
               + model_key_sentence(list(r.mean_ranks.index)) + ctx.synthetic_note)
    return Table("ranking", "Table R2", "Ranking across conditions", caption, "Architecture", [],
                 ["Mean rank", "Mean score", "Nemenyi", "Wilcoxon-Holm"], [Section(None, table_rows)], best=None)


@artifact("fig-cd", kind="figure", needs="masking / occlusion / misalignment / noise + clipping",
          name="Fig. R (critical-difference diagram)")
def cd_diagram(ctx: ReportContext) -> FigureResult:
    """Demsar's critical-difference diagram of the mean ranks, bars from the Nemenyi test (scikit-posthocs)."""
    r, rows, regime = _ranking(ctx)
    sp = stats.extra.require("scikit_posthocs", "The critical-difference diagram")
    labels = {m: ctx.label(m, short=True) for m in r.mean_ranks.index}
    models = list(r.mean_ranks.index)
    fig = style.new_figure(style.WIDTH_SINGLE, 0.9 + 0.28 * math.ceil(len(models) / 2) + 0.15 * len(r.groups()))
    ax = fig.subplots()
    sp.critical_difference_diagram(r.mean_ranks.rename(labels), r.nemenyi_p.rename(index=labels, columns=labels),
                                   alpha=r.alpha, ax=ax,
                                   color_palette={labels[m]: model_color(m, models) for m in models},
                                   label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}",
                                   label_props={"fontsize": 7}, crossbar_props={"linewidth": 2.5})
    # the CD as a segment above the rank axis and its tick labels (scikit-posthocs draws it over the labels)
    above = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    start = float(r.mean_ranks.iloc[0])
    ax.plot([start, start + r.critical_difference], [1.32, 1.32], color="black", linewidth=1.2, clip_on=False,
            transform=above, marker="|", markersize=6)
    ax.text(start + r.critical_difference, 1.32, f"  CD = {r.critical_difference:.2f}", ha="left", va="center",
            fontsize=7, transform=above)
    caption = _sentences(
        f"Critical-difference diagram (Demsar 2006) of the {len(models)} audiovisual models over {r.n_blocks} blocks: "
        f"mean ranks on the axis (1 = best), thick bars join models whose mean ranks the Nemenyi test does not tell "
        f"apart at α = {r.alpha:g} (the segment above the axis is the critical difference, "
        f"{r.critical_difference:.2f})",
        _ranking_facts(ctx, r, rows, regime).removesuffix("."))
    return FigureResult("fig_cd_diagram", "Fig. R", "Critical-difference diagram", caption + _synthetic(ctx, fig), fig)


# ---------------------------------------------------------------------------- Bayesian comparison with a ROPE
def _paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The trial-paired scores of two selections, or the reason they cannot be compared."""
    sa, sb = a.groupby("seed")["value"].mean(), b.groupby("seed")["value"].mean()
    if set(sa.index) != set(sb.index):
        return np.array([]), np.array([]), "trials are not paired (one side lacks some)"
    if sa.isna().any() or sb.isna().any():
        return np.array([]), np.array([]), "NaN scores"
    if len(sa) < 2:
        return np.array([]), np.array([]), "fewer than 2 trials"
    seeds = sorted(sa.index)
    return sa.loc[seeds].to_numpy(), sb.loc[seeds].to_numpy(), None


def _bayes_cells(ctx: ReportContext) -> tuple[str, list[str], list[tuple[str, str, str, pd.DataFrame]], str]:
    """The proposed model, its baselines, and the cells compared: (corpus, condition, metric, rows)."""
    metric = ctx.metric
    t = audiovisual(ctx.select(variant="default", metric=[metric, f"auc_{metric}"]))
    models = audiovisual_models(t)
    main = _proposed(ctx, models)
    if select(t, model=main).empty:
        raise Skip(f"needs {metric} scores of {main}")
    regime = ctx.regime(t, model=main)
    t = select(t, regime=regime)
    baselines = [m for m in models if m != main and not select(t, model=m).empty]
    if not baselines:
        raise Skip(f"needs {main} and at least one audiovisual baseline scored in the same regime")
    aucs = select(t, metric=f"auc_{metric}")
    t = pd.concat([t.drop(aucs.index), aucs.assign(condition=_family_blocks(aucs))])
    families = sorted(select(t, metric=f"auc_{metric}")["condition"].astype(str).unique(),
                      key=lambda c: (family_rank(c.partition("|")[0]), c))
    cells = []
    for corpus in sorted(t["corpus"].astype(str).unique()):
        for condition in CELL_CONDITIONS:
            rows = select(t, corpus=corpus, condition=condition, metric=metric, level=None)
            if not select(rows, model=main).empty:
                cells.append((corpus, condition, metric, rows))
        for fam in families:
            rows = select(t, corpus=corpus, condition=fam, metric=f"auc_{metric}")
            if not select(rows, model=main).empty:
                cells.append((corpus, fam, f"auc_{metric}", rows))
    return main, baselines, cells, regime


def _cell_title(ctx: ReportContext, corpus: str, condition: str) -> str:
    title = CONDITION_TITLES.get(condition) or f"{_family_text(condition).capitalize()}, AUC"
    return f"{title}, {ctx.run.corpus(corpus).label}" if len(ctx.run.corpora) > 1 else title


def _prob_cells(res: stats.BayesComparison | None) -> list[Cell]:
    if res is None:
        return [Cell() for _ in range(3)]
    return [Cell(f"{p:.3f}", p, stats={"mean": p, "n": res.n}) for p in (res.p_better, res.p_rope, res.p_worse)]


@artifact("bayes", kind="table", needs="optimized / clipping / robustness protocols",
          name="Table B (Bayesian comparison with a ROPE)", per_proposed=True)
def bayes_table(ctx: ReportContext) -> Table:
    """P(proposed better), P(practically equivalent), P(baseline better) per cell and across cells."""
    rope = ctx.config.rope
    main, baselines, cells, regime = _bayes_cells(ctx)
    sections, notes, untested, ntrials = [], [], {}, {}
    means: dict[str, list[tuple[float, float]]] = {b: [] for b in baselines}
    for corpus, condition, metric, rows in cells:
        title = _cell_title(ctx, corpus, condition)
        out = []
        for base in baselines:
            a, b, why = _paired(select(rows, model=main), select(rows, model=base))
            if select(rows, model=base).empty:
                continue
            res = None
            if why:
                untested.setdefault(why, []).append(f"{title}: {ctx.table_label(base)}")
            else:
                res = stats.correlated_t(a, b, rope)
                ntrials[title] = len(a)
                means[base].append((float(a.mean()), float(b.mean())))
                if np.ptp(a - b) == 0:
                    untested.setdefault("constant differences (the posterior is a point: probabilities 0 or 1)",
                                        []).append(f"{title}: {ctx.table_label(base)}")
            out.append(Row(ctx.table_label(base), _prob_cells(res), key={"model": base, "condition": condition}))
        if out:
            sections.append(Section(title, out))
    if not sections:
        raise Skip(f"no cell holds both {main} and a baseline")
    signed = []
    try:
        for base, pairs in means.items():
            if len(pairs) >= 2:
                res = stats.signed_rank([p[0] for p in pairs], [p[1] for p in pairs], rope)
                signed.append(Row(ctx.table_label(base), _prob_cells(res), key={"model": base, "condition": "all"}))
        if signed:
            sections.append(Section("All cells above (Bayesian signed-rank test over the cell means)", signed))
    except MissingExtra:
        notes.append(f"The Bayesian signed-rank test across cells needs the optional extra avbench[{EXTRA}].")
    notes += [f"No comparison in {len(c)} cell(s) ({'; '.join(c)}): {why}." for why, c in untested.items()]
    name = ctx.label(main, short=True)
    caption = (f"Bayesian comparison of {name} with each audiovisual baseline ({style.regime_phrase(regime)}, "
               f"default variant, "
               f"{style.metric_label(ctx.metric)}; AUC rows: the area under the score-versus-level curve of the "
               f"family). Columns: posterior probability that {name} is better by more than the region of practical "
               f"equivalence (ROPE = ±{rope:g}), that the two are equivalent within it, and that the baseline is "
               f"better by more than it. Per cell: posterior of the mean difference over "
               f"{trials_phrase(ntrials)} paired trials, Student t with n − 1 degrees of freedom, location the mean "
               f"difference and scale sd/√n (Benavoli et al. 2017's correlated t-test with correlation 0: each trial "
               f"is its own split)."
               + (f" Last section: Bayesian signed-rank test over the cells' mean scores (baycomp, "
                  f"{stats.bayes.SIGNED_RANK_SAMPLES} Monte Carlo samples, seed {stats.bayes.SIGNED_RANK_SEED}): the "
                  f"probability that each region is the most probable one." if signed else "")
               + (f" {len(notes)} note(s) below the table." if notes else "")
               + model_key_sentence([main] + baselines) + ctx.synthetic_note)
    return Table("bayes", "Table B", "Bayesian comparison with a ROPE", caption, "Baseline", [],
                 [f"P({name} better)", "P(equivalent)", "P(baseline better)"], sections, best=None, notes=notes)


@artifact("fig-posterior", kind="figure", needs="optimized", name="Fig. B (posterior of the main comparison)",
          per_proposed=True)
def posterior_figure(ctx: ReportContext) -> FigureResult:
    """Posterior densities of the full-input difference between the proposed model and each baseline, ROPE shaded."""
    rope = ctx.config.rope
    main, baselines, cells, regime = _bayes_cells(ctx)
    full = [(corpus, rows) for corpus, condition, _, rows in cells if condition == "full"]
    if not full:
        raise Skip(f"needs full-input {ctx.metric} scores of {main}")
    fig = style.new_figure(style.WIDTH_DOUBLE if len(full) > 1 else style.WIDTH_SINGLE + 0.6, 2.4)
    axes = fig.subplots(1, len(full), squeeze=False).ravel()
    drawn, ntrials = set(), {}
    for i, (ax, (corpus, rows)) in enumerate(zip(axes, full)):
        posts = []
        for base in baselines:
            a, b, why = _paired(select(rows, model=main), select(rows, model=base))
            if why or select(rows, model=base).empty:
                continue
            ntrials[base] = len(a)
            posts.append((base, stats.t_posterior(a, b), float((a - b).mean())))
        if not posts:
            ax.set_axis_off()
            continue
        # the central 98% of each posterior (with 3 trials the t has 2 df and no finite variance to scale by)
        ends = [x for _, p, m in posts for x in ((p.ppf(0.01), p.ppf(0.99)) if p is not None else (m, m))]
        lo, hi = min(min(ends), -2 * rope), max(max(ends), 2 * rope)
        lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
        xs = np.linspace(lo, hi, 400)
        ax.axvspan(-rope, rope, color=style.OKABE_ITO["grey"], alpha=0.25, linewidth=0)
        ax.axvline(0, color="black", linewidth=0.6)
        for base, post, mean in posts:
            color = model_color(base, [main] + baselines)
            if post is None:
                ax.axvline(mean, color=color, linestyle="--")
            else:
                ax.plot(xs, post.pdf(xs), color=color, label=ctx.table_label(base))
            drawn.add(base)
        ax.set_xlabel(f"{ctx.label(main, short=True)} − baseline ({style.metric_label(ctx.metric)})")
        ax.set_ylabel("posterior density")
        if len(full) > 1:
            ax.set_title(f"({chr(ord('a') + i)}) {ctx.run.corpus(corpus).label}")
    handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
    labels = [lab for ax in axes for lab in ax.get_legend_handles_labels()[1]]
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside upper center", ncols=min(4, len(unique)), fontsize=7)
    caption = _sentences(
        f"Posterior of the mean difference in {style.metric_label(ctx.metric)} between {ctx.label(main, short=True)} "
        f"and each baseline with full audiovisual input ({style.regime_phrase(regime)}), over "
        f"{trials_phrase(ntrials)} paired trials: "
        f"Student t, n − 1 degrees of freedom, location the mean difference, scale sd/√n (correlated t-test with "
        f"correlation 0, Benavoli et al. 2017)",
        f"the grey band is the region of practical equivalence (±{rope:g}); mass right of it favours "
        f"{ctx.label(main, short=True)}, left of it the baseline; a dashed line marks a baseline whose differences "
        f"are all the same (a point posterior)")
    return FigureResult("fig_posterior", "Fig. B", "Posterior of the main comparison",
                        caption + model_key_sentence([main] + sorted(drawn)) + _synthetic(ctx, fig), fig)


# ---------------------------------------------------------------------------- calibration
CALIBRATION_METRICS = ("ece", "brier", "nll")


@artifact("fig-ece", kind="figure", needs="masking (with calibration metrics)",
          name="Fig. C (calibration under masking: ECE)")
def ece_figure(ctx: ReportContext) -> FigureResult:
    """Expected calibration error against the masking level, one curve per audiovisual model, a panel per modality."""
    t = audiovisual(ctx.select(variant="default", metric="ece"))
    masked = t[t["condition"].astype(str).str.startswith("mask_")]
    # a level's score is the same under every level set it belongs to (RunData.table keeps one row per set)
    masked = masked.drop_duplicates(["corpus", "model", "variant", "regime", "condition", "level", "seed"])
    if masked.empty:
        raise Skip("no calibration rows (metric ece) under masking in results.csv (evaluation records of version 2 "
                   "have them; rerunning an older run's command rescores it from its kept weights)")
    regime = ctx.regime(masked)
    masked = select(masked, regime=regime)
    conditions = sorted(masked["condition"].astype(str).unique())
    models = audiovisual_models(masked)
    fig = style.new_figure(style.WIDTH_DOUBLE if len(conditions) > 1 else style.WIDTH_SINGLE + 0.6, 2.4)
    axes = fig.subplots(1, len(conditions), squeeze=False).ravel()
    for i, (ax, condition) in enumerate(zip(axes, conditions)):
        here = select(masked, condition=condition)
        for m in models:
            rows = select(here, model=m)
            if rows.empty:
                continue
            summary = rows.groupby("level")["value"].apply(lambda v: pd.Series(stats.summarize(v))).unstack()
            x = summary.index.to_numpy(dtype=float)
            ci = summary["ci95"].fillna(0).to_numpy(float)
            mean = summary["mean"].to_numpy(float)  # an ECE is never negative: the interval is cut at 0
            ax.errorbar(x, mean, yerr=[np.minimum(ci, mean), ci], color=model_color(m, models),
                        marker="o", markersize=3, capsize=1.5, label=ctx.table_label(m))
        ax.set_xlabel(f"fraction of {condition.removeprefix('mask_')} frames kept")
        ax.set_ylabel("ECE (15 equal-mass bins)")
        if len(conditions) > 1:
            ax.set_title(f"({chr(ord('a') + i)}) {family_label(condition)}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(4, len(labels)), fontsize=7)
    caption = _sentences(
        f"Expected calibration error (15 equal-mass bins of confidence) of the audiovisual models against the masking "
        f"level ({style.regime_phrase(regime)}), mean over {masked['seed'].nunique()} trials with 95% t-intervals "
        f"(cut at 0)",
        "a model whose accuracy holds up while its ECE grows becomes over-confident as a modality degrades")
    return FigureResult("fig_ece_masking", "Fig. C", "Calibration under masking",
                        caption + model_key_sentence(models) + _synthetic(ctx, fig), fig)


@artifact("calibration", kind="table", needs="clipping (with calibration metrics)",
          name="Table C (calibration: ECE, Brier, NLL)")
def calibration_table(ctx: ReportContext) -> Table:
    """ECE, Brier score and NLL of each audiovisual model with full input and with one modality clipped."""
    t = audiovisual(ctx.select(variant="default", metric=list(CALIBRATION_METRICS), condition=list(CELL_CONDITIONS),
                               level=None))
    if t.empty:
        raise Skip("no calibration rows (metrics ece, brier, nll) with full or clipped input in results.csv "
                   "(evaluation records of version 2 have them; rerunning an older run's command rescores it from "
                   "its kept weights)")
    regime = ctx.regime(t)
    t = select(t, regime=regime)
    models = audiovisual_models(t)
    present = [c for c in CELL_CONDITIONS if not select(t, condition=c).empty]
    sections, counts = [], {}
    for condition in present:
        rows = []
        for m in models:
            cells = []
            for metric in CALIBRATION_METRICS:
                s = stats.summarize(select(t, model=m, condition=condition, metric=metric)["value"])
                if s["n"]:
                    counts[ctx.table_label(m)] = max(counts.get(ctx.table_label(m), 0), s["n"])
                cells.append(Cell("–" if not s["n"] else f"{s['mean']:.3f}", s["mean"] if s["n"] else None, stats=s))
            rows.append(Row(ctx.table_label(m), cells, key={"model": m, "condition": condition}))
        sections.append(Section(CONDITION_TITLES[condition], rows))
    caption = (f"Calibration of the audiovisual models ({style.regime_phrase(regime)}): expected calibration "
               f"error over 15 "
               f"equal-mass bins of confidence, multiclass Brier score and negative log-likelihood of the true class "
               f"(lower is better for all three), mean over {trials_phrase(counts)} trials. Bold: lowest of each "
               f"column and section.{model_key_sentence(models)}{ctx.synthetic_note}")
    return Table("calibration", "Table C", "Calibration", caption, "Architecture", [], ["ECE", "Brier", "NLL"],
                 sections, best="min")


#: Colour and marker of each condition in the reliability diagram (the scenario colours of Fig. 4).
_RELIABILITY_STYLE = {"full": (style.SCENARIO_COLORS["AV"], "o"), "clip_audio": (style.SCENARIO_COLORS["V"], "s"),
                      "clip_visual": (style.SCENARIO_COLORS["A"], "^")}


@artifact("fig-reliability", kind="figure", needs="clipping (with class probabilities kept)",
          name="Fig. C2 (reliability: full input vs one modality)", per_proposed=True)
def reliability_figure(ctx: ReportContext) -> FigureResult:
    """Reliability diagram of the proposed model with full input, visual only and acoustic only: accuracy
    against confidence over 15 equal-mass bins, the clips of every trial pooled."""
    main = ctx.tested("the reliability diagram shows the proposed model")
    conf = ctx.run.confidences
    rows = conf[(conf["model"] == main) & (conf["variant"] == "default")]
    if rows.empty:
        raise Skip(f"no per-clip class probabilities of {main} with full or clipped input: evaluations keep them "
                   f"from evaluation records of version 2 on (rerunning an older run's command rescores it from its "
                   f"kept weights), and a report rebuilt from a data/ folder without confidences.csv has none")
    regime = ctx.regime(rows)  # as Table C and Fig. C choose it
    rows = rows[rows["regime"] == regime]
    corpora = list(dict.fromkeys(rows["corpus"]))
    fig = style.new_figure(style.WIDTH_DOUBLE if len(corpora) > 1 else style.WIDTH_SINGLE + 0.6, 3.4)
    axes = fig.subplots(1, len(corpora), squeeze=False).ravel()
    counts = {}
    for i, (ax, corpus) in enumerate(zip(axes, corpora)):
        ax.plot([0, 1], [0, 1], color=style.OKABE_ITO["grey"], linewidth=0.8, linestyle=":")
        for condition in CELL_CONDITIONS:
            clips = rows[(rows["corpus"] == corpus) & (rows["condition"] == condition)]
            if clips.empty:
                continue
            trials, n = counts.get(condition, (set(), 0))
            counts[condition] = (trials | set(clips["seed"]), n + len(clips))
            points = stats.reliability(clips["confidence"], clips["correct"])
            ece = stats.calibration_gap(points)
            color, marker = _RELIABILITY_STYLE[condition]
            ax.plot([c for c, _, _ in points], [a for _, a, _ in points], color=color, marker=marker, markersize=3,
                    label=f"{CONDITION_TITLES[condition]} (ECE {ece:.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("confidence (top class probability)")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)  # below: never on a point
        if len(corpora) > 1:
            ax.set_title(f"({chr(ord('a') + i)}) {ctx.run.corpus(corpus).label}")
    trials = sorted({len(t) for t, _ in counts.values()})
    clips_phrase = ", ".join(f"{CONDITION_TITLES[c].split(' (')[0].lower()} {n}" for c, (_, n) in counts.items())
    caption = _sentences(
        f"Reliability of {ctx.label(main, short=True)} ({style.regime_phrase(regime)}, default variant) with "
        f"full audiovisual "
        f"input and with one modality clipped: accuracy against mean confidence in 15 equal-mass bins of the top "
        f"class probability, the test clips of {' or '.join(map(str, trials))} trials pooled"
        + (" in each panel (clips of all panels: " if len(corpora) > 1 else " (clips: ") + f"{clips_phrase})",
        "points below the dotted diagonal are over-confident bins; the ECE in the legend is computed on the pooled "
        "clips, so it can differ from Table C's mean of the per-trial ECEs")
    return FigureResult("fig_reliability", "Fig. C2", "Reliability with full input and one modality",
                        caption + model_key_sentence([main]) + _synthetic(ctx, fig), fig)


# ---------------------------------------------------------------------------- power
@artifact("fig-power", kind="figure", needs="any protocol whose tables test the proposed model (stats.csv)",
          name="Fig. P (detectable difference against trials)")
def power_figure(ctx: ReportContext) -> FigureResult:
    """The smallest difference each table's typical paired test detects at power 0.8, against the number of
    trials: where a curve meets the wanted effect is the number of seeds a run needs (``avbench power``)."""
    tests = ctx.tests
    if tests is None or tests.empty:
        raise Skip("no paired test behind the tables' '*' (stats.csv) to plan from")
    sd = tests["sd_diff"].astype(float)
    ok = tests[np.isfinite(sd) & (sd > 0)]
    if ok.empty:
        raise Skip("no paired test with a spread of paired differences (constant or missing differences)")
    effect, alpha, n_run = ctx.config.effect, ctx.config.alpha, stats.power_summary(tests)["n"]
    need = ok["trials_needed"].astype(float)
    top = int(min(1000, max(100, 1.5 * np.nanmax(np.where(np.isfinite(need), need, 0)))))
    ns = np.unique(np.concatenate([np.arange(2, 101), np.geomspace(100, top, 30).round()]).astype(int))
    ns = ns[ns <= top]
    standardized = {}  # per alternative: the detectable difference in units of sd, which depends on n alone
    fig = style.new_figure(style.WIDTH_SINGLE + 0.6, 2.7)
    ax = fig.add_subplot()
    colors = style.RC["axes.prop_cycle"].by_key()["color"]
    highest = effect
    for i, (table, rows) in enumerate(ok.groupby("table", sort=False)):
        s = float(rows["sd_diff"].astype(float).median())
        alternative = str(rows["alternative"].mode().iloc[0])
        if alternative not in standardized:
            standardized[alternative] = np.array([stats.minimum_detectable_difference(1.0, int(n), alpha,
                                                                                      alternative=alternative)
                                                  for n in ns])
        mdd = s * standardized[alternative]
        highest = max(highest, float(mdd[ns >= 3][0]))
        ax.plot(ns, mdd, color=colors[i % len(colors)], label=f"{table} (median sd {s:.3f}, {len(rows)} tests)")
    ax.axhline(effect, color="black", linestyle="--", linewidth=0.8)
    ax.axvline(n_run, color=style.OKABE_ITO["grey"], linestyle=":", linewidth=0.9)
    ax.set_xscale("log")
    ax.set_xticks([t for t in (2, 3, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= top])
    ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlim(2, top)
    ax.set_ylim(0, highest * 1.05)
    ax.set_xlabel("paired trials (seeds)")
    ax.set_ylabel("minimum detectable difference")
    fig.legend(loc="outside upper center", ncols=2, fontsize=6)
    caption = _sentences(
        f"Smallest mean difference the paired test of each table (one-tailed, as its '*') detects with power "
        f"{stats.power.POWER:g} at α = {alpha:g} per comparison (unadjusted), against the number of paired trials, "
        f"for the median standard deviation of the paired differences of the table's tests behind its '*' "
        f"(stats.csv; statsmodels' TTestPower)",
        f"dashed: the difference to detect (--effect {effect:g}); dotted: this run's {n_run} trials; where a curve "
        f"meets the dashed line is the number of trials the table's typical comparison needs (avbench power lists "
        f"them)")
    return FigureResult("fig_power", "Fig. P", "Detectable difference against trials", caption + _synthetic(ctx, fig),
                        fig)
