"""The training-curves figure: train and dev loss, and the dev score, per epoch of every trial.

It reads the histories the units recorded (:attr:`avbench.report.rundata.RunData.histories`), so a
report rebuilt from its ``data/`` folder draws the same curves.  Each model's default
configuration is drawn (the ablation variants have figures of their own), a row per model (and
corpus), a column per regime and quantity: the mean over trials as a thick line, each trial as a
thin one, which shows both the typical course and the spread between seeds.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from avbench.report import style
from avbench.report.artifacts import REGIMES, ReportContext, Skip, artifact
from avbench.report.figures import FigureResult, _sentences, _synthetic
from avbench.report.presentation import model_sort_key

#: The history column holding each figure metric on the dev set (micro-F1 is the accuracy of
#: single-label predictions, so the accuracy needs no column of its own).
DEV_SCORE = {"micro_f1": "dev_micro_f1", "macro_f1": "dev_macro_f1", "accuracy": "dev_micro_f1"}
#: Colour of each curve.
COLORS = {"train_loss": style.OKABE_ITO["blue"], "dev_loss": style.OKABE_ITO["vermillion"],
          "dev_score": style.OKABE_ITO["bluish_green"]}
MEAN_WIDTH, TRIAL_WIDTH, TRIAL_ALPHA = 1.8, 0.6, 0.45


def _draw(ax, h: pd.DataFrame, column: str, color: str) -> None:
    """Each trial of ``h`` as a thin line and their mean per epoch as a thick one."""
    h = h.dropna(subset=[column])
    for _, trial in h.groupby("seed") if h["seed"].nunique() > 1 else ():
        ax.plot(trial["epoch"], trial[column], color=color, linewidth=TRIAL_WIDTH, alpha=TRIAL_ALPHA)
    mean = h.groupby("epoch")[column].mean()
    ax.plot(mean.index, mean.to_numpy(), color=color, linewidth=MEAN_WIDTH)


@artifact("training-curves", kind="figure", needs="any protocol that trains (the units' train.json)",
          name="Fig. T1 (training curves)")
def training_curves(ctx: ReportContext) -> FigureResult:
    """Train and dev loss and the dev score per epoch, per model and regime (default configurations)."""
    h = ctx.run.histories
    if h.empty:
        raise Skip("no training histories: the run's unit records (train.json) are not here, and its data/ "
                   "folder has no histories.csv")
    h = h[h["variant"] == "default"]
    if h.empty:
        raise Skip("no training histories of a model's default configuration")
    score, metric = DEV_SCORE[ctx.metric], style.metric_label(ctx.metric)
    has_score = bool(h[score].notna().any())
    regimes = [r for r in REGIMES if (h["regime"] == r).any()]
    corpora = sorted(h["corpus"].unique())
    rows = [(c, m) for c in corpora for m in sorted(h.loc[h["corpus"] == c, "model"].unique(), key=model_sort_key)]
    columns = [(r, q) for r in regimes for q in (("loss", "score") if has_score else ("loss",))]
    fig = style.new_figure(style.WIDTH_DOUBLE if len(columns) > 1 else style.WIDTH_SINGLE + 0.5,
                           1.25 * len(rows) + 0.8)
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for i, (corpus, model) in enumerate(rows):
        for j, (regime, quantity) in enumerate(columns):
            ax = axes[i, j]
            here = h[(h["corpus"] == corpus) & (h["model"] == model) & (h["regime"] == regime)]
            if i == 0:
                ax.set_title(f"{style.REGIME_LABELS[regime]}: {'loss' if quantity == 'loss' else 'dev ' + metric}",
                             fontsize="small")
            if j == 0:  # the row's name
                name = ctx.label(model) + (f"\n{ctx.run.corpus(corpus).label}" if len(corpora) > 1 else "")
                ax.set_ylabel(name, fontsize="small")
            if i == len(rows) - 1:
                ax.set_xlabel("Epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if here.empty:
                ax.text(0.5, 0.5, f"not trained with the\n{regime} procedure", transform=ax.transAxes,
                        ha="center", va="center", fontsize="small", color=style.OKABE_ITO["grey"])
                ax.set_xticks([])
                ax.set_yticks([])
            elif quantity == "loss":
                _draw(ax, here, "train_loss", COLORS["train_loss"])
                _draw(ax, here, "dev_loss", COLORS["dev_loss"])
            else:
                _draw(ax, here, score, COLORS["dev_score"])
    handles = [Line2D([], [], color=COLORS["train_loss"], label="train loss"),
               Line2D([], [], color=COLORS["dev_loss"], label="dev loss")]
    handles += [Line2D([], [], color=COLORS["dev_score"], label=f"dev {metric}")] if has_score else []
    if h["seed"].nunique() > 1:
        handles += [Line2D([], [], color="black", linewidth=MEAN_WIDTH, label="mean over trials"),
                    Line2D([], [], color="black", linewidth=TRIAL_WIDTH, alpha=TRIAL_ALPHA, label="one trial")]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    return FigureResult("figT1_training_curves", "Fig. T1", "Training curves",
                        _caption(ctx, h, regimes, score, has_score) + _synthetic(ctx, fig), fig)


def _caption(ctx: ReportContext, h: pd.DataFrame, regimes: list[str], score: str, has_score: bool) -> str:
    metric = style.metric_label(ctx.metric)
    units = h.groupby(["corpus", "model", "regime"])
    trials = sorted(set(units["seed"].nunique()))
    ntext = str(trials[0]) if len(trials) == 1 else f"{trials[0]} to {trials[-1]}"
    lengths = h.groupby(["corpus", "model", "regime", "seed"])["epoch"].max()
    stopped = lengths.groupby(level=[0, 1, 2]).nunique().gt(1).any()
    missing = has_score and h[score].isna().any()
    return _sentences(
        f"Training curves of each model (a row each) in its default configuration, {' and '.join(regimes)} "
        f"training",
        "per epoch: the training loss (the weighted loss the optimiser minimises) and the development loss (the "
        "cross-entropy of the scored prediction, which selects the epoch)"
        + (f", and the development {metric}" if has_score else ""),
        f"thick lines: the mean over {ntext} trials; thin lines: each trial" if trials[-1] > 1
        else "one trial per model and regime",
        "trials that stopped early leave the mean of the later epochs to those that went on" if stopped else "",
        f"the development {metric} is not recorded by the avbench version that trained "
        f"{'some of these units' if missing else 'this run'}" if missing or not has_score else "")

