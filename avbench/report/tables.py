"""Tables 1-5 of the paper (and a robustness summary), built from the tidy results table only.

Every number is the mean over trials (seeds) of the rows a cell selects; every ``*`` comes from
:func:`avbench.stats.compare` + :func:`avbench.stats.significance_mark`: the proposed model (or
configuration) against every other row of its section, one-tailed paired t-test over the shared
seeds, ``alpha`` and correction as configured.  A builder raises :class:`Skip` when the run lacks
what the table needs; the report lists those with the protocol that produces them.  Each is
registered with :func:`avbench.report.artifacts.artifact`.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from avbench import stats
from avbench.stats import summarize
from avbench.conditions import get_kind, kinds
from avbench.report.artifacts import REGIMES, TRAINING_REGIMES, ReportContext, Skip, artifact
from avbench.report.render import Cell, Row, Section, Table
from avbench.report.rundata import format_levels
from avbench.report.presentation import (model_key_sentence, model_label, model_sort_key, multimodal_models,
                                         presentation, unimodal_reference)
from avbench.report.style import REGIME_LABELS, metric_label, regime_phrase
from avbench.results import select, unit_facts
from avbench.validation import ValidationError

TABLE_METRICS = ("micro_f1", "macro_f1")
REGIME_SECTION = {"standard": "Standard Training Procedure", "optimized": "Optimized Training Procedure",
                  "pretrained": "Given Weights, not trained by avbench"}


# ---------------------------------------------------------------------------- helpers
def audiovisual_models(t: pd.DataFrame) -> list[str]:
    """The audiovisual models of ``t`` in table order (upscaled and unimodal models have artifacts of their own)."""
    return multimodal_models(t["model"].unique().tolist())


def audiovisual(t: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``t`` whose model is audiovisual."""
    return t[t["model"].isin(audiovisual_models(t))]


def fmt(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3f}"


def trials_phrase(counts: dict[str, int]) -> str:
    """The number of trials most rows have ('20')."""
    if not counts:
        return "0"
    values = list(counts.values())
    return str(max(set(values), key=lambda v: (values.count(v), v)))


def trials_note(counts: dict[str, int], what: str = "trials") -> str:
    """' Baseline 2 (MulT) has 18 trials.' for the rows that differ from the common count ('' if none)."""
    common = int(trials_phrase(counts))
    odd = [f"{k} has {v}" for k, v in counts.items() if v != common]
    return f" Rows with another number of {what}: {'; '.join(odd)}." if odd else ""


@dataclass
class Spec:
    """One table row: a label and the column filters selecting its scores (corpus and metric aside)."""

    label: str
    filt: dict[str, Any]
    proposed: bool = False
    table: pd.DataFrame | None = None   # rows to read (default: the deduplicated table)

    def rows(self, ctx: ReportContext, corpus: str, metric: str) -> pd.DataFrame:
        return ctx.select(self.table, corpus=corpus, metric=metric, **self.filt)


