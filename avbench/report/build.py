"""Builds a whole report from a run directory: tables, figures, statistics, index page.

Layout of a report directory::

    index.md, index.html     every table and figure, the run's provenance, what was skipped and why
    tables/<key>.tex|.md|.csv   LaTeX (booktabs) and Markdown tables; CSV = every cell with mean, sd, n, CI
    figures/<key>.png|.pdf   PNG at 200 dpi and vector PDF
    stats.csv                every paired test behind a '*' (means, difference, CI, d_z, p, adjusted p)
    data/                    results.csv, protocols/*.json, provenance.json, histories.csv and confidences.csv:
                             enough to rebuild the report (``avbench report <report>/data --out <report>``)
                             without the units
    paper/                   with --latex-bundle: tables.tex, figures.tex and the files they bring in
                             (:mod:`avbench.report.bundle`)
"""

from __future__ import annotations

import datetime as _dt
import gc
import html
import json
import os
import re
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import avbench
from avbench import stats
from avbench.report import bundle, confidences, histories, style
from avbench.report.artifacts import (DEFAULT_CORRECTION, SYNTHETIC_BANNER, Artifact, ReportContext, Skip,
                                      StatsConfig, planned)
from avbench.report.figures import FigureResult
from avbench.report.render import Table, md_escape
from avbench.report.rundata import PERFORMANCE_METRICS, RunData, load_run
from avbench.proposed import proposed_of_run
from avbench.results import write_json, write_table
from avbench.validation import ValidationError, check_choice, check_float

@dataclass
class Skipped:
    artifact: str
    reason: str
    protocol: str


@dataclass
class Failed:
    """An artifact whose builder raised (a bug or data it did not expect): the report lists it and exits
    non-zero; ``traceback`` is printed with ``avbench --debug``."""

    key: str
    artifact: str
    reason: str
    traceback: str = ""


@dataclass
class Report:
    """What :func:`build_report` wrote.

    ``out`` is the report directory; while the report is built it is a staging folder inside it, from
    which :func:`_publish` moves the files into place."""

    out: Path
    run: RunData
    config: StatsConfig
    metric: str
    proposed: tuple[str, ...] = ()
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    in_the_way: list[Path] = field(default_factory=list)  # the user's files kept where the report would write
    dest: Path | None = None  # the report directory (``out`` once published)
    own_data: bool = False    # rebuilt from ``dest/data``, which it then neither rewrites nor takes for the user's
    power_note: str | None = None   # one line when most comparisons could not detect the wanted effect

    @property
    def index(self) -> Path:
        return self.out / "index.md"


def _attempt(art: Artifact, ctx: ReportContext, report: Report, strict: bool) -> Any:
    try:
        return art.build(ctx)
    except Skip as s:
        report.skipped.append(Skipped(art.name, str(s), s.protocol or art.needs))
    except Exception as exc:  # one broken artifact must not cost the researcher the rest of the report
        if strict:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        report.failed.append(Failed(art.key, art.name, f"{type(exc).__name__}: {first}".rstrip(": "),
                                    traceback.format_exc()))
    return None


