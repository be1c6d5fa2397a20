"""Training histories in a report (data/histories.csv), the training-curves figure, and the LaTeX bundle."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avbench.report import ReportContext, Skip, build_report, load_run, style
from avbench.report.curves import MEAN_WIDTH, training_curves
from avbench.validation import DataError
from test_report import add_histories, make_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two regimes (training-regimes trains both), three trials, five epochs recorded per unit."""
    root = make_run(tmp_path_factory.mktemp("run"), ("training-regimes",), seeds=3)
    add_histories(root)
    return root


def _recorded(root: Path) -> pd.DataFrame:
    """Every history entry of the run's train.json files, as the manifests list them."""
    rows = {}
    for manifest in (root / "protocols").glob("*.json"):
        for entry in json.loads(manifest.read_text())["train"]:
            for h in json.loads((root / entry["train"]).read_text())["history"]:
                u = entry["unit"]
                rows[(u["corpus"], u["model"], u["variant"], u["regime"], u["seed"], h["epoch"])] = h
    return pd.DataFrame([{"corpus": k[0], "model": k[1], "variant": k[2], "regime": k[3], "seed": k[4],
                          "epoch": k[5], **{c: h[c] for c in ("train_loss", "dev_loss", "dev_micro_f1",
                                                              "dev_macro_f1")}} for k, h in rows.items()])


def test_histories_are_saved_with_the_report_and_read_back(run_dir, tmp_path):
    run = load_run(run_dir)
    expected = _recorded(run_dir).sort_values(["corpus", "model", "variant", "regime", "seed", "epoch"])
    got = run.histories
    assert len(got) == len(expected) > 0 and set(got["regime"]) == {"standard", "optimized"}
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False,
                                  check_exact=True)
    copy = shutil.copytree(run_dir, tmp_path / "run")
    report = build_report(copy, tmp_path / "rep", figures=False, strict=True)
    assert tmp_path / "rep" / "data" / "histories.csv" in report.files
    shutil.rmtree(copy)  # a report's data/ folder is all a rebuild has
    again = load_run(tmp_path / "rep" / "data")
    pd.testing.assert_frame_equal(again.histories, got, check_exact=True)  # every value, bit for bit


def test_histories_of_a_run_that_did_not_record_dev_scores():
    """A run made before avbench recorded dev F1 (tests/data/run-schema0): losses, no scores."""
    h = load_run(ROOT / "tests" / "data" / "run-schema0").histories
    assert len(h) and h["train_loss"].notna().all() and h["dev_loss"].notna().all()
    assert h["dev_micro_f1"].isna().all() and h["dev_macro_f1"].isna().all()


def test_a_broken_histories_file_is_named(tmp_path):
    from avbench.report import histories

    (tmp_path / "histories.csv").write_text("corpus,model,variant,regime,seed,epoch,train_loss\nc,m,v,r,one,1,0.5\n")
    with pytest.raises(DataError, match="histories.csv: not an avbench histories table"):
        histories.read(tmp_path)


def _curves(run) -> tuple:
    with style.styled():
        return training_curves(ReportContext(run))


def test_training_curves_draw_each_trial_and_their_mean(run_dir):
    run = load_run(run_dir)
    res = _curves(run)
    h = run.histories[run.histories["variant"] == "default"]
    models = h.groupby("model")["regime"].nunique()
    axes = np.asarray(res.fig.axes[:len(models) * 4]).reshape(len(models), 4)  # 2 regimes x (loss, dev F1)
    assert res.fig.axes[0].get_title() == "Standard training: loss"
    assert res.fig.axes[3].get_title() == "Optimized training: dev Micro-F1"
    row = axes[0]  # the first model (AuxFormer), trained with both regimes
    trials = h[(h["model"] == "auxformer") & (h["regime"] == "optimized")]
    thick = [line for line in row[3].get_lines() if line.get_linewidth() == MEAN_WIDTH]
    thin = [line for line in row[3].get_lines() if line.get_linewidth() != MEAN_WIDTH]
    assert len(thick) == 1 and len(thin) == trials["seed"].nunique() == 3
    np.testing.assert_allclose(thick[0].get_ydata(), trials.groupby("epoch")["dev_micro_f1"].mean())
    loss_lines = [line for line in row[2].get_lines() if line.get_linewidth() == MEAN_WIDTH]
    np.testing.assert_allclose(loss_lines[0].get_ydata(), trials.groupby("epoch")["train_loss"].mean())
    np.testing.assert_allclose(loss_lines[1].get_ydata(), trials.groupby("epoch")["dev_loss"].mean())
    assert "mean over 3 trials" in res.caption and "standard and optimized training" in res.caption
    assert "Micro-F1" in res.caption and "SYNTHETIC" in res.caption


def test_training_curves_follow_the_report_metric_and_say_what_is_missing(run_dir):
    run = load_run(run_dir)
    with style.styled():
        res = training_curves(ReportContext(run, metric="macro_f1"))
    h = run.histories
    trials = h[(h["model"] == "auxformer") & (h["regime"] == "standard") & (h["variant"] == "default")]
    thick = [line for line in res.fig.axes[1].get_lines() if line.get_linewidth() == MEAN_WIDTH]
    np.testing.assert_allclose(thick[0].get_ydata(), trials.groupby("epoch")["dev_macro_f1"].mean())
    old = _curves(load_run(ROOT / "tests" / "data" / "run-schema0"))  # losses only, one trial
    assert len(old.fig.axes) == 1 and "not recorded" in old.caption and "one trial per model" in old.caption.lower()


