"""The report's statistics across cells: ranking (CD diagram, mean ranks), Bayesian table and figure, power in
stats.csv, calibration figures; and what happens without the optional extra avbench[stats]."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as sst

from avbench import stats
from avbench.cli import main
from avbench.report import ReportContext, Skip, StatsConfig, build_report, load_run
from avbench.report import significance as sig
from avbench.report import style

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "reports" / "example" / "data"
AV = ["auxformer", "baseline1", "mult", "xmodal"]


@pytest.fixture(scope="module")
def ctx():
    return ReportContext(load_run(EXAMPLE))


def copy_run(tmp_path: Path, change) -> Path:
    out = tmp_path / "run"
    shutil.copytree(EXAMPLE, out)
    t = pd.read_csv(out / "results.csv")
    change(t).to_csv(out / "results.csv", index=False)
    return out


def test_ranking_blocks_and_mean_ranks(ctx):
    pytest.importorskip("scikit_posthocs")
    table = sig.ranking_table(ctx)
    # the blocks computed here from results.csv: full and clipped conditions (micro-F1), each family's AUC
    t = pd.read_csv(EXAMPLE / "results.csv").drop_duplicates(
        subset=["corpus", "model", "variant", "regime", "condition", "level", "seed", "metric"])
    t = t[(t["variant"] == "default") & (t["regime"] == "optimized") & t["model"].isin(AV)]
    cells = t[t["condition"].isin(["full", "clip_audio", "clip_visual"]) & (t["metric"] == "micro_f1")]
    auc = t[t["metric"] == "auc_micro_f1"]
    blocks = pd.concat([cells, auc]).groupby(["condition", "model"])["value"].mean().unstack()
    assert blocks.shape == (11, 4)
    expected = pd.Series(sst.rankdata(-blocks.to_numpy(), axis=1).mean(axis=0), index=blocks.columns)
    shown = {row.key["model"]: float(row.cells[0].text) for row in table.sections[0].rows}
    assert shown == pytest.approx(expected.round(2).to_dict(), abs=0.006)
    assert "11 blocks" in table.caption and "not independent data sets" in table.caption
    assert "Nemenyi" in table.caption and "Holm" in table.caption
    fig = sig.cd_diagram(ctx)
    assert "Nemenyi" in fig.caption and "critical difference" in fig.caption


def test_ranking_skipped_below_five_blocks(tmp_path):
    run = copy_run(tmp_path, lambda t: t[~t["metric"].str.startswith("auc_")])  # full and clip only: 3 blocks
    report = build_report(run, tmp_path / "report", figures=False)
    reasons = {s.artifact: s.reason for s in report.skipped}
    assert "at least 5 blocks" in reasons["Table R2 (mean ranks across conditions)"]
    index = (tmp_path / "report" / "index.md").read_text()
    assert "at least 5 blocks" in index
    assert "ROPE of ±0.01" in index  # the ROPE is recorded with the run's statistics settings


def test_without_the_extra_only_its_artifacts_are_skipped(tmp_path, monkeypatch):
    with_extra = build_report(EXAMPLE, tmp_path / "with", figures=False)
    monkeypatch.setitem(sys.modules, "scikit_posthocs", None)
    monkeypatch.setitem(sys.modules, "baycomp", None)
    without = build_report(EXAMPLE, tmp_path / "without", figures=False)
    reasons = {s.artifact: s.reason for s in without.skipped}
    assert "avbench[stats]" in reasons["Table R2 (mean ranks across conditions)"]
    bayes = next(t for t in without.tables if t.key == "bayes")
    assert any("avbench[stats]" in n for n in bayes.notes)  # the signed-rank section is left out, with a note
    for key in ("table1", "table2", "table3", "table4", "robustness"):
        assert (tmp_path / "without" / "tables" / f"{key}.md").read_text() == \
               (tmp_path / "with" / "tables" / f"{key}.md").read_text()
    with pytest.raises(Skip, match=r"avbench\[stats\]"):
        sig.cd_diagram(ReportContext(load_run(EXAMPLE)))


def test_bayes_table_cells_are_the_t_posterior(ctx):
    table = sig.bayes_table(ctx)
    full = next(s for s in table.sections if s.title == "Full audiovisual input")
    row = next(r for r in full.rows if r.key["model"] == "baseline1")
    t = ctx.run.table
    pick = lambda m: t[(t["model"] == m) & (t["condition"] == "full") & (t["variant"] == "default") & (
        t["regime"] == "optimized") & (t["metric"] == "micro_f1")].sort_values("seed")["value"].to_numpy()
    a, b = pick("auxformer"), pick("baseline1")
    d = a - b
    post = sst.t(len(d) - 1, d.mean(), d.std(ddof=1) / np.sqrt(len(d)))
    assert [float(c.text) for c in row.cells] == pytest.approx(
        [post.sf(0.01), post.cdf(0.01) - post.cdf(-0.01), post.cdf(-0.01)], abs=0.0006)
    assert "ROPE = ±0.01" in table.caption and "3 paired trials" in table.caption
    wide = sig.bayes_table(ReportContext(ctx.run, StatsConfig(rope=0.05)))
    assert "ROPE = ±0.05" in wide.caption
    fig = sig.posterior_figure(ctx)
    assert "region of practical equivalence (±0.01)" in fig.caption


def test_unpaired_trials_get_a_note_not_an_abort(tmp_path):
    run = copy_run(tmp_path, lambda t: t[~((t["model"] == "baseline1") & (t["seed"] == 1)
                                           & (t["condition"] == "full"))])
    table = sig.bayes_table(ReportContext(load_run(run)))
    assert any("not paired" in n and "Baseline 1" in n for n in table.notes)


def test_stats_csv_has_power_and_report_prints_the_line(tmp_path, capsys):
    from avbench.cli.report import _print_report

    report = build_report(EXAMPLE, tmp_path / "r", figures=False, html_page=False, effect=0.02)
    _print_report(report)
    output = capsys.readouterr().out
    tests = pd.read_csv(tmp_path / "r" / "stats.csv")
    for col in ("sd_diff", "mdd", "trials_needed", "effect"):
        assert col in tests.columns
    row = tests.iloc[0]
    assert row["mdd"] == pytest.approx(stats.minimum_detectable_difference(row["sd_diff"], row["n"]))
    assert row["effect"] == 0.02
    line = next(x for x in output.splitlines() if "power:" in x)
    assert "with 3 trials, differences below" in line and "would be needed for 0.02" in line


@pytest.mark.parametrize("args, what", [(["--rope", "0"], "--rope"), (["--rope", "1"], "--rope"),
                                         (["--effect", "0"], "--effect"), (["--interval", "bootstrap"], "--interval")])
def test_bad_report_options_exit_2_and_write_nothing(tmp_path, args, what):
    out = CliRunner().invoke(main, ["report", str(EXAMPLE), "--out", str(tmp_path / "r"), *args])
    assert out.exit_code == 2 and what in out.output, out.output
    assert not (tmp_path / "r").exists()


def test_power_command(tmp_path):
    out = CliRunner().invoke(main, ["power", str(EXAMPLE), "--effect", "0.01", "--out", str(tmp_path / "p.csv")])
    assert out.exit_code == 0, out.output
    plan = pd.read_csv(tmp_path / "p.csv")
    median = int(np.ceil(plan["trials_needed"].median()))
    assert f"To detect 0.01: {median} trials for the median comparison" in out.output
    assert CliRunner().invoke(main, ["power", str(EXAMPLE), "--effect", "0"]).exit_code == 2


def test_calibration_figures_read_metric_rows(tmp_path, ctx):
    """Table C and Fig. C are built from the ece / brier / nll rows of the example's results.csv (its evaluations
    recorded them) and skipped, saying why, in a run without them (one made before evaluation recorded them)."""
    bare = ReportContext(load_run(copy_run(tmp_path, lambda t: t[~t["metric"].isin(["ece", "brier", "nll"])])))
    with pytest.raises(Skip, match="no calibration rows"):
        sig.ece_figure(bare)
    with pytest.raises(Skip, match="no calibration rows"):
        sig.calibration_table(bare)
    with style.styled():
        fig = sig.ece_figure(ctx)
    assert "15 equal-mass bins" in fig.caption
    table = sig.calibration_table(ctx)
    cell = next(r for r in table.sections[0].rows if r.key["model"] == "auxformer").cells[0]
    t = ctx.run.table
    v = t[(t["model"] == "auxformer") & (t["condition"] == "full") & (t["metric"] == "ece") & (t["variant"] == "default")
          & (t["regime"] == "optimized")]["value"]
    assert len(v) == 3 and float(cell.text) == pytest.approx(v.mean(), abs=0.0006)


def test_reproduce_refuses_bad_statistics_options_before_training(tmp_path):
    for args, what in ((["--rope", "0"], "--rope"), (["--effect", "-0.1"], "--effect"),
                       (["--interval", "bootstrap"], "--interval")):  # the quick profile has 3 trials
        out = CliRunner().invoke(main, ["reproduce", "--run-dir", str(tmp_path / "run"), *args])
        assert out.exit_code == 2 and what in out.output, out.output
    assert not (tmp_path / "run").exists()


def test_bootstrap_intervals_reach_stats_csv_from_ten_trials(tmp_path):
    # ten trials: the example's three, and seven more shifted copies of them (paired by seed across models)
    def more_trials(t):
        scores = ~t["metric"].isin(["params", "epochs", "best_epoch"])  # counts stay integers
        extra = [t.assign(seed=t["seed"] + 3 * k, value=t["value"] + 0.001 * k * scores) for k in range(1, 4)]
        t = pd.concat([t, *extra])
        return t[t["seed"] < 10]
    run = copy_run(tmp_path, more_trials)
    report = build_report(run, tmp_path / "r", figures=False, html_page=False, interval="bootstrap")
    tests = pd.read_csv(tmp_path / "r" / "stats.csv")
    row = tests[tests["n"] == 10].iloc[0]
    assert np.isfinite(row["boot_low"]) and row["boot_low"] <= row["mean_diff"] <= row["boot_high"]
    assert "BCa bootstrap" in report.tables[0].caption


def test_cli_defaults_match_the_library():
    from avbench.cli import report as cli

    assert cli.DEFAULT_ROPE == stats.DEFAULT_ROPE and cli.DEFAULT_EFFECT == stats.DEFAULT_EFFECT


def test_the_power_figure_meets_the_effect_where_statsmodels_says(tmp_path, ctx):
    """Fig. P's curve of a table crosses the wanted effect at the trials statsmodels' TTestPower needs (through
    avbench.stats.trials_needed: sd 0.02 and effect 0.01 need 27 trials, one-tailed at 0.05); without tests it is
    skipped."""
    import dataclasses

    with pytest.raises(Skip, match="no paired test"):
        sig.power_figure(ctx)
    tests = pd.DataFrame({"table": ["Table 1"] * 3, "sd_diff": [0.01, 0.02, 0.03], "alternative": "greater", "n": 3,
                          "mdd": [0.01, 0.02, 0.03], "effect": 0.01, "trials_needed": [8, 27, 58]})
    with style.styled():
        fig = sig.power_figure(dataclasses.replace(ctx, tests=tests))
    [line] = [ln for ln in fig.fig.axes[0].get_lines() if len(ln.get_xdata()) > 2]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    crossing = int(x[np.argmax(y <= 0.01)])
    assert crossing == stats.trials_needed(0.02, 0.01) == 27  # the median sd of the table's three tests
    assert "this run's 3 trials" in fig.caption