def build_report(run_dir: str | Path, out: str | Path | None = None, *, metric: str = "micro_f1",
                 correction: str = DEFAULT_CORRECTION, alpha: float = 0.05, test: str = "t", html_page: bool = True,
                 figures: bool = True, strict: bool = False, proposed: tuple[str, ...] | list[str] = (),
                 force: bool = False, latex_bundle: bool = False,
                 rope: float = stats.DEFAULT_ROPE, effect: float = stats.DEFAULT_EFFECT, interval: str = "t") -> Report:
    """Builds every table and figure the run's results support; never trains.

    Args:
        run_dir: A run directory (``avbench run --out``), a report's ``data/`` folder, or a results CSV.
        out: Report directory; default ``<run_dir>/report``.  It may be new, empty, or hold an earlier
            avbench report; any other folder is refused unless ``force`` (see :func:`check_out`).
        metric: The score the figures plot (``micro_f1`` as in the paper, ``macro_f1``, ``accuracy``).
            Tables always show micro- and macro-F1, as the paper's do.
        correction: Multiple-comparison correction behind the ``*`` marks: ``holm`` (default), ``none``
            (the paper's; valid for the "better than every baseline" claim, see
            :data:`avbench.report.artifacts.DEFAULT_CORRECTION`) or any :data:`avbench.stats.CORRECTIONS` method.
        alpha: Significance level (0.05 in the paper).
        test: ``t`` (paired t-test, the paper) or ``wilcoxon``.
        html_page: Also write ``index.html``.
        figures: Draw the figures (False: tables, statistics and index only; much faster).
        strict: Raise when a builder fails instead of listing it as failed (tests use this).
        proposed: The model(s) every testing table and figure treats as the user's (the first is the
            main one); default: the choice recorded with the run, else :func:`avbench.proposed.default_proposed`.
        force: Write into a non-empty folder that holds no avbench report; its files are never removed,
            and those where the report would write are kept (and listed in ``Report.in_the_way``).
        latex_bundle: Also write ``paper/``: every table's ``.tex`` and figure's PDF with ``tables.tex``
            and ``figures.tex`` to ``\\input`` in a paper (:mod:`avbench.report.bundle`).
        rope: Region of practical equivalence of the Bayesian comparisons (0 < rope < 1; default 0.01 F1).
        effect: The difference the power columns of ``stats.csv`` plan trials for (0 < effect < 1).
        interval: ``t``, or ``bootstrap`` to add BCa bootstrap intervals of the mean differences to
            ``stats.csv`` (refused below :data:`avbench.stats.MIN_BOOTSTRAP_TRIALS` trials).

    Returns:
        A :class:`Report` listing the tables, figures, skipped and failed artifacts and files written.

    Example:
        From a tidy table alone (here three trials of two models, written by hand):

        >>> import tempfile
        >>> from pathlib import Path
        >>> import pandas as pd
        >>> tmp = tempfile.TemporaryDirectory()
        >>> rows = [{"corpus": "crema-d-0123abcd", "model": model, "variant": "default", "regime": "optimized",
        ...          "protocol": "optimized", "condition": "full", "level": None, "seed": seed, "metric": metric,
        ...          "value": score + 0.01 * seed}
        ...         for model, score in (("auxformer", 0.71), ("mult", 0.64)) for seed in range(3)
        ...         for metric in ("micro_f1", "macro_f1")]
        >>> pd.DataFrame(rows).to_csv(Path(tmp.name) / "results.csv", index=False)
        >>> report = build_report(tmp.name, figures=False)
        >>> [table.key for table in report.tables], report.proposed, (report.out / "index.md").exists()
        (['table1', 'bayes'], ('auxformer',), True)
        >>> tmp.cleanup()
    """
    run = load_run(run_dir)
    check_choice(metric, "metric", "avbench report", PERFORMANCE_METRICS)
    correction = check_choice(str(correction).lower(), "correction", "avbench report", stats.CORRECTIONS)
    alpha = check_float(alpha, "alpha", "avbench report", low=0, high=1, low_open=True, high_open=True)
    check_choice(test, "test", "avbench report", stats.TESTS)
    rope = stats.check_rope(rope, "avbench report")
    effect = stats.check_effect(effect, "avbench report")
    stats.check_interval(interval, run.seeds, "avbench report")
    cfg = StatsConfig(correction=correction, alpha=alpha, test=test, rope=rope, effect=effect, interval=interval)
    src = Path(run_dir)
    root = src if src.is_dir() else src.parent
    chosen = proposed_of_run(run, list(proposed))
    dest = Path(out) if out is not None else root / "report"
    own_data = (dest / "data").resolve() == root.resolve()  # rebuilt from its own data/
    old = check_out(dest, force, own_data)
    staging = dest / STAGING
    if staging.exists():
        shutil.rmtree(staging)  # what an interrupted report left: the report in place is untouched
    staging.mkdir(parents=True)
    report = Report(staging, run, cfg, metric, chosen, dest=dest, own_data=own_data)
    try:
        _build(report, strict, figures, html_page, latex_bundle)
        _publish(report, old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _build(report: Report, strict: bool, figures: bool, html_page: bool, latex_bundle: bool) -> None:
    """Builds every artifact into ``report.out`` (the staging folder), then stats.csv, data/ and the index."""
    out = report.out
    ctx = ReportContext(report.run, report.config, report.metric, report.proposed)
    arts = [a for a in planned(ctx) if figures or a.kind != "figure"]
    # statsmodels' Holm correction calls gc.collect() on every call (statsmodels 0.14, multitest.py); with torch
    # and pandas loaded each collection takes ~0.2 s and a report makes hundreds of tests.  Freezing the objects
    # that exist now keeps those collections short.
    gc.freeze()
    try:
        built = [_attempt(a, ctx, report, strict) for a in arts if a.kind == "table"]
    finally:
        gc.unfreeze()
    report.tables = [t for t in built if t is not None]
    # statistics behind the marks (before the figures: the power figure reads them)
    comps = [t.comparisons for t in report.tables if len(t.comparisons)]
    if comps:
        ctx.tests = stats.add_power(pd.concat(comps, ignore_index=True), effect=report.config.effect)
        report.power_note = stats.underpowered_message(ctx.tests)
        write_table(out / "stats.csv", ctx.tests)
        report.files.append(out / "stats.csv")
    for tab in report.tables:
        base = out / "tables" / tab.key
        write_table(base.with_suffix(".csv"), tab.to_frame())  # creates tables/ (as every avbench write does)
        base.with_suffix(".tex").write_text(tab.to_latex())
        base.with_suffix(".md").write_text(tab.to_markdown())
        report.files += [base.with_suffix(suffix) for suffix in (".tex", ".md", ".csv")]
    with style.styled():
        for a in (a for a in arts if a.kind == "figure"):
            res: FigureResult | None = _attempt(a, ctx, report, strict)
            if res is None:
                continue
            res.files = style.save_figure(res.fig, out / "figures" / res.key)
            report.files += res.files
            report.figures.append(res)
            res.fig.clear()

    report.files += bundle.write_bundle(report) if latex_bundle else []
    _write_data(report)
    report.files.append(_write_index(report))
    if html_page:
        report.files.append(_write_html(report))


REPORT_FILES = ".avbench-report.json"  # what the last report wrote into its directory (its listing)
STAGING = ".avbench-staging"           # where a report is built before its files are moved into place


def check_out(dest: Path, force: bool = False, own_data: bool = False) -> set[str]:
    """Whether a report may be written into ``dest``; returns what an earlier avbench report there wrote
    (the paths of its listing, relative to ``dest``), the only files a report ever removes.

    ``dest`` may be new, empty, or hold an earlier avbench report (its listing file); any other folder
    holds the user's own files, and is refused unless ``force``.  When the report is rebuilt from
    ``dest/data`` (``own_data``), that folder is the report's own (a copy that lost the listing file).

    Raises:
        ValidationError: ``dest`` holds files and no avbench report, and ``force`` is False.
    """
    if dest.exists() and not dest.is_dir():
        raise ValidationError(f"The '--out' option of avbench report must be a directory. Got {str(dest)!r}, a file.")
    listing = dest / REPORT_FILES
    if listing.is_file():
        try:
            names = json.loads(listing.read_text())
            return {str(n) for n in names} if isinstance(names, list) else set()
        except (OSError, ValueError):
            return set()  # an unreadable listing: remove nothing
    own = (STAGING + "/",) + (("data/",) if own_data else ())
    theirs = sorted(rel for rel in (p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
                    if not rel.startswith(own)) if dest.is_dir() else []
    if theirs and not force:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise ValidationError(f"{dest}: the folder holds files that no avbench report wrote ({shown}); a report "
                              f"there could overwrite them. Choose a new folder for --out, or pass --force to write "
                              f"beside them (avbench then keeps every file it did not write).")
    return set()


def _publish(report: Report, old: set[str]) -> None:
    """Moves the staged report into place.  A file of the user's where the report would write is kept (and
    named in ``report.in_the_way``); of an earlier report's files (``old``) those this one did not write are
    removed, except the run's own ``data/`` when the report is rebuilt from it."""
    staging, dest = report.out, report.dest
    own_data = report.own_data
    moves = []
    for path in report.files:
        rel = path.relative_to(staging).as_posix()
        target = dest / rel
        if target.exists() and rel not in old and not (own_data and rel.startswith("data/")):
            report.in_the_way.append(target)
        else:
            moves.append((path, target, rel))
    # listed before anything moves: a publish cut short leaves no file of avbench's unlisted (and so
    # taken for the user's by the next report), and none of the user's listed
    write_json(dest / REPORT_FILES, sorted(old | {rel for _, _, rel in moves}))
    written: list[Path] = []
    for path, target, _ in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        written.append(target)
    kept = {p.relative_to(dest).as_posix() for p in written}
    for rel in sorted(old - kept):
        path = dest / rel
        if own_data and rel.startswith("data/"):
            if path.is_file():
                kept.add(rel)  # the data/ the report was rebuilt from stays, and stays listed
            continue
        if path.is_file() and path.resolve().is_relative_to(dest.resolve()):
            path.unlink()
    if own_data:  # the data/ it was rebuilt from is a report's, listed or not (a listing of an older avbench)
        kept |= {p.relative_to(dest).as_posix() for p in (dest / "data").rglob("*") if p.is_file()}
    write_json(dest / REPORT_FILES, sorted(kept))
    report.files = written
    for fig in report.figures:
        fig.files = [dest / p.relative_to(staging) for p in fig.files]
    report.out = dest


# ---------------------------------------------------------------------------- data/ (self-contained input)
def _write_data(report: Report) -> None:
    """``data/``: the run's table, manifests and provenance digest (with the proposed choice), enough to
    rebuild the report; rebuilt from its own ``data/``, only the digest is rewritten (the choice may change)."""
    run, data = report.run, report.out / "data"
    write_json(data / "provenance.json", {**run.provenance, "proposed": list(report.proposed)})
    report.files.append(data / "provenance.json")
    if report.own_data:
        return  # rebuilding from our own data/: the table and manifests are already there
    write_table(data / "results.csv", run.raw)
    for name, manifest in run.manifests.items():
        write_json(data / "protocols" / f"{name}.json", {**manifest, "entries": [], "train": []})
        report.files.append(data / "protocols" / f"{name}.json")
    report.files += [data / "results.csv"] + histories.write(data, run.histories)
    report.files += confidences.write(data, run.confidences)


# ---------------------------------------------------------------------------- index
def provenance_rows(report: Report) -> list[tuple[str, str]]:
    run, prov = report.run, report.run.provenance
    rows = []
    for c in prov.get("corpora", []) or [{"name": "unknown", "checksum": None, "synthetic": None}]:
        synthetic = c.get("synthetic")
        kind = "SYNTHETIC" if synthetic else ("real" if synthetic is False else "unknown (no manifest)")
        rows.append(("Corpus", f"{c['name']} — {kind}; checksum {c.get('checksum') or 'not recorded'}"))
    rows.append(("Profile", ", ".join(prov.get("profiles") or run.profiles) or "not recorded"))
    rows.append(("Trials (seeds)", str(prov.get("seeds", run.seeds))))
    rows.append(("Protocols in the run", ", ".join(prov.get("protocols") or run.protocols)))
    labels = ReportContext(run, proposed=report.proposed)
    rows.append(("Proposed model", ", ".join(labels.label(m) for m in report.proposed) or
                 "none (neither AuxFormer nor a model declared proposed is in the run)"))
    revs = prov.get("git_revision") or []
    rows.append(("avbench (run)", f"{', '.join(prov.get('avbench') or ['not recorded'])}; git revision "
                                  f"{', '.join(r[:12] for r in revs) or 'not recorded'}"))
    rows.append(("torch", ", ".join(prov.get("torch") or ["not recorded"])))
    rows.append(("Python", ", ".join(prov.get("python") or ["not recorded"])))
    machines = prov.get("machines") or []
    rows.append(("Machine(s)", "; ".join(f"{m['machine']} ({m['units']} unit{'s' if m['units'] != 1 else ''})"
                                        for m in machines) or "not recorded"))
    cfg = report.config
    rows.append(("Statistics", f"{cfg.sentence(str(prov.get('seeds', run.seeds)))}; '*' needs every comparison "
                               f"of a cell to be significant; Bayesian comparisons with a ROPE of ±{cfg.rope:g}; "
                               f"trials planned for a difference of {cfg.effect:g}"))
    rows.append(("Figure metric", style.metric_label(report.metric)))
    rows.append(("Report", f"avbench {avbench.__version__}, built "
                           f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from {run.source}"))
    return rows


def _rel(report: Report, path: Path) -> str:
    return path.relative_to(report.out).as_posix()


def _write_index(report: Report) -> Path:
    run = report.run
    lines = ["# avbench report", ""]
    if run.synthetic:
        lines += [f"> **{SYNTHETIC_BANNER[0]}** {SYNTHETIC_BANNER[1]}", ""]
    lines += ["Benchmark of audiovisual emotion recognition following AuxFormer (Goncalves & Busso, IEEE TAC "
              "2022). Built from the run's tidy results only (nothing retrained).", "", "## Provenance", "",
              "| | |", "| :--- | :--- |"]
    lines += [f"| {md_escape(k)} | {md_escape(v)} |" for k, v in provenance_rows(report)]
    if run.notes:
        lines += ["", "Warnings while reading the run:", ""] + [f"- {md_escape(n)}" for n in run.notes]
    lines += ["", "## Contents", ""]
    lines += [f"- [{a.number}: {a.title}](#{_anchor(f'{a.number} {a.title}')})" for a in report.tables + report.figures]
    if report.failed:
        lines.append("- [Failed](#failed)")
    if report.skipped:
        lines.append("- [Skipped](#skipped)")
    lines += ["", "## Tables", ""]
    for t in report.tables:
        lines += [f"### {t.number}: {t.title}", "", t.to_markdown().rstrip(), "",
                  f"Files: [LaTeX](tables/{t.key}.tex) · [Markdown](tables/{t.key}.md) · "
                  f"[CSV with sd, n, 95% CI](tables/{t.key}.csv)", ""]
    lines += ["## Figures", ""]
    for f in report.figures:
        png, pdf = (_rel(report, p) for p in f.files)  # style.save_figure writes these two
        lines += [f"### {f.number}: {f.title}", "", f"![{md_escape(f.number)}]({png})", "",
                  f"**{md_escape(f.number)}.** {md_escape(f.caption)}", "", f"Files: [PNG]({png}) · [PDF]({pdf})", ""]
    if report.failed:
        lines += ["## Failed", "", "These artifacts could not be built (a bug, or data they did not expect); "
                  "`avbench --debug report ...` prints each traceback:", "", "| Artifact | Error |", "| :--- | :--- |"]
        lines += [f"| {md_escape(f.artifact)} | {md_escape(f.reason)} |" for f in report.failed]
        lines.append("")
    if report.skipped:
        lines += ["## Skipped", "", "What this run does not contain (run the protocol to add it; rerunning "
                  "into the same --out reuses finished units):", "", "| Artifact | Why | Produced by protocol |",
                  "| :--- | :--- | :--- |"]
        lines += [f"| {md_escape(s.artifact)} | {md_escape(s.reason)} | {md_escape(s.protocol)} |"
                  for s in report.skipped]
        lines.append("")
    if (report.out / "stats.csv").exists():
        lines += ["## Statistics", "", "[stats.csv](stats.csv) lists every paired test behind a `*`: means, mean "
                  "difference with its 95% CI, Cohen's d_z, raw and adjusted p-values, and its power: the minimum "
                  f"detectable difference (mdd) at power {stats.power.POWER:g} and the trials a difference of "
                  f"{report.config.effect:g} would need, both at the unadjusted α of each test.", ""]
        if report.power_note:
            lines += [f"**Power:** {md_escape(report.power_note)}.", ""]
    path = report.out / "index.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", text.lower()).strip().replace(" ", "-")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table.avbench,table.prov,table.skip{border-collapse:collapse;margin:1em 0;font-size:0.9em}
table.avbench caption{caption-side:top;text-align:left;margin-bottom:.4em}
table.avbench th,table.avbench td{padding:2px 8px;text-align:right}
table.avbench th:first-child{text-align:left;font-weight:normal}
table.avbench thead{border-top:2px solid #000;border-bottom:1px solid #000}
table.avbench tbody{border-bottom:2px solid #000}
tr.section td{text-align:center;border-top:1px solid #000;border-bottom:1px solid #000}
table.prov td,table.skip td,table.skip th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}
.banner{background:#FCE8D5;border-left:6px solid #D55E00;padding:.6em 1em;margin:1em 0}
figure{margin:1.5em 0}figure img{max-width:100%}figcaption{font-size:.9em}"""


def _write_html(report: Report) -> Path:
    e = html.escape
    run = report.run
    parts = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\"><title>avbench report</title>",
             f"<style>{_CSS}</style></head><body>", "<h1>avbench report</h1>"]
    if run.synthetic:
        parts.append(f"<div class=\"banner\"><b>{e(SYNTHETIC_BANNER[0])}</b> {e(SYNTHETIC_BANNER[1])}</div>")
    parts.append("<h2>Provenance</h2><table class=\"prov\">")
    parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in provenance_rows(report)]
    parts.append("</table>")
    if run.notes:
        parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in run.notes) + "</ul>")
    parts.append("<h2>Tables</h2>")
    for t in report.tables:
        parts += [f"<h3 id=\"{e(t.key)}\">{e(t.number)}: {e(t.title)}</h3>", t.to_html(),
                  f"<p>Files: <a href=\"tables/{e(t.key)}.tex\">LaTeX</a> · <a href=\"tables/{e(t.key)}.md\">"
                  f"Markdown</a> · <a href=\"tables/{e(t.key)}.csv\">CSV</a></p>"]
    parts.append("<h2>Figures</h2>")
    for f in report.figures:
        links = " · ".join(f"<a href=\"{e(_rel(report, p))}\">{p.suffix[1:].upper()}</a>" for p in f.files)
        parts.append(f"<figure id=\"{e(f.key)}\"><h3>{e(f.number)}: {e(f.title)}</h3>"
                     f"<img src=\"{e(_rel(report, f.files[0]))}\" alt=\"{e(f.number)}\">"
                     f"<figcaption><b>{e(f.number)}.</b> {e(f.caption)} ({links})</figcaption></figure>")
    if report.failed:
        parts.append("<h2>Failed</h2><p>These artifacts could not be built; <code>avbench --debug report ...</code> "
                     "prints each traceback.</p><table class=\"skip\"><tr><th>Artifact</th><th>Error</th></tr>")
        parts += [f"<tr><td>{e(f.artifact)}</td><td>{e(f.reason)}</td></tr>" for f in report.failed]
        parts.append("</table>")
    if report.skipped:
        parts.append("<h2>Skipped</h2><table class=\"skip\"><tr><th>Artifact</th><th>Why</th>"
                     "<th>Produced by protocol</th></tr>")
        parts += [f"<tr><td>{e(s.artifact)}</td><td>{e(s.reason)}</td><td>{e(s.protocol)}</td></tr>"
                  for s in report.skipped]
        parts.append("</table>")
    parts.append("</body></html>")
    path = report.out / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path
