"""``avbench report``, ``reproduce``, ``power`` and ``compare``: tables, figures and statistics of runs."""

from __future__ import annotations

from pathlib import Path

import click

from avbench.devices import DEVICES
from avbench.profiles import PROFILES
from avbench.cli.common import (DEVICE_HELP, MAX_SEEDS, PROPOSED_HELP, _executor_options, _wide_pandas,
                                check_run_size, executor_kwargs, main, user_errors)
from avbench.cli.run import _check_proposed, _record_proposed


REPORT_DEFAULT_CORRECTION = "holm"  # = avbench.report.DEFAULT_CORRECTION (kept here so --help stays fast)
DEFAULT_ROPE = DEFAULT_EFFECT = 0.01  # = avbench.stats.DEFAULT_ROPE and DEFAULT_EFFECT (likewise)


def _report_options(fn):
    fn = click.option("--proposed", "proposed", multiple=True, metavar="MODEL", help=PROPOSED_HELP)(fn)
    fn = click.option("--latex-bundle", is_flag=True, help="Also write paper/ in the report: every table's .tex, "
                      "every figure's PDF, and tables.tex / figures.tex to \\input in a paper.")(fn)
    fn = click.option("--interval", default="t", show_default=True, type=click.Choice(["t", "bootstrap"]),
                      help="Interval of the mean differences in stats.csv: the t-interval, or also a BCa bootstrap "
                           "interval (from 10 trials up).")(fn)
    fn = click.option("--effect", default=DEFAULT_EFFECT, show_default=True, type=float,
                      help="The difference (F1) stats.csv plans trials for: its trials_needed column and the power "
                           "line printed when most comparisons could not detect it.")(fn)
    fn = click.option("--rope", default=DEFAULT_ROPE, show_default=True, type=float,
                      help="Region of practical equivalence (F1) of the Bayesian comparisons: differences within "
                           "±ROPE count as equivalent.")(fn)
    fn = click.option("--no-html", is_flag=True, help="Write index.md only (no index.html).")(fn)
    fn = click.option("--test", "test_", default="t", show_default=True, type=click.Choice(["t", "wilcoxon"]),
                      help="Paired test behind '*': one-tailed paired t-test (the paper) or Wilcoxon signed-rank.")(fn)
    fn = click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Significance level (the paper: 0.05).")(fn)
    fn = click.option("--correction", default=REPORT_DEFAULT_CORRECTION, show_default=True, metavar="METHOD",
                      help="Multiple-comparison correction behind '*': holm (default; controls every single "
                           "comparison), none (the paper's choice; valid for the claim 'better than every "
                           "baseline', an intersection-union test), bonferroni, fdr_bh, ... (any statsmodels "
                           "multipletests method).")(fn)
    fn = click.option("--metric", default="micro_f1", show_default=True,
                      type=click.Choice(["micro_f1", "macro_f1", "accuracy"]),
                      help="Score the figures plot (tables always show micro- and macro-F1, as the paper's).")(fn)
    return fn


def _print_report(rep) -> None:
    """The report's summary; the failed artifacts (tracebacks with ``avbench --debug``) and the user's files
    kept where it would have written make a non-zero exit."""
    click.echo(f"report: {rep.index}" + ("  [SYNTHETIC corpus]" if rep.run.synthetic else ""))
    click.echo(f"  proposed: {', '.join(rep.proposed) or 'none'}")
    click.echo(f"  tables: {', '.join(t.number for t in rep.tables) or 'none'}")
    click.echo(f"  figures: {', '.join(f.number for f in rep.figures) or 'none'}")
    for s in rep.skipped:
        click.echo(f"  skipped {s.artifact}: {s.reason} (protocol: {s.protocol})")
    if rep.power_note:
        click.echo(f"  power: {rep.power_note} (see stats.csv; avbench power for more)")
    for path in rep.in_the_way:
        click.echo(f"  kept your file {path}: the report did not write its own there", err=True)
    ctx = click.get_current_context(silent=True)
    debug = ctx is not None and (ctx.find_root().params or {}).get("debug")
    for f in rep.failed:
        click.echo(f"  FAILED {f.artifact}: {f.reason}" + (f"\n{f.traceback}" if debug else ""), err=True)
    problems = []
    if rep.failed:
        problems.append(f"{len(rep.failed)} artifact(s) failed ({', '.join(f.key for f in rep.failed)}); the others "
                        f"were written. `avbench --debug report ...` shows the tracebacks.")
    if rep.in_the_way:
        problems.append(f"{len(rep.in_the_way)} file(s) of yours were kept where the report writes its own, so the "
                        f"report is incomplete (its index may be yours); write it into a new folder for the whole.")
    if problems:
        raise click.ClickException(" ".join(problems))