@dataclass
class Builder:
    """Accumulates the cells, tests and trial counts of one table."""

    ctx: ReportContext
    number: str
    comparisons: list[pd.DataFrame] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    few_trials: bool = False
    untested: dict[str, list[str]] = field(default_factory=dict)  # reason -> cells without a test

    def section(self, title: str | None, specs: list[Spec], corpora: list[str],
                metrics=TABLE_METRICS, tested=None) -> Section:
        """Means per (corpus, metric) for each spec, plus the mark on the proposed row (for the
        ``tested`` metrics; default all)."""
        proposed = next((s for s in specs if s.proposed), None)
        others = [s for s in specs if s is not proposed]
        marks = {(corpus, metric): self.test(title, corpus, metric, proposed, others)
                 for corpus, metric in itertools.product(corpora, tested or metrics)} if proposed else {}
        rows = []
        for spec in specs:
            cells = []
            for corpus, metric in itertools.product(corpora, metrics):
                s = summarize(spec.rows(self.ctx, corpus, metric)["value"])
                if s["n"]:
                    self.counts[spec.label] = max(self.counts.get(spec.label, 0), s["n"])
                text = fmt(s["mean"])
                cells.append(Cell(text=text, value=float(text) if s["n"] else None, stats=s,
                                  mark=marks.get((corpus, metric), "") if spec.proposed else ""))
            rows.append(Row(spec.label, cells, key={k: v for k, v in spec.filt.items() if k not in ("level", "levels")}))
        return Section(title, rows)

    def test(self, section: str | None, corpus: str, metric: str, proposed: Spec, others: list[Spec]) -> str:
        """Runs stats.compare for one cell and returns the mark ('' when not significant or untestable)."""
        arms = [(spec, spec.rows(self.ctx, corpus, metric)) for spec in [proposed] + others]
        arms = [(spec, rows) for spec, rows in arms if not rows.empty]
        if len(arms) < 2 or arms[0][0] is not proposed:
            return ""
        # the tests need one table holding both sides: stack the rows each spec selects, tagged by spec
        stacked = pd.concat([rows[["seed", "metric", "value"]].assign(arm=i) for i, (_, rows) in enumerate(arms)],
                            ignore_index=True)
        cell = f"{self.ctx.run.corpus(corpus).label}, {metric_label(metric)}{', ' + section if section else ''}"
        seeds = [set(rows["seed"]) for _, rows in arms]
        every = set().union(*seeds)
        if any(s != every for s in seeds):
            lacking = "; ".join(f"{spec.label} lacks trial(s) {sorted(every - s)}"
                                for (spec, _), s in zip(arms, seeds) if s != every)
            self.untested.setdefault(f"trials are not paired across rows ({lacking})", []).append(cell)
            return ""
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = stats.compare(stacked, metric, {"arm": 0},
                                    {spec.label: {"arm": i} for i, (spec, _) in enumerate(arms[1:], 1)},
                                    test=self.ctx.config.test, alpha=self.ctx.config.alpha,
                                    correction=self.ctx.config.correction, interval=self.ctx.config.interval)
            if any(issubclass(w.category, stats.TooFewTrialsWarning) for w in caught):
                self.few_trials = True
        except ValidationError as exc:
            self.untested.setdefault(str(exc), []).append(cell)
            return ""
        res.insert(0, "section", section or "")
        res.insert(0, "corpus", corpus)
        res.insert(0, "table", self.number)
        res["proposed"] = proposed.label
        self.comparisons.append(res)
        return stats.significance_mark(res)

    def stats_sentence(self) -> str:
        out = self.ctx.config.sentence(trials_phrase(self.counts))
        if self.few_trials:
            out += f"; with fewer than {stats.MIN_TRIALS} trials the tests rest on very little evidence"
        return out

    def finish(self, key: str, title: str, caption: str, stub: str, corpora: list[str], sections: list[Section],
               columns: tuple[str, ...] = tuple(metric_label(m) for m in TABLE_METRICS), **kw: Any) -> Table:
        """The table: ``columns`` under each corpus, the caption completed (uncommon trial counts, untested
        cells, the synthetic note), the tests and notes attached, the best values in bold."""
        notes = [f"No significance test in {len(cells)} cell(s) ({'; '.join(cells)}): {reason}."
                 for reason, cells in self.untested.items()]
        note = trials_note(self.counts)
        n_untested = sum(len(c) for c in self.untested.values())
        if n_untested:
            reasons = "; ".join(dict.fromkeys(r.split(" (")[0] for r in self.untested))
            note += f" No test (hence no *) in {n_untested} cell(s): {reasons}; details in the report's notes."
        groups = [(self.ctx.run.corpus(c).label, len(columns)) for c in corpora]
        table = Table(key, self.number, title, caption + note + self.ctx.synthetic_note, stub, groups,
                      list(columns) * len(corpora), sections, notes=notes, **kw)
        table.comparisons = pd.concat(self.comparisons, ignore_index=True) if self.comparisons else pd.DataFrame()
        table.mark_best()
        return table


def _corpora(t: pd.DataFrame) -> list[str]:
    return sorted(t["corpus"].unique().tolist())


# ---------------------------------------------------------------------------- Table 1
@artifact("table1", kind="table", needs="standard + optimized (or paper)",
          name="Table 1 (audiovisual baselines, standard and optimized training)", per_proposed=True)
