"""``avbench run``, ``plan``, ``run-unit`` and ``status``: a run, from planning to its units' state."""

from __future__ import annotations

import json
from pathlib import Path

import click


from avbench.cli.common import (PROPOSED_HELP, _executor_options, _plan_options, _wide_pandas, check_run_size,
                                executor_kwargs, main, parse_sets, user_errors)


@main.command(short_help="Train, select on dev, and score on test under a protocol's conditions.")
@_plan_options
@_executor_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--dry-run", is_flag=True, help="Print the units it would train, reuse, and not apply; run nothing.")
@click.option("--proposed", "proposed", multiple=True, metavar="MODEL", help=PROPOSED_HELP)
@user_errors
def run(protocol, models, corpus, profile, seeds, yes, out, device, sets, splits, weights, threads, batching,
        precision, memory, executor, executor_option, quiet, dry_run, proposed, **engine):
    """Train, select on dev, and score on test under a protocol's conditions."""
    from avbench.profiles import get_profile
    from avbench.runner import run as run_protocol
    from avbench.results import summary_table

    profile = get_profile(profile).replace(batching=batching, precision=precision, memory=memory)
    check_run_size([list(protocol)], list(models) or None, seeds, profile, parse_sets(sets), yes)
    _check_proposed(proposed, models)
    summary = run_protocol(list(protocol), list(models) or None, corpus=corpus, profile=profile, seeds=seeds, out=out,
                           device=device, options=parse_sets(sets), progress=not quiet,
                           echo=lambda s: click.echo(s, err=True), splits=splits, threads=threads,
                           dry_run=dry_run, executor=executor, weights=list(weights),
                           executor_options=executor_kwargs(executor, executor_option, engine))
    if dry_run:
        _print_plan(summary)
        return
    if proposed:
        _record_proposed(summary.out, proposed, summary.table["model"])
    corpus_note = ""
    if not summary.table.empty and "synthetic" in str(summary.table["corpus"].iloc[0]):
        corpus_note = " (SYNTHETIC corpus: numbers test the tool, not emotion recognition)"
    click.echo(f"\nResults{corpus_note}: {summary.out / 'results.csv'}")
    with _wide_pandas():
        click.echo(summary_table(summary.table).round(3).to_string())
    for line in summary.not_applicable:
        click.echo(f"not applicable: {line}")
    if summary.profile_note:
        click.echo(summary.profile_note)
    click.echo(f"\nunits trained now: {summary.trained}, reused: {summary.reused}" + (
        f"; recorded training time of the units trained now {summary.train_seconds:.1f} s, their evaluation "
        f"(all conditions) {summary.eval_seconds:.1f} s = {100 * summary.eval_seconds / summary.train_seconds:.1f}% "
        f"of training" if summary.train_seconds else ""))


def _check_proposed(proposed, models) -> None:
    """``--proposed`` before anything runs: each name a registered model, and one of ``--model`` when given."""
    from avbench.proposed import check_proposed
    from avbench.registry import MODELS

    for name in proposed:
        MODELS.get(name)  # an unknown name: "Did you mean ...?"
    if proposed and models:
        check_proposed(proposed, models, "avbench run")


def _record_proposed(out, proposed, models=()) -> None:
    """After the run: the choice, each a model the run directory now holds scores of (this run's ``models``
    or earlier runs' results.csv), recorded there for ``avbench report``."""
    from avbench.proposed import check_proposed, record_choice
    from avbench.results import load_results

    models = set(map(str, models))
    if (Path(out) / "results.csv").exists():
        models |= set(load_results(Path(out))["model"].astype(str))
    check_proposed(proposed, models, "avbench run")
    record_choice(out, proposed)


def _print_plan(summary) -> None:
    for note in summary.notes:
        click.echo(note)
    if summary.profile_note:
        click.echo(summary.profile_note)
    for title, lines in (("to train", summary.to_train), ("to reuse", summary.to_reuse),
                         ("not applicable", summary.not_applicable)):
        click.echo(f"{len(lines)} {'unit(s) ' if title != 'not applicable' else ''}{title}:")
        click.echo("".join(f"  {line}\n" for line in lines), nl=False)


@main.command(short_help="The units a run needs; --emit writes one `avbench run-unit` command per pending unit.")
@_plan_options
@click.option("--emit", default=None, type=click.Path(dir_okay=False),
              help="Write one 'avbench run-unit SPEC' line per unit still to train or score, for any scheduler "
                   "(sbatch --array, GNU parallel); the specs go to OUT/specs/.")
@user_errors
def plan(protocol, models, corpus, profile, seeds, yes, out, device, sets, splits, weights, threads, batching,
         precision, memory, emit):
    """Plan a run without training: print the units to train, to reuse and not applicable.

    With --emit FILE, also write each pending unit as a self-contained spec and FILE as one
    command line per unit.  Run the lines anywhere that sees OUT and the corpus (each runs
    exactly one unit and exits; failures leave error.json); then the same `avbench run`
    command reuses every unit and writes the results table.
    """
    from avbench.planning import dry_run, emit_commands, prepare
    from avbench.profiles import get_profile
    from avbench.runner import profile_note

    profile = get_profile(profile).replace(batching=batching, precision=precision, memory=memory)
    check_run_size([list(protocol)], list(models) or None, seeds, profile, parse_sets(sets), yes)
    # runs_here=False: the emitted commands run wherever they are sent, and each resolves the device there
    planned = prepare(list(protocol), list(models) or None, corpus=corpus, profile=profile, seeds=seeds, out=out,
                      device=device, options=parse_sets(sets), splits=splits, threads=threads,
                      dry_run=emit is None, runs_here=False, echo=lambda s: click.echo(s, err=True),
                      weights=list(weights))
    if emit is None:
        summary = dry_run(planned)
        summary.profile_note = profile_note(planned.profile)
        _print_plan(summary)
        return
    n = emit_commands(planned, Path(emit))
    click.echo(f"{n} unit(s) pending: {n} command(s) written to {emit} (specs in {planned.out / 'specs'}). "
               f"When they are done, run the same 'avbench run' command to write the results table.")


@main.command("run-unit", short_help="Run exactly one unit from a spec written by `avbench plan --emit`.")
@click.argument("spec", type=click.Path(dir_okay=False))
@user_errors
def run_unit(spec):
    """Train (or reuse) and score the one unit SPEC describes, then exit: 0 when it finished, 1 when
    it failed (its error record, error.json, is beside the unit; running the line again retries)."""
    from avbench.units import read_task
    from avbench.worker import execute

    # no store verification here: `plan --emit` verified it, as the submitting side of every executor does
    # (on NFS every node would otherwise rehash the whole store: its device numbers differ)
    task = read_task(spec)
    outcome = execute(task)
    if outcome.failed:
        raise click.ClickException(f"{task.label}: {outcome.error.summary} "
                                   f"(error record: {task.unit_dir / 'error.json'})")
    click.echo(f"{task.label}: {'trained' if outcome.trained else 'reused'}, {len(outcome.evals)} condition(s) scored")


@main.command(short_help="Units of a run directory: done, pending, running and failed, with wall times.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@user_errors
def status(run_dir, as_json):
    """What RUN_DIR holds: each planned unit's state (done, pending, running, failed) and wall time."""
    from avbench.status import format_status, run_status

    states = run_status(Path(run_dir))
    if as_json:
        click.echo(json.dumps([s.to_json() for s in states], indent=1))
    else:
        click.echo(format_status(states))