@main.command(short_help="Tables (LaTeX, Markdown) and figures (PNG, PDF) from a finished run.")
@click.argument("run_dir", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report directory.  [default: RUN_DIR/report]")
@_report_options
@click.option("--force", is_flag=True, help="Write into a folder that holds files of yours and no avbench report: "
                                            "avbench keeps every file it did not write.")
@user_errors
def report(run_dir, out, metric, correction, alpha, test_, no_html, latex_bundle, proposed, rope, effect, interval,
           force):
    """Build paper-style tables (LaTeX + Markdown) and figures (PNG + PDF) from RUN_DIR.

    RUN_DIR is a run directory (avbench run --out), a report's data/ folder, or a results.csv.
    Nothing is retrained: whatever the run lacks is skipped and listed in index.md with the
    protocol that produces it.
    """
    from avbench.report import build_report

    _print_report(build_report(run_dir, out, metric=metric, correction=correction, alpha=alpha, test=test_,
                               html_page=not no_html, proposed=proposed, force=force, latex_bundle=latex_bundle,
                               rope=rope, effect=effect, interval=interval))


@main.command(short_help="How small a difference a run can detect, and how many trials a wanted one needs.")
@click.argument("run_dir", type=click.Path())
@click.option("--effect", default=DEFAULT_EFFECT, show_default=True, type=float, help="The difference (F1) to detect.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Level of each paired test (unadjusted).")
@click.option("--test", "test_", default="t", show_default=True, type=click.Choice(["t", "wilcoxon"]),
              help="The paired test the report uses (trials are planned by the t-test's numbers either way).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write every comparison as CSV.")
@click.option("--proposed", "proposed", multiple=True, metavar="MODEL",
              help="The model whose comparisons are planned (as avbench report --proposed).  [default: the run's]")
@user_errors
def power(run_dir, effect, alpha, test_, out, proposed):
    """From a pilot run, how many trials (seeds) a large run needs.

    For every paired comparison behind the report's '*' (the proposed model against each baseline in
    each cell), the minimum detectable difference at the run's number of trials (power 0.8, the
    test's alpha, one-tailed as the test is) and the trials a difference of --effect would need,
    from the observed sd of the paired differences.  Nothing is written unless --out is given.
    """
    from avbench.report.trials import plan_trials

    plan = plan_trials(run_dir, effect=effect, alpha=alpha, test=test_, proposed=proposed)
    click.echo(plan.text())
    if out:
        from avbench.results import write_table

        write_table(Path(out), plan.comparisons)
        click.echo(f"every comparison: {out}")


@main.command(short_help="Compare two runs unit by unit: paired tests, Holm, Bayesian with a ROPE.")
@click.argument("run_a", type=click.Path())
@click.argument("run_b", type=click.Path())
@click.option("--metric", "metrics", multiple=True, default=("micro_f1", "macro_f1"), show_default=True,
              help="Metric to compare (repeatable); the cells --fail-if-worse checks.")
@click.option("--rope", default=DEFAULT_ROPE, show_default=True, type=float,
              help="Region of practical equivalence of the Bayesian comparison.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Level of the Holm-corrected paired t-tests.")
@click.option("--pair-ignore", "pair_ignore", multiple=True, type=click.Choice(["variant"]),
              help="Pair units whose variant names differ (a --set renames the variant).")
@click.option("--fail-if-worse", "fail_if_worse", type=float, default=None, metavar="MARGIN",
              help="Exit 3 when run B is worse than A by more than MARGIN with probability above 0.95 in any "
                   "compared cell, naming those cells.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also write the table: .csv (every column), .md or .tex.")
@user_errors
def compare(run_a, run_b, metrics, rope, alpha, pair_ignore, fail_if_worse, out):
    """Compare RUN_B with RUN_A (each a run directory, a report's data/ folder or a results.csv).

    Scores are paired by corpus, protocol, model, variant, regime, condition, level and seed; each
    cell is tested with a two-sided paired t-test (Holm over the cells of a metric) and the Bayesian
    posterior of the mean difference with a region of practical equivalence.  Exit status 3 (with
    --fail-if-worse): B is worse; 1: bad data; 2: a bad option or runs of different corpora or splits.
    """
    from avbench.runcompare import EXIT_WORSE, FAIL_PROBABILITY, compare_runs, write_comparison

    if out:
        from avbench.runcompare import OUT_FORMATS

        if Path(out).suffix.lower() not in OUT_FORMATS:
            raise click.BadParameter(f"must end in {', '.join(OUT_FORMATS)} (the format written); got {out!r}.",
                                     param_hint="'--out'")
    res = compare_runs(run_a, run_b, metrics=metrics, rope=rope, alpha=alpha, pair_ignore=pair_ignore,
                       fail_if_worse=fail_if_worse)
    _print_comparison(res)
    if out:
        click.echo(f"table: {write_comparison(res, out)}")
    if fail_if_worse is not None and not res.worse.empty:
        click.echo(f"FAIL: run B is worse than run A by more than {fail_if_worse:g} with probability above "
                   f"{FAIL_PROBABILITY:g} in {len(res.worse)} cell(s):", err=True)
        for _, r in res.worse.iterrows():
            variant = r["variant"] if "variant" in r else f"{r['variant_a']} → {r['variant_b']}"
            click.echo(f"  {r['corpus']} / {r['protocol']} / {r['model']} / {variant} / {r['regime']} / {r['condition']}"
                       f"{'' if r['level'] != r['level'] else f' {r.level:g}'} / {r['metric']}: B − A = "
                       f"{r['diff']:+.3f}, P(B − A < −{fail_if_worse:g}) = {r['p_b_worse_than_margin']:.3f}", err=True)
        raise click.exceptions.Exit(EXIT_WORSE)


def _print_comparison(res) -> None:
    cells = res.cells
    if cells.empty:
        click.echo("no cell is paired between the two runs")
    else:
        shown = cells.assign(level=cells["level"].map(lambda x: "" if x != x else f"{x:g}"))
        columns = [c for c in ("corpus", "protocol", "model", "variant", "variant_a", "variant_b", "regime",
                               "condition", "level", "metric", "n", "mean_a", "mean_b", "diff", "p_holm", "p_b_better",
                               "p_rope", "p_b_worse") if c in shown.columns]
        with _wide_pandas():
            click.echo(shown[columns].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        click.echo(f"{len(cells)} cell(s) compared; ROPE ±{res.rope:g}; p: two-sided paired t-test, Holm over the "
                   f"cells of each metric.")
    for line in res.untested:
        click.echo(f"not tested: {line}")
    if not res.unpaired.empty:
        click.echo(f"{len(res.unpaired)} unit(s) have scores without a partner in the other run:")
        for _, u in res.unpaired.iterrows():
            click.echo(f"  only in {u['run']}: {u['corpus']} / {u['protocol']} / {u['model']} / {u['variant']} / "
                       f"{u['regime']} / seed {u['seed']} ({u['scores']} score(s): {u['conditions']})")


#: What ``reproduce --proposed MODEL`` also runs MODEL under: the protocols that compare models.
COMPARISON_PROTOCOLS = ("standard", "optimized", "training-regimes", "clipping", "masking")
ROBUSTNESS_PROTOCOLS = ("misalignment", "occlusion", "noise")


@main.command(short_help="Every table and figure of the paper plus the robustness ones, in one command.")
@click.option("--corpus", default="synthetic", show_default=True, help="Registered corpus or feature-store path.")
@click.option("--profile", default="quick", show_default=True, type=click.Choice(list(PROFILES)),
              help="paper = the paper's models, 25 epochs, 20 trials (GPU days); quick = scaled down (CPU).")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help=f"Number of trials.  [default: the profile's: paper 20, quick 3; more than {MAX_SEEDS} need --yes]")
@click.option("--yes", is_flag=True, help=f"Confirm a run of more than {MAX_SEEDS} trials.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where units are trained and resumed.  [default: runs/paper-PROFILE]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report directory (self-contained: tables, figures, data/).  [default: RUN_DIR/report]")
@click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICES), help=DEVICE_HELP)
@_report_options
@click.option("--force", is_flag=True, help="Write the report into a folder that holds files of yours and no avbench "
                                            "report: avbench keeps every file it did not write.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--paper-only", is_flag=True, help="Skip the robustness protocol (misalignment, occlusion, noise).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Torch threads per unit.  [default: 1, on every executor; more for one large unit]")