def test_training_curves_are_skipped_without_histories(tmp_path):
    bare = make_run(tmp_path / "run", ("optimized",), seeds=2)
    with pytest.raises(Skip, match="no training histories"):
        _curves(load_run(bare))
    report = build_report(bare, tmp_path / "rep", strict=True)
    skipped = {s.artifact: s.reason for s in report.skipped}
    assert skipped["Fig. T1 (training curves)"].startswith("no training histories")
    assert not (tmp_path / "rep" / "data" / "histories.csv").exists()


# ------------------------------------------------------------------------------------ LaTeX bundle
NASTY = "Shares of 50% & more: a_b {x} #1 ~ $5 ^2 \\ ±1 --help"  # every LaTeX special a caption may hold


def _targets(tex: str, command: str, root: Path) -> list[Path]:
    """The files ``\\input`` / ``\\includegraphics`` in ``tex`` bring in, with \\avbenchpaper = paper."""
    names = re.findall(rf"\\{command}(?:\[[^\]]*\])?\{{([^}}]*)\}}", tex)
    return [root / name.replace("\\avbenchpaper", "paper") for name in names]


def _unescaped(text: str) -> list[str]:
    """LaTeX specials in ``text`` that are not escaped (a bare % would end the caption)."""
    text = re.sub(r"\$(\\[a-zA-Z]+|-)\$", "", text)  # the math latex_escape writes for ±, α, −, ...
    return re.findall(r"(?<!\\)[%&#_$^~]", text)


def test_latex_bundle_brings_in_every_table_and_figure(run_dir, tmp_path):
    from avbench.report import artifact, unregister
    from avbench.report.figures import FigureResult
    from avbench.report.render import latex_escape

    @artifact("nasty", kind="figure", needs="optimized")
    def nasty(ctx):
        fig = style.new_figure(style.WIDTH_SINGLE, 1.5)
        fig.subplots().plot([0, 1], [0, 1])
        return FigureResult("figN_nasty", "Fig. N", "Nasty_title 100%", NASTY, fig)

    try:
        report = build_report(run_dir, tmp_path / "rep", strict=True, latex_bundle=True)
    finally:
        unregister("nasty")
    out = report.out
    tables, figures = (out / "paper" / "tables.tex").read_text(), (out / "paper" / "figures.tex").read_text()
    inputs = [p.with_suffix(".tex") for p in _targets(tables, "input", out)]
    assert [p.stem for p in inputs] == [t.key for t in report.tables] and len(inputs) >= 2
    for t, target in zip(report.tables, inputs):
        assert target.read_text() == (out / "tables" / f"{t.key}.tex").read_text()
        assert f"\\label{{tab:avbench-{t.key}}}" in target.read_text()
    graphics = _targets(figures, "includegraphics", out)
    assert [p.name for p in graphics] == [f"{f.key}.pdf" for f in report.figures]
    assert "figT1_training_curves.pdf" in [p.name for p in graphics]
    for f, target in zip(report.figures, graphics):
        assert target.read_bytes() == (out / "figures" / f"{f.key}.pdf").read_bytes()
        assert f"\\label{{fig:avbench-{f.key}}}" in figures
        assert f"{{{latex_escape(f.caption)}}}" in figures
    captions = re.findall(r"\\caption\[\{(.*)\}\]\{(.*)\}$", figures, flags=re.M)
    assert len(captions) == len(report.figures)
    assert ("Nasty\\_title 100\\%", latex_escape(NASTY)) in captions
    for short, long in captions:
        assert not _unescaped(short) and not _unescaped(long), (short, long)
    assert figures.count("\\begin{figure") == figures.count("\\end{figure") == len(report.figures)
    assert "\\providecommand{\\avbenchpaper}{paper}" in tables and "\\providecommand{\\avbenchpaper}{paper}" in figures
    bundle = {p for p in (out / "paper").rglob("*") if p.is_file()}
    assert bundle == set(inputs) | set(graphics) | {out / "paper" / "tables.tex", out / "paper" / "figures.tex"}
    assert bundle <= set(report.files)


def test_latex_bundle_of_tables_only_from_the_command_line(tmp_path):
    from click.testing import CliRunner

    from avbench.cli import main

    root = make_run(tmp_path / "run", ("optimized", "clipping"), seeds=3)
    result = CliRunner().invoke(main, ["report", str(root / "results.csv"), "--out", str(tmp_path / "rep"),
                                       "--latex-bundle", "--no-html"])
    assert result.exit_code == 0, result.output
    paper = tmp_path / "rep" / "paper"
    inputs = [p.with_suffix(".tex") for p in _targets((paper / "tables.tex").read_text(), "input", tmp_path / "rep")]
    assert {p.name for p in inputs} == {p.name for p in (tmp_path / "rep" / "tables").glob("*.tex")} >= {"table2.tex"}
    assert all(p.exists() for p in inputs)
    plain = build_report(root, tmp_path / "plain", figures=False, strict=True)
    assert not (tmp_path / "plain" / "paper").exists()  # only when asked for
    assert not [p for p in plain.files if "paper" in p.relative_to(plain.out).parts]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_bundle_compiles(run_dir, tmp_path):
    import subprocess

    build_report(run_dir, tmp_path, strict=True, latex_bundle=True)
    (tmp_path / "doc.tex").write_text("\\documentclass[twocolumn]{article}\n\\usepackage[T1]{fontenc}\n"
                                      "\\usepackage{booktabs,graphicx}\n\\begin{document}\n\\input{paper/tables}\n"
                                      "\\input{paper/figures}\n\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
