"""``avbench models`` and ``avbench protocols``: what can be run."""

from __future__ import annotations

import json

import click

from avbench.profiles import PROFILES
from avbench.registry import MODELS, PROTOCOLS
from avbench.cli.common import (PROFILE_HELP, main, user_errors)


@main.group()
def models() -> None:
    """List and inspect registered models."""


def _dims(fn):
    fn = click.option("--visual-dim", default=4096, show_default=True, type=click.IntRange(min=1))(fn)
    fn = click.option("--audio-dim", default=130, show_default=True, type=click.IntRange(min=1))(fn)
    return click.option("--classes", default=4, show_default=True, type=click.IntRange(min=2))(fn)


@models.command("list")
@_dims
@click.option("--profile", default="paper", show_default=True, type=click.Choice(list(PROFILES)), help=PROFILE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@user_errors
def models_list(classes, audio_dim, visual_dim, profile, as_json):
    """Names, modalities and parameter counts for the given dimensions."""
    from avbench.models import model_parameters
    from avbench.profiles import get_profile

    prof = get_profile(profile)
    rows = []
    for name, meta in MODELS.items():
        n, _ = model_parameters(name, num_classes=classes, audio_dim=audio_dim, visual_dim=visual_dim,
                                **prof.model_config(meta))
        rows.append({"name": name, "modalities": list(meta.modalities), "params": n,
                     "paper_params": meta.paper_params, "description": meta.description})
    broken = MODELS.broken()  # listed with their error; only a run naming one fails
    if as_json:
        click.echo(json.dumps(rows + [{"name": name, "error": error} for name, error in broken.items()], indent=1))
        return
    click.echo(f"{'model':<18} {'modalities':<13} {'params':>11} {'paper':>11}  description")
    for r in rows:
        paper = f"{r['paper_params']:,}" if r["paper_params"] else "-"
        click.echo(f"{r['name']:<18} {'+'.join(r['modalities']):<13} {r['params']:>11,} {paper:>11}  {r['description']}")
    for name, error in broken.items():
        click.echo(f"{name:<18} {'?':<13} {'-':>11} {'-':>11}  BROKEN: {error}")
    click.echo(f"\n(counts at {classes} classes, audio {audio_dim}, visual {visual_dim}, profile {profile}; "
               "the paper's Table 5 is at 4 / 130 / 4096)")


@models.command("show")
@click.argument("name")
@_dims
@click.option("--profile", default="paper", show_default=True, type=click.Choice(list(PROFILES)), help=PROFILE_HELP)
@user_errors
def models_show(name, classes, audio_dim, visual_dim, profile):
    """Metadata, options and a per-block parameter breakdown of one model."""
    from avbench.models import get_model_meta, model_parameters
    from avbench.profiles import get_profile

    meta = get_model_meta(name)
    config = get_profile(profile).model_config(meta)
    total, blocks = model_parameters(name, num_classes=classes, audio_dim=audio_dim, visual_dim=visual_dim, **config)
    click.echo(f"{name}: {meta.description}\nmodalities: {', '.join(meta.modalities)}\ncitation: {meta.citation}")
    rules = meta.constraints()
    click.echo("options (paper defaults: what each accepts):")
    for option, default in meta.options().items():
        accepts = "; ".join(map(str, rules.get(option, ()))) or "any value (the model declares no constraint)"
        click.echo(f"  {option} = {json.dumps(default, default=str)}: {accepts}")
    if config:
        click.echo(f"profile {profile} overrides: {json.dumps(config)}")
    click.echo(f"\nparameters at {classes} classes, audio {audio_dim}, visual {visual_dim}:")
    for block, n in blocks.items():
        click.echo(f"  {block:<16} {n:>11,}")
    click.echo(f"  {'total':<16} {total:>11,}" + (f"   (paper: {meta.paper_params:,})" if meta.paper_params else ""))
    click.echo(f"\nsemantics version: {meta.semantics_version}")
    if meta.notes:
        click.echo(meta.notes)


@main.group()
def protocols() -> None:
    """List and inspect protocols."""


@protocols.command("list", short_help="Every protocol: name, paper reference, what it does.")
@user_errors
def protocols_list():
    """Every protocol: name, paper reference, and what it does (its description, cut at a word)."""
    import textwrap

    from avbench.protocol import get_protocol

    for name in PROTOCOLS.names():
        p = get_protocol(name)
        what = " ".join(p.description.split())
        head = f"{name:<21} {p.reference:<29} "
        click.echo(textwrap.fill(what, width=max(len(head) + 40, 120), initial_indent=head,
                                 subsequent_indent=" " * len(head), max_lines=2, placeholder=" ..."))


@protocols.command("show")
@click.argument("name")
@user_errors
def protocols_show(name):
    """The protocol's full definition, then what it expands to."""
    from avbench.protocol import get_protocol, members

    p = get_protocol(name)
    click.echo(p.to_yaml())
    for q in members(p):
        models = ", ".join(q.models) + (f" (+ {', '.join(q.needs)} for reference)" if q.needs else "")
        click.echo(f"# {q.name}: models {models}; regimes {', '.join(q.regimes)}; "
                   f"{len(q.variants)} variant(s); {len(q.conditions)} test condition(s): "
                   f"{', '.join(c.key for c in q.conditions)}")