def table1(ctx: ReportContext) -> Table:
    """Models x corpus, micro/macro F1, standard and optimized training (full AV test): the proposed model
    (first) against every other audiovisual model of the run, each a baseline."""
    t = ctx.select(condition="full", variant="default", metric=list(TABLE_METRICS))
    main = ctx.tested("Table 1 tests it against the audiovisual baselines")
    found = audiovisual_models(t)
    models = [main] + [m for m in found if m != main]
    if main not in found or len(models) < 2:
        raise Skip(f"needs full-AV scores of {main} and at least one other audiovisual model "
                   f"(found: {', '.join(found) or 'none'})")
    name = ctx.label(main, short=True)
    b = Builder(ctx, "Table 1")
    corpora = _corpora(t)
    sections = []
    regimes = ctx.regimes(t, model=main)
    for regime in regimes:
        specs = [Spec(ctx.table_label(m), {"model": m, "variant": "default", "regime": regime, "condition": "full",
                                           "level": None}, proposed=m == main)
                 for m in models if not select(t, regime=regime, model=m).empty]
        sections.append(b.section(REGIME_SECTION[regime], specs, corpora))
    missing = [r for r in TRAINING_REGIMES if r not in regimes]
    extra = (f" {' and '.join(REGIME_LABELS[r] for r in missing)} is not in this run (protocol "
             f"{' / '.join(missing)})." if missing else "")
    caption = (f"Comparison of {name} with the audiovisual baselines (full audiovisual test set): mean F1-scores "
               f"over {trials_phrase(b.counts)} trials. *: {name} is significantly better than every other "
               f"model of the section ({b.stats_sentence()}). Bold: best value of each column and section."
               f"{model_key_sentence(models)}{extra}")
    return b.finish("table1", "Comparison with the audiovisual baselines", caption, "Architecture", corpora, sections)


# ---------------------------------------------------------------------------- Table 2
@artifact("table2", kind="table", needs="clipping", name="Table 2 (missing modality: visual only / acoustic only)",
          per_proposed=True)
def table2(ctx: ReportContext) -> Table:
    """Visual-only (audio clipped) and acoustic-only (visual clipped) scores of every audiovisual model, the
    proposed first, with baseline 4."""
    t = audiovisual(ctx.select(condition=["clip_audio", "clip_visual"], variant="default", metric=list(TABLE_METRICS)))
    main = ctx.tested("Table 2 tests it with one modality clipped")
    if select(t, model=main).empty:
        raise Skip(f"needs {main} scored with one modality clipped (conditions clip_audio / clip_visual)")
    regime = ctx.regime(t, model=main)
    b = Builder(ctx, "Table 2")
    corpora = _corpora(t)
    sections, b4_regimes, missing_b4, shown = [], set(), [], set()
    for condition, kept, title in (("clip_audio", "visual", "Visual Features Only"),
                                   ("clip_visual", "audio", "Acoustic Features Only")):
        here = select(t, condition=condition, regime=regime)
        if select(here, model=main).empty:
            continue
        models = audiovisual_models(here)
        specs = [Spec(ctx.table_label(main), {"model": main, "variant": "default", "regime": regime,
                                              "condition": condition, "level": None}, proposed=True)]
        b4 = ctx.baseline4(kept, regime, metric=list(TABLE_METRICS))
        if b4:
            specs.append(Spec("Baseline 4", b4))
            b4_regimes.add(b4["regime"])
        else:
            missing_b4.append(unimodal_reference(kept))
        specs += [Spec(ctx.table_label(m), {"model": m, "variant": "default", "regime": regime,
                                            "condition": condition, "level": None}) for m in models if m != main]
        sections.append(b.section(title, specs, corpora))
        shown |= {sp.filt["model"] for sp in specs}
    b4_text = ""
    if b4_regimes:
        b4_text = (f" Baseline 4 is the unimodal model of the kept modality ({'/'.join(sorted(b4_regimes))} "
                   f"training), tested on its intact modality.")
    if missing_b4:
        b4_text += f" Baseline 4 ({', '.join(missing_b4)}) is not in this run (protocol clipping trains it)."
    caption = (f"Performance with a missing modality: audiovisual models ({regime_phrase(regime)}) "
               f"tested with only the visual features (audio clipped) or only the acoustic features (visual "
               f"clipped), against the unimodal baseline 4. Mean F1-scores over {trials_phrase(b.counts)} trials."
               f"{b4_text} *: {ctx.label(main, short=True)} is significantly better than every other model of the "
               f"section, baseline 4 included ({b.stats_sentence()}). Bold: best value of each column and section."
               f"{model_key_sentence(shown)}")
    return b.finish("table2", "Missing modality (clipping)", caption, "Architecture", corpora, sections)


# ---------------------------------------------------------------------------- ablations (Tables 3, 4)
@dataclass
class Ablation:
    """The rows of one variant-ablation protocol: (model, variant name, label, proposed)."""

    protocol: str
    regimes: list[str]
    rows: list[dict[str, Any]]
    table: pd.DataFrame   # the rows to read (the protocol's own, plus fallbacks)

    @property
    def names(self) -> str:
        """The ablated models as captions name them (``AuxFormer``)."""
        return ", ".join(dict.fromkeys(model_label(r["model"], short=True) for r in self.rows))


