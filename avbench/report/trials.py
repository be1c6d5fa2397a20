"""``avbench power``: how many trials a large run needs, answered from a pilot run.

The comparisons are the report's own (every paired test behind a ``*``, as in ``stats.csv``), built in memory
by the report's table builders, so the plan speaks of exactly the tests the report will make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avbench import stats
from avbench.report.artifacts import ReportContext, Skip, StatsConfig, planned
from avbench.proposed import proposed_of_run
from avbench.report.rundata import load_run
from avbench.validation import ValidationError


@dataclass
class TrialPlan:
    """Every comparison with its power columns (:data:`avbench.stats.POWER_COLUMNS`), and the wanted effect."""

    comparisons: pd.DataFrame
    effect: float
    alpha: float

    def text(self) -> str:
        """What ``avbench power`` prints: the typical comparison, then one line per table."""
        c = self.comparisons
        ok = c[np.isfinite(c["mdd"].astype(float))]
        if ok.empty:
            return "no comparison has a spread of paired differences to plan from (constant or missing differences)"
        s = stats.power_summary(c)
        need = ok["trials_needed"].astype(float)
        lines = [f"{len(c)} paired comparison(s) (the tests behind the report's '*'); {s['n']} trials; sd of the paired "
                 f"differences: median {ok['sd_diff'].median():.4f} (range {ok['sd_diff'].min():.4f}-"
                 f"{ok['sd_diff'].max():.4f}).",
                 f"At {s['n']} trials (power {stats.power.POWER:g}, α = {self.alpha:g} per comparison, unadjusted, "
                 f"one-tailed as the test is): differences below {s['mdd']:.3f} (median) cannot be detected; "
                 f"{s['underpowered']:.0%} of the comparisons cannot detect {self.effect:g}.",
                 f"To detect {self.effect:g}: {_count(need.median())} trials for the median comparison, "
                 f"{_count(need.quantile(0.9))} for 90% of them, {_count(need.max())} for all.", "",
                 "per table: median minimum detectable difference, median trials needed for the effect"]
        for table, rows in ok.groupby("table", sort=False):
            lines.append(f"  {table}: {rows['mdd'].median():.3f}, {_count(rows['trials_needed'].astype(float).median())}"
                         f" trials ({len(rows)} comparisons)")
        return "\n".join(lines)


def _count(x: float) -> str:
    return "more than 100000" if math.isinf(x) else f"{math.ceil(x)}"


def plan_trials(run_dir: str | Path, *, effect: float = stats.DEFAULT_EFFECT, alpha: float = 0.05,
                test: str = "t", proposed=()) -> TrialPlan:
    """The report's paired comparisons of ``run_dir`` with their minimum detectable difference and trials needed.

    Raises:
        ValidationError: A bad option, or a run with no paired comparison at all.
    """
    effect = stats.check_effect(effect, "avbench power")
    run = load_run(run_dir)
    ctx = ReportContext(run, StatsConfig(correction="none", alpha=alpha, test=test, effect=effect),
                        proposed=proposed_of_run(run, list(proposed)))
    comps = []
    for art in planned(ctx):
        if art.kind != "table":
            continue
        try:
            table = art.build(ctx)
        except Skip:
            continue
        if len(getattr(table, "comparisons", ())):
            comps.append(table.comparisons)
    if not comps:
        raise ValidationError(f"{run_dir}: no paired comparison to plan from (the report tests the proposed model "
                              f"against baselines over paired trials; this run has none).")
    return TrialPlan(stats.add_power(pd.concat(comps, ignore_index=True), effect=effect), effect, alpha)