@_executor_options
@user_errors
def reproduce(corpus, profile, seeds, yes, run_dir, out, device, metric, correction, alpha, test_, no_html,
              latex_bundle, proposed, rope, effect, interval, force, quiet, paper_only, threads, executor,
              executor_option, **engine):
    """Run the paper protocol (Tables 1-5, Figs. 3-8) and the robustness protocol, then build the report.

    Trains every unit of `avbench protocols show paper` (resuming whatever RUN_DIR already holds),
    scores the same checkpoints under `avbench protocols show robustness` (misalignment, occlusion,
    noise; nothing more to train) unless --paper-only, then runs `avbench report`.  The default profile and corpus give a synthetic, CPU-sized
    reproduction whose numbers test the software, not emotion recognition.  Units that fail are
    listed at the end (the report is built from the others); rerunning retries them.
    """
    from avbench import stats
    from avbench.profiles import get_profile
    from avbench.report import build_report
    from avbench.runner import UnitsFailed, run as run_protocol

    stats.check_rope(rope, "avbench reproduce")  # refused now, not after hours of training
    stats.check_effect(effect, "avbench reproduce")
    stats.check_interval(interval, seeds or PROFILES[profile].seeds, "avbench reproduce")
    run_dir = run_dir or f"runs/paper-{profile}"
    _check_proposed(proposed, ())
    from avbench.report.build import check_out

    report_dir = Path(out) if out else Path(run_dir) / "report"
    check_out(report_dir, force)  # refused now, not after hours of training
    # the user's models join the comparison protocols (not the ablations, which vary AuxFormer's own options)
    runs = [(name, None) for name in (("paper",) if paper_only else ("paper", "robustness"))]
    runs += [(name, list(proposed)) for name in COMPARISON_PROTOCOLS + ((() if paper_only else ROBUSTNESS_PROTOCOLS))
             if proposed]
    failures = []
    check_run_size([name for name, models in runs if models is None], None, seeds, get_profile(profile), {}, yes)
    for name, models in runs:
        try:
            run_protocol(name, models, corpus=corpus, profile=profile, seeds=seeds, out=run_dir, device=device,
                         progress=not quiet, echo=lambda s: click.echo(s, err=True), threads=threads,
                         executor=executor, executor_options=executor_kwargs(executor, executor_option, engine))
        except UnitsFailed as exc:
            failures.append(exc)
    if proposed:
        _record_proposed(run_dir, proposed, proposed)  # it ran under the comparison protocols above
    try:
        _print_report(build_report(run_dir, out, metric=metric, correction=correction, alpha=alpha, test=test_,
                                   html_page=not no_html, proposed=proposed, latex_bundle=latex_bundle, rope=rope,
                                   effect=effect, interval=interval, force=force))
    except click.ClickException as exc:  # failed artifacts: said together with the failed units
        failures.append(exc.message)
    if failures:
        raise click.ClickException("\n".join(str(f) for f in failures) + "\nThe report above lacks their results; "
                                   "rerunning the same command retries the failed units.")