def ablation(ctx: ReportContext, key: str, preferred: str) -> Ablation:
    """Finds the protocol that varies model option ``key`` (``preferred`` if several do) and the rows it produced."""
    run = ctx.run
    names = run.find_protocols(key)
    if not names:
        raise Skip(f"no protocol of this run varies the model option {key!r}", preferred)
    name = preferred if preferred in names else names[0]
    definition = run.definition(name) or {}
    sub = select(run.raw, protocol=name, condition="full", metric=list(TABLE_METRICS))
    if sub.empty:
        raise Skip(f"protocol {name} is in the run but has no full-AV scores yet", name)
    models = [m for m in (definition.get("models") or sub["model"].unique().tolist()) if not select(sub, model=m).empty]
    rows, extra = [], []
    for model in sorted(models, key=model_sort_key):
        for v in definition.get("variants") or []:
            vname, config = str(v["name"]), dict(v.get("config") or {})
            here = select(sub, model=model, variant=vname)
            have = not here.empty
            # recorded with the rows when the run planned the unit; else decided as for rows recorded without it
            proposed = bool(here["is_default"].any()) if have else unit_facts(vname, model, definition)["is_default"]
            if not have and proposed:
                # the default model under another name: read it from any protocol's default unit
                fallback = select(run.table, model=model, variant="default", condition="full",
                                  metric=list(TABLE_METRICS)).assign(variant=vname)
                if not fallback.empty:
                    extra.append(fallback)
                    have = True
            if not have:
                continue
            text = option_text(model, key, config, vname)
            if len(models) > 1:
                text = f"{model_label(model, short=True)}: {text}"
            rows.append({"model": model, "variant": vname, "label": text, "proposed": proposed})
    if not rows:
        raise Skip(f"protocol {name} has no scored variants yet", name)
    table = pd.concat([sub] + extra, ignore_index=True) if extra else sub
    table = table.drop_duplicates(subset=["corpus", "model", "variant", "regime", "condition", "seed", "metric"])
    return Ablation(name, ctx.regimes(table), rows, table)


def option_text(model: str, key: str, config: dict[str, Any], name: str) -> str:
    """How a row names the variant ``name`` that sets ``model``'s option ``key`` in ``config``: as the model
    names the setting (``Presentation.option_labels``), the loss weights as a tuple, else the variant's name."""
    value = config.get(key)
    if key == "loss_weights":
        return f"({', '.join(f'{float(x):.2f}' for x in value)})" if isinstance(value, (list, tuple)) else name
    return presentation(model).option_labels.get(key, {}).get(value, f"{key} = {value}") if key in config else name


def _ablation_table(ctx: ReportContext, ab: Ablation, key: str, number: str, title: str, stub: str,
                    caption_head: str, stub_latex: str | None = None) -> Table:
    b = Builder(ctx, number)
    corpora = _corpora(ab.table)
    sections = []
    for regime in ab.regimes:
        specs = [Spec(r["label"], {"model": r["model"], "variant": r["variant"], "regime": regime,
                                   "condition": "full", "level": None}, proposed=r["proposed"], table=ab.table)
                 for r in ab.rows if not select(ab.table, model=r["model"], variant=r["variant"], regime=regime).empty]
        title_r = REGIME_SECTION[regime] if len(ab.regimes) > 1 else None
        sections.append(b.section(title_r, specs, corpora))
    regime_text = " and ".join(ab.regimes)
    has_proposed = any(r["proposed"] for r in ab.rows)
    mark = (" *: the paper's configuration is significantly better than every other row"
            f" ({b.stats_sentence()})." if has_proposed else f" ({b.stats_sentence()}; no row is the paper's "
                                                               f"configuration, so no * is tested.)")
    caption = (f"{caption_head} {ab.names}, {regime_text} training, full audiovisual test; mean F1-scores over "
               f"{trials_phrase(b.counts)} trials (protocol {ab.protocol}).{mark} Bold: best value of each column.")
    return b.finish(key, title, caption, stub, corpora, sections, stub_latex=stub_latex)


@artifact("table3", kind="table", needs="posenc", name="Table 3 (positional encoding)")
def table3(ctx: ReportContext) -> Table:
    """Positional encoding on/off (the paper lists 'No Pos. Encoding' first)."""
    ab = ablation(ctx, "pos_enc", "posenc")
    ab.rows.sort(key=lambda r: r["proposed"])  # the ablated row first
    return _ablation_table(ctx, ab, "table3", "Table 3", "Positional encoding", "Pos. Encoding Type",
                           "The role of the positional encoding:")


@artifact("table4", kind="table", needs="lambda-grid", name="Table 4 (loss-weight grid)")
def table4(ctx: ReportContext) -> Table:
    """The loss-weight grid (lambda_av, lambda_a, lambda_v) of Eq. 6."""
    ab = ablation(ctx, "loss_weights", "lambda-grid")
    return _ablation_table(ctx, ab, "table4", "Table 4", "Loss weights", "(λ_av, λ_a, λ_v)",
                           "F1-scores with different weights combining the three losses (Eq. 6):",
                           stub_latex=r"$(\lambda_{av}, \lambda_{a}, \lambda_{v})$")


# ---------------------------------------------------------------------------- Table 5
def _seconds(x: float) -> str:
    if not np.isfinite(x):
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


@artifact("table5", kind="table", needs="complexity", name="Table 5 (parameters and training time)")
def table5(ctx: ReportContext) -> Table:
    """Trainable parameters and training seconds per epoch (machine stated in the caption)."""
    run = ctx.run
    t = ctx.select(condition="train", variant="default")
    if select(t, metric="params").empty:
        raise Skip("needs the train rows (params, seconds_per_epoch) of the trained models")
    models = sorted(t["model"].unique().tolist(), key=model_sort_key)
    corpora = _corpora(t)
    rows, counts = [], {}
    for m in models:
        cells = []
        for corpus in corpora:
            here = select(t, model=m, corpus=corpus)
            p = select(here, metric="params")["value"].dropna()
            s = summarize(select(here, metric="seconds_per_epoch")["value"])
            if s["n"]:
                counts[ctx.table_label(m)] = max(counts.get(ctx.table_label(m), 0), s["n"])
            if p.empty:
                ptext = "–"
            else:
                lo, hi = int(p.min()), int(p.max())
                ptext = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
            cells += [Cell(ptext, None, latex=ptext.replace(",", "{,}").replace("–", "--"),
                           stats={**summarize(p), "ci95": math.nan}),
                      Cell(_seconds(s["mean"]) + (" sec/epoch" if s["n"] else ""), None, stats=s)]
        if any(c.text != "–" for c in cells):
            rows.append(Row(ctx.table_label(m), cells, key={"model": m}))
    where = "; ".join(m["machine"] for m in run.provenance.get("machines", [])) or "an unrecorded machine"
    profiles = ", ".join(run.profiles) or "unknown"
    scaled = ("" if run.profiles == ["paper"] else
              f" Profile {profiles}: models are scaled down, so the counts are not the paper's (avbench models "
              f"list --profile paper gives the paper-scale counts).")
    caption = (f"Number of trainable parameters and training time per epoch (training loop only; mean over the "
               f"{trials_phrase(counts)} trained units of each model), measured on {where}."
               f"{trials_note(counts, 'units')}"
               f"{scaled} Counts depend on the number of classes of the corpus (the paper's are for four)."
               f"{model_key_sentence(models)}{ctx.synthetic_note}")
    groups = [(run.corpus(c).label, 2) for c in corpora] if len(corpora) > 1 else []
    return Table("table5", "Table 5", "Parameters and training time", caption, "", groups,
                 ["# Params.", "Train. Time"] * len(corpora), [Section(None, rows)], best=None, wide=len(corpora) > 1)


# ---------------------------------------------------------------------------- robustness summary
def family_kind(condition: str) -> tuple[str, str]:
    """(kind, modality) of a condition family (``mask_audio``): the modality is the name's last part, so a
    kind whose own name holds ``_`` (a plugin's ``pink_noise``) stays whole."""
    kind, _, modality = str(condition).rpartition("_")
    return (kind, modality) if kind else (modality, "")


def family_rank(condition: str) -> int:
    """Where a condition family's kind is registered (avbench.conditions): the order of table sections,
    caption entries and blocks; a kind not installed here last."""
    names = [k.name for k in kinds()]
    kind = family_kind(condition)[0]
    return names.index(kind) if kind in names else len(names)


def _kind(name: str):
    try:
        return get_kind(name)
    except Exception:  # a plugin kind not installed where the report is built
        return None


def family_label(condition: str) -> str:
    """``audio masked``: a condition family as its kind labels it (avbench.conditions)."""
    kind, modality = family_kind(condition)
    label = (getattr(_kind(kind), "label", "") or kind)
    return f"{modality} {label}".strip()


def levels_sentence(t: pd.DataFrame) -> str:
    """' Levels: audio masked, visual masked: 0.1 to 0.9 in steps of 0.1 (fraction of frames kept); ....' for
    the (family, level set) pairs of ``t`` (its ``levels`` column), families sharing a set named together."""
    by_set: dict[tuple[str, str], list[str]] = {}
    pairs = sorted({(str(c), str(lv)) for c, lv in zip(t["condition"], t["levels"]) if lv},
                   key=lambda p: (family_rank(p[0]), p))
    for cond, levels in pairs:
        unit = getattr(_kind(family_kind(cond)[0]), "level_unit", "")
        by_set.setdefault((levels, unit), []).append(family_label(cond))
    parts = [f"{', '.join(fams)}: {format_levels(levels, unit)}" for (levels, unit), fams in by_set.items()]
    return f" Levels: {'; '.join(parts)}." if parts else ""


@artifact("robustness", kind="table", needs="masking / occlusion / misalignment / noise",
          name="Table R1 (robustness summary, AUC)", per_proposed=True)
def robustness_table(ctx: ReportContext) -> Table:
    """Area under each score-vs-level curve (avbench.robustness), absolute and relative to full AV.

    One section per condition family and level set (and training variant), models as rows, corpus x (AUC,
    rel.) as columns: narrow enough for one column however many families a run has.  AUCs over different
    level sets are different quantities: they never share a section, and the caption names each set.
    """
    metric = ctx.metric
    auc, rel = f"auc_{metric}", f"relative_auc_{metric}"
    t = audiovisual(ctx.select(metric=[auc, rel]))
    if t.empty:
        raise Skip(f"no robustness summary rows ({auc}); protocols with `summary: true` add them")
    proposed = ctx.main  # None: the AUCs are shown, nothing is tested
    families = sorted({(str(c), str(lv)) for c, lv in zip(t["condition"], t["levels"])},
                      key=lambda f: (family_rank(f[0]), f[0],
                                     [float(v) for v in f[1].split(",") if v]))
    several = {c for c, _ in families if sum(1 for c2, _ in families if c2 == c) > 1}
    b = Builder(ctx, "Table R1")
    corpora = _corpora(t)
    groups = sorted({(r, v) for r, v in zip(t["regime"], t["variant"])},
                    key=lambda x: (x[1] != "default", x[1], x[0] != "optimized"))
    sections, shown = [], set()
    for regime, variant in groups:
        for fam, levels in families:
            here = select(t, regime=regime, variant=variant, condition=fam, levels=levels)
            if here.empty:
                continue
            found = sorted(here["model"].unique().tolist(), key=model_sort_key)
            models = [proposed] * (proposed in found) + [m for m in found if m != proposed]
            shown |= set(models)
            title = family_label(fam).capitalize()
            if fam in several:
                title += f" (levels {format_levels(levels)})"
            if variant != "default":
                title += f", {ctx.variant_label(t, variant, short=True)}"
            if len({r for r, _ in groups}) > 1:
                title += f", {regime_phrase(regime)}"
            specs = [Spec(ctx.table_label(m), {"model": m, "variant": variant, "regime": regime, "condition": fam,
                                               "level": None, "levels": levels}, proposed=m == proposed)
                     for m in models]
            # '*' only on the AUC columns: the relative AUC divides by each model's own clean score
            sections.append(b.section(title, specs, corpora, metrics=(auc, rel), tested=(auc,)))
    shifted = (" Shift-trained: trained with one modality shifted at random by up to the given amount (protocol "
               "misalignment-trained)." if any(v != "default" for _, v in groups) else "")
    caption = (f"Robustness summary ({metric_label(metric)}): AUC is the mean height of the score-versus-level "
               f"curve of each condition family (trapezoid rule over its levels: fraction of frames kept for "
               f"masking, removed for occlusion, shift in ms, SNR in dB), rel. the same divided by the model's full "
               f"audiovisual score (1.0 = no loss). Mean over {trials_phrase(b.counts)} trials. "
               + (f"*: {ctx.label(proposed, short=True)}'s AUC is significantly higher than every other model's "
                  f"({b.stats_sentence()}). " if proposed else "No proposed model in the run: no test. ")
               + f"Bold: best value of each column and section.{levels_sentence(t)}{shifted}"
                 f"{model_key_sentence(shown)}")
    return b.finish("robustness", "Robustness summary", caption, "Architecture", corpora, sections,
                    columns=("AUC", "rel."))
