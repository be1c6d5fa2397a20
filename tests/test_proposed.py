"""The user's model is the protagonist, walked end to end as a new user would: the example plugin package
(role "proposed") installed in a temporary path -> a run's results.csv -> `avbench report` in a fresh
interpreter -> every table, caption and stats.csv row read back.  Also: level sets never mixed, a report
never deleting a user's file, impossible numbers refused, a failed artifact giving a non-zero exit."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from avbench.cli import main
from avbench.report import build_report
from avbench.report.artifacts import ARTIFACTS, artifact
from avbench.robustness import robustness_summary
from avbench.results import COLUMNS, ProtocolManifest, write_manifest, write_table

from test_plugin import EXAMPLE, _install

PLUGIN, CORPUS, SEEDS = "late-fusion-gru", "crema-d-0123abcd", 3
QUALITY = {PLUGIN: 0.80, "auxformer": 0.74, "mult": 0.70, "unimodal-audio": 0.55, "unimodal-visual": 0.58}
MASK_LEVELS = [round(0.1 * i, 1) for i in range(1, 10)]


def _noise(*key) -> float:
    return int(hashlib.sha256(repr(key).encode()).hexdigest()[:6], 16) / 16**6 - 0.5


def _score(model: str, condition: str, level, seed: int) -> float:
    q = QUALITY[model]
    if condition.startswith("clip"):
        q -= 0.12
    elif condition.startswith("mask"):
        q -= (0.25 if model == "mult" else 0.15) * (1 - level)
    return float(q + 0.004 * seed + 0.01 * _noise(model, condition, level, seed))


def _rows(protocol: str, models, conditions, regime: str = "optimized") -> list[dict]:
    return [{"corpus": CORPUS, "model": m, "variant": "default", "regime": regime, "protocol": protocol,
             "condition": cond, "level": np.nan if level is None else level, "seed": seed, "metric": metric,
             "value": _score(m, cond, level, seed) - (0.01 if metric == "macro_f1" else 0.0),
             "train_shift_ms": 0.0, "is_default": True}
            for m in models for cond, level in conditions for seed in range(SEEDS) for metric in ("micro_f1", "macro_f1")]


def write_run(root: Path, extra_masking: dict[str, list[float]] | None = None) -> Path:
    """A run of the plugin beside AuxFormer and MulT under optimized, clipping and masking (and, with
    ``extra_masking``, the user's own masking protocols with other levels), as avbench writes it."""
    av = [PLUGIN, "auxformer", "mult"]
    full = [("full", None)]
    rows = _rows("optimized", av, full)
    rows += _rows("clipping", av, full + [("clip_audio", None), ("clip_visual", None)])
    rows += _rows("clipping", ["unimodal-audio", "unimodal-visual"], full)
    masking = {"masking": MASK_LEVELS, **(extra_masking or {})}
    for name, levels in masking.items():
        rows += _rows(name, av, full + [(f"mask_{m}", lv) for m in ("audio", "visual") for lv in levels])
    table = pd.DataFrame(rows)
    summary = [robustness_summary(table[table["protocol"] == name], metric)
               for name in masking for metric in ("micro_f1", "macro_f1")]
    table = pd.concat([table] + summary, ignore_index=True)
    write_table(root / "results.csv", table[COLUMNS + ["train_shift_ms", "is_default"]])
    for name, levels in {"optimized": [], "clipping": [], **masking}.items():
        definition = {"name": name, "summary": name in masking,
                      "conditions": [{"kind": "mask", "modality": m, "levels": levels} for m in ("audio", "visual")]
                      if levels else []}
        write_manifest(root / "protocols" / f"{name}@{CORPUS}.json",
                       ProtocolManifest(name, corpus={"name": "crema-d", "checksum": "0123abcd" + "0" * 8,
                                                      "synthetic": False}, definition=definition))
    return root


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin package, installed into a private directory (as tests/test_plugin.py does)."""
    tmp = tmp_path_factory.mktemp("plugin")
    import shutil

    source = tmp / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    target.mkdir()
    _install(source, target)
    return target


def _avbench(args: list[str], site: Path | None) -> subprocess.CompletedProcess:
    """``avbench ARGS`` in a fresh interpreter, with the plugin's directory on its path when given."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "avbench.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def plugin_report(plugin_site, tmp_path_factory) -> Path:
    root = write_run(tmp_path_factory.mktemp("run") / "run")
    done = _avbench(["report", str(root), "--out", str(root / "report"), "--no-html"], plugin_site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"proposed: {PLUGIN}" in done.stdout
    return root / "report"


def _sections(md: str) -> dict[str, list[list[str]]]:
    """A Markdown table's body rows (cells, stripped) under each italic section header."""
    out: dict[str, list[list[str]]] = {}
    section = ""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= set(":- ") or cells[0] == "Architecture":
            continue
        if re.fullmatch(r"\*[^*].*\*", cells[0]) and not any(cells[1:]):
            section = cells[0].strip("*")
            continue
        out.setdefault(section, []).append(cells)
    return out


def _captions(report: Path) -> dict[str, str]:
    return {p.stem: p.read_text().split("\n\n")[0] for p in sorted((report / "tables").glob("*.md"))}


def test_the_plugin_is_the_one_proposed_model_of_every_table_caption_and_test(plugin_report):
    tables = {p.stem: p.read_text() for p in (plugin_report / "tables").glob("*.md")}
    testing = ("table1", "table2", "robustness")
    assert set(testing) <= set(tables)
    for key, text in tables.items():
        ours = set(re.findall(r"\| ([^|]*?) \(ours\)", text))
        assert ours == ({"Late-fusion GRU"} if key in testing + ("ranking",) else set()), (key, ours)
        assert "AuxFormer (ours)" not in text and "AuxFormer is significantly" not in text
    captions = _captions(plugin_report)
    for key in testing:
        assert "| AuxFormer |" in tables[key] or "| AuxFormer " in tables[key]  # a row like any baseline
        assert ("LF-GRU is significantly better" in captions[key] or
                "LF-GRU's AUC is significantly higher" in captions[key]), key
        assert "AuxFormer's AUC" not in captions[key]
    if "bayes" in tables:  # with the [stats] extra's artifacts too
        assert "Bayesian comparison of LF-GRU with each audiovisual baseline" in captions["bayes"]
        assert [cells[0] for cells in _sections(tables["bayes"])["Full audiovisual input"]] == ["AuxFormer",
                                                                                              "Baseline 2"]
    # Table 2: every audiovisual model scored under clipping, the plugin first, baseline 4 as reference
    rows = _sections(tables["table2"])
    for section in ("Visual Features Only", "Acoustic Features Only"):
        labels = [cells[0] for cells in rows[section]]
        assert labels == ["Late-fusion GRU (ours)", "Baseline 4", "AuxFormer", "Baseline 2"], labels
        assert all(c.endswith("\\*") for c in rows[section][0][1:])  # significantly better in both columns
    stats = pd.read_csv(plugin_report / "stats.csv")
    assert set(stats["proposed"]) == {"Late-fusion GRU (ours)"}
    assert {"Table 1", "Table 2", "Table R1"} <= set(stats["table"])
    for table, group in stats.groupby("table"):
        assert "AuxFormer" in set(group["baseline"]), table  # AuxFormer is tested as a baseline
    assert (stats["mean_diff"] > 0).all()
    saved = json.loads((plugin_report / "data" / "provenance.json").read_text())
    assert saved["proposed"] == [PLUGIN]
    index = (plugin_report / "index.md").read_text()
    assert "| Proposed model | Late-fusion GRU (ours) |" in index


def test_fig5_draws_the_plugins_full_av_line(plugin_report):
    index = (plugin_report / "index.md").read_text()
    fig5 = next(line for line in index.splitlines() if line.startswith("**Fig. 5.**"))
    assert "Solid horizontal line (in its colour): LF-GRU with full audiovisual input" in fig5
    assert (plugin_report / "figures" / "fig5_masking.png").stat().st_size > 10_000


def test_a_report_rebuilt_from_data_without_the_plugin_keeps_the_choice(plugin_report, tmp_path):
    """Where the plugin is not installed its role cannot be read: the choice comes from data/provenance.json."""
    report = build_report(plugin_report / "data", tmp_path / "again", figures=False)
    assert report.proposed == (PLUGIN,)
    for name in ("table1", "table2", "robustness"):
        before = pd.read_csv(plugin_report / "tables" / f"{name}.csv")
        after = pd.read_csv(tmp_path / "again" / "tables" / f"{name}.csv")
        assert after["mean"].tolist() == before["mean"].tolist(), name
    stats = pd.read_csv(tmp_path / "again" / "stats.csv")
    assert set(stats["proposed"]) == {f"{PLUGIN} (ours)"}


def test_run_and_report_options_choose_the_proposed_model(tmp_path):
    root = write_run(tmp_path / "run")
    runner = CliRunner()
    done = runner.invoke(main, ["report", str(root), "--out", str(tmp_path / "r1"), "--proposed", "mult", "--no-html"])
    assert done.exit_code == 0, done.output
    assert "proposed: mult" in done.output
    assert "*: B2 (MulT) is significantly better" in (tmp_path / "r1" / "tables" / "table1.md").read_text().replace(
        "\\*", "*")
    bad = runner.invoke(main, ["report", str(root), "--out", str(tmp_path / "r2"), "--proposed", "mutl"])
    assert bad.exit_code == 2 and "Did you mean 'mult'" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "r2").exists()
    # avbench run --proposed records the choice in the run directory, for the report
    from avbench.proposed import record_choice

    record_choice(root, ["auxformer"])
    again = build_report(root, tmp_path / "r3", figures=False)
    assert again.proposed == ("auxformer",)


def test_two_or_more_candidates_are_refused_naming_them(tmp_path):
    from avbench.models import AVModel, Presentation, register_model
    from avbench.registry import MODELS

    for name in ("mine-a", "mine-b"):
        register_model(name, description="a test model", presentation=Presentation(role="proposed"))(AVModel)
    try:
        root = tmp_path / "run"
        rows = _rows("optimized", ["auxformer", "mult"], [("full", None)])
        rows += [{**r, "model": name} for name in ("mine-a", "mine-b") for r in rows[:SEEDS * 2]]
        write_table(root / "results.csv", pd.DataFrame(rows))
        done = CliRunner().invoke(main, ["report", str(root)])
    finally:
        for name in ("mine-a", "mine-b"):
            MODELS.unregister(name)
    assert done.exit_code == 2 and "mine-a, mine-b" in done.output and "--proposed" in done.output


def test_different_level_sets_are_never_mixed(tmp_path):
    """Two protocols of the user's own (`include: masking` with other levels) beside masking: each level set
    keeps its own AUC rows, its own section and its own curves; identical sets merge."""
    root = write_run(tmp_path / "run", {"masking-coarse": [0.3, 0.7], "masking-same": MASK_LEVELS})
    report = build_report(root, tmp_path / "report", strict=True)
    text = (tmp_path / "report" / "tables" / "robustness.md").read_text()
    sections = re.findall(r"\| \*(Audio masked[^*]*)\*", text)
    assert sections == ["Audio masked (levels 0.1 to 0.9 in steps of 0.1)", "Audio masked (levels 0.3, 0.7)"]
    caption = text.split("\n\n")[0]
    assert "0.1 to 0.9 in steps of 0.1" in caption and "0.3, 0.7" in caption
    raw = pd.read_csv(root / "results.csv")
    frame = pd.read_csv(tmp_path / "report" / "tables" / "robustness.csv")
    for section, protocol in (("Audio masked (levels 0.1 to 0.9 in steps of 0.1)", "masking"),
                              ("Audio masked (levels 0.3, 0.7)", "masking-coarse")):
        want = raw[(raw["protocol"] == protocol) & (raw["model"] == PLUGIN) & (raw["condition"] == "mask_audio")
                   & (raw["metric"] == "auc_micro_f1")]["value"].mean()
        got = frame[(frame["section"] == section) & (frame["key_model"] == PLUGIN) & (frame["column"] == "CREMA-D AUC")]
        assert len(got) == 1 and got["mean"].iloc[0] == pytest.approx(want, abs=1e-12), section
    from avbench.report import ReportContext, load_run, style
    from avbench.report.figures import fig5 as build_fig5

    with style.styled():
        fig5 = build_fig5(ReportContext(load_run(root)))
    assert "separate curves" in fig5.caption and "levels 0.3, 0.7" in fig5.caption
    assert fig5.caption == next(f.caption for f in report.figures if f.number == "Fig. 5")
    legend = [t.get_text() for t in fig5.fig.legends[0].get_texts()]
    assert "levels 0.3, 0.7" in legend and "levels 0.1 to 0.9 in steps of 0.1" in legend


def test_the_occlusion_figure_draws_each_masking_level_set_in_its_own_line_style(tmp_path):
    """Fig. R2 draws masking beside the bursts: with two masking level sets, three kinds of line (bursts, and each
    masking level set), each its own line style, named in the legend and the caption."""
    from avbench.conditions import get_kind
    from avbench.report import ReportContext, load_run, style
    from avbench.report.figures import kind_figure

    root = write_run(tmp_path / "run", {"masking-coarse": [0.3, 0.7]})
    table = pd.read_csv(root / "results.csv")
    burst = pd.DataFrame(_rows("occlusion", [PLUGIN, "auxformer", "mult"],
                               [(f"burst_{m}", lv) for m in ("audio", "visual") for lv in (0.2, 0.5)]))
    write_table(root / "results.csv", pd.concat([table, burst], ignore_index=True))
    with style.styled():
        fig = kind_figure(ReportContext(load_run(root)), get_kind("burst"), "Fig. R2")
    styles = {}
    for ax in fig.fig.axes:
        for line in ax.get_lines():
            if line.get_xydata().shape[0] > 1 and line.get_label() not in ("_nolegend_",):
                styles.setdefault(line.get_linestyle(), set()).add(line.get_xydata().shape[0])
    # points per curve: 2 burst levels, 2 coarse masking levels, 9 masking levels, each set in one style of its own
    assert sorted(map(sorted, styles.values())) == [[2], [2], [9]], styles
    legend = [t.get_text() for t in fig.fig.legends[0].get_texts()]
    assert "contiguous burst" in legend
    assert "scattered frames (masking), levels 0.3, 0.7" in legend
    assert "scattered frames (masking), levels 0.1 to 0.9 in steps of 0.1" in legend
    assert "dashed = scattered frames (masking), levels 0.1 to 0.9 in steps of 0.1" in fig.caption


def test_a_report_rebuilt_from_its_own_data_lists_that_data_as_its_own(tmp_path):
    """A report rebuilt from its data/ whose listing lacks the data files (written by an older avbench) lists
    them again, so a later report from the run directory replaces them instead of keeping them as the user's."""
    root = write_run(tmp_path / "run")
    out = tmp_path / "report"
    runner = CliRunner()
    assert runner.invoke(main, ["report", str(root), "--out", str(out), "--no-html"]).exit_code == 0
    listing = out / ".avbench-report.json"
    listing.write_text(json.dumps([n for n in json.loads(listing.read_text()) if n == "data/provenance.json"
                                   or not n.startswith("data/")]))
    rebuilt = runner.invoke(main, ["report", str(out / "data"), "--out", str(out), "--no-html"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "data/results.csv" in json.loads(listing.read_text())
    again = runner.invoke(main, ["report", str(root), "--out", str(out), "--no-html"])
    assert again.exit_code == 0 and "kept your file" not in again.output, again.output


def test_a_report_never_deletes_or_overwrites_the_users_files(tmp_path):
    root = write_run(tmp_path / "run")
    out = tmp_path / "mine"
    (out / "figures").mkdir(parents=True)
    (out / "tables").mkdir()
    mine = {"figures/my_plot.png": b"\x89PNG mine", "tables/notes.txt": b"my notes", "index.md": b"# my index",
            "stats.csv": b"my,stats\n"}
    for rel, data in mine.items():
        (out / rel).write_bytes(data)
    runner = CliRunner()
    refused = runner.invoke(main, ["report", str(root), "--out", str(out)])
    assert refused.exit_code == 2 and "--force" in refused.output and "Traceback" not in refused.output
    assert "figures/my_plot.png" in refused.output and "tables/notes.txt" in refused.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(mine)
    forced = runner.invoke(main, ["report", str(root), "--out", str(out), "--force", "--no-html"])
    # the report is written beside the user's files, but not whole (index.md and stats.csv are theirs): exit 1
    assert forced.exit_code == 1 and "report is incomplete" in forced.output, forced.output
    for rel, data in mine.items():
        assert (out / rel).read_bytes() == data, rel  # kept, overwritten by nothing
    assert "kept your file" in forced.output and "index.md" in forced.output and "stats.csv" in forced.output
    assert (out / "tables" / "table1.md").exists()
    # a later report into the same folder replaces only what avbench wrote there
    again = runner.invoke(main, ["report", str(root), "--out", str(out), "--no-html", "--proposed", "auxformer"])
    assert again.exit_code == 1 and "Traceback" not in again.output, again.output
    for rel, data in mine.items():
        assert (out / rel).read_bytes() == data, rel
    listing = json.loads((out / ".avbench-report.json").read_text())
    assert not set(listing) & set(mine)


def test_an_earlier_report_is_replaced_and_its_stale_files_removed(tmp_path):
    root = write_run(tmp_path / "run")
    out = tmp_path / "report"
    build_report(root, out, figures=False)
    (out / "tables" / "notes.txt").write_text("mine")  # the user's file inside an avbench report
    (out / "tables" / "table9.md").write_text("stale")  # not in the listing: not avbench's to remove
    pd.read_csv(root / "results.csv").query("protocol != 'clipping'").to_csv(root / "results.csv", index=False)
    build_report(root, out, figures=False)
    assert not (out / "tables" / "table2.md").exists()  # the earlier report's, no longer supported: removed
    assert (out / "tables" / "notes.txt").read_text() == "mine" and (out / "tables" / "table9.md").exists()
    assert not (out / ".avbench-staging").exists()


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.assign(value=np.where(t.index == 4, 1.7, t["value"])), "line 6: the micro_f1 value must be in [0, 1]. Got 1.7"),
    (lambda t: pd.concat([t, t.iloc[[0]].assign(value=0.1)], ignore_index=True),
     "lines 2, {n} record the same score"),
])
def test_impossible_numbers_are_refused_naming_the_line(tmp_path, edit, expected):
    root = write_run(tmp_path / "run")
    table = pd.read_csv(root / "results.csv")
    assert table.loc[4, "metric"] == "micro_f1"
    edited = edit(table)
    edited.to_csv(root / "results.csv", index=False)
    done = CliRunner().invoke(main, ["report", str(root), "--out", str(tmp_path / "out")])
    assert done.exit_code == 1 and expected.format(n=len(edited) + 1) in done.output, done.output
    assert "Traceback" not in done.output and not (tmp_path / "out").exists()


def test_a_failed_artifact_is_listed_and_the_command_exits_non_zero(tmp_path):
    root = write_run(tmp_path / "run")

    @artifact("broken-test-table", kind="table", needs="optimized", name="A broken table")
    def broken(ctx):
        raise ZeroDivisionError("boom")

    try:
        done = CliRunner().invoke(main, ["report", str(root), "--out", str(tmp_path / "out"), "--no-html"])
    finally:
        ARTIFACTS.unregister("broken-test-table")
    assert done.exit_code == 1, done.output
    assert "A broken table: ZeroDivisionError: boom" in done.output and "Traceback" not in done.output
    index = (tmp_path / "out" / "index.md").read_text()
    assert "## Failed" in index and "| A broken table | ZeroDivisionError: boom |" in index
    assert (tmp_path / "out" / "tables" / "table1.md").exists()  # the others are written


def test_run_and_reproduce_record_the_choice_and_reproduce_runs_it_under_the_comparison_protocols(tmp_path,
                                                                                                   monkeypatch):
    from types import SimpleNamespace

    import avbench.report
    import avbench.runner
    from avbench.proposed import CHOICE_FILE, recorded_choice

    calls = []

    def fake_run(protocol, models, **kw):
        calls.append((protocol, models))
        table = pd.DataFrame([{c: 0 for c in COLUMNS} | {"model": m} for m in models or []], columns=COLUMNS)
        return SimpleNamespace(table=table, out=Path(kw["out"]), profile_note="", not_applicable=[], eval_seconds=0.0,
                               train_seconds=0.0, trained=0, reused=0)

    def fake_report(run_dir, out, **kw):
        calls.append(("report", tuple(kw["proposed"])))
        return SimpleNamespace(index=Path(run_dir) / "report" / "index.md", run=SimpleNamespace(synthetic=True),
                               proposed=tuple(kw["proposed"]), tables=[], figures=[], skipped=[], in_the_way=[], power_note=None,
                               failed=[])

    monkeypatch.setattr(avbench.runner, "run", fake_run)
    monkeypatch.setattr(avbench.report, "build_report", fake_report)
    runner = CliRunner()
    bad = runner.invoke(main, ["run", "-p", "masking", "--proposed", "late-fusion-gur", "--out", str(tmp_path / "a")])
    assert bad.exit_code == 2 and "Unknown model 'late-fusion-gur'" in bad.output and not calls
    bad = runner.invoke(main, ["run", "-p", "masking", "-m", "auxformer", "--proposed", "mult",
                               "--out", str(tmp_path / "a")])
    assert bad.exit_code == 2 and "must name a model of the run" in bad.output
    assert not (tmp_path / "a" / CHOICE_FILE).exists()
    ok = runner.invoke(main, ["run", "-p", "masking", "-m", "auxformer", "-m", "mult", "--proposed", "mult",
                              "--out", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    assert recorded_choice(tmp_path / "a") == ("mult",) and calls == [(["masking"], ["auxformer", "mult"])]
    calls.clear()
    ok = runner.invoke(main, ["reproduce", "--proposed", "mult", "--run-dir", str(tmp_path / "b")])
    assert ok.exit_code == 0, ok.output
    assert recorded_choice(tmp_path / "b") == ("mult",)
    assert calls == [("paper", None), ("robustness", None)] + [
        (name, ["mult"]) for name in ("standard", "optimized", "training-regimes", "clipping", "masking",
                                      "misalignment", "occlusion", "noise")] + [("report", ("mult",))]


def test_a_level_set_of_one_model_does_not_empty_the_ranking(tmp_path):
    """The user's own 2-level protocol scored for the plugin alone: the ranking keeps, per family, the level set
    every model was scored over, instead of dropping every model the extra set lacks."""
    pytest.importorskip("scikit_posthocs")
    from avbench.report import ReportContext, load_run
    from avbench.report.significance import ranking_blocks

    root = write_run(tmp_path / "run")
    extra = _rows("masking-coarse", [PLUGIN], [(f"mask_{m}", lv) for m in ("audio", "visual") for lv in (0.3, 0.7)])
    table = pd.read_csv(root / "results.csv")
    summary = [robustness_summary(pd.DataFrame(extra), metric) for metric in ("micro_f1", "macro_f1")]
    pd.concat([table, pd.DataFrame(extra), *summary], ignore_index=True).to_csv(root / "results.csv", index=False)
    rows, _ = ranking_blocks(ReportContext(load_run(root)))
    aucs = rows[rows["condition"].str.startswith("mask_")]
    assert set(aucs["levels"]) == {",".join(f"{lv:.10g}" for lv in MASK_LEVELS)}
    assert set(aucs["model"]) == {PLUGIN, "auxformer", "mult"}


def test_values_a_float_step_past_a_limit_are_accepted(tmp_path):
    """The trapezoid rule can give an AUC of 1.0000000000000002 for a perfect model: not an impossible number."""
    from avbench.results import load_results

    root = write_run(tmp_path / "run")
    table = pd.read_csv(root / "results.csv")
    table.loc[table["metric"] == "auc_micro_f1", "value"] = 1.0000000000000002
    table.to_csv(root / "results.csv", index=False)
    assert (load_results(root)["value"] > 1).any()
    table.loc[table["metric"] == "auc_micro_f1", "value"] = 1.001
    table.to_csv(root / "results.csv", index=False)
    with pytest.raises(Exception, match="auc_micro_f1 value must be in"):
        load_results(root)


def test_a_rebuild_from_a_copied_reports_data_is_not_refused(tmp_path):
    """`cp -r report/* X/` drops the hidden listing: the data/ a report is rebuilt from is still its own."""
    root = write_run(tmp_path / "run")
    build_report(root, tmp_path / "report", figures=False)
    copy = tmp_path / "copy"
    copy.mkdir()
    import shutil

    for item in (tmp_path / "report").iterdir():
        if not item.name.startswith("."):
            (shutil.copytree if item.is_dir() else shutil.copy)(item, copy / item.name)
    (copy / "tables").mkdir(exist_ok=True)
    for p in list(copy.rglob("*")):
        if p.is_file() and not p.relative_to(copy).as_posix().startswith("data/"):
            p.unlink()  # only the data/ folder is left
    again = build_report(copy / "data", copy, figures=False)
    assert (copy / "tables" / "table1.md").exists() and not again.in_the_way


def test_table_r1_without_a_proposed_model_shows_the_aucs_untested(tmp_path):
    root = tmp_path / "run"
    rows = _rows("masking", ["mult"],
                 [("full", None)] + [("mask_audio", lv) for lv in MASK_LEVELS])
    rows += [{**r, "model": "xmodal"} for r in rows]
    table = pd.DataFrame(rows)
    table = pd.concat([table, robustness_summary(table, "micro_f1")], ignore_index=True)
    write_table(root / "results.csv", table)
    report = build_report(root, tmp_path / "report", figures=False, strict=True)
    assert report.proposed == ()
    text = (tmp_path / "report" / "tables" / "robustness.md").read_text()
    assert "No proposed model in the run: no test." in text and "\\*" not in text.split("\n\n", 1)[1]


def test_reproduce_refuses_a_users_folder_before_training(tmp_path, monkeypatch):
    import avbench.runner

    calls = []
    monkeypatch.setattr(avbench.runner, "run", lambda *a, **k: calls.append(a))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    done = CliRunner().invoke(main, ["reproduce", "--run-dir", str(tmp_path / "run"), "--out", str(mine)])
    assert done.exit_code == 2 and "notes.txt" in done.output and "--force" in done.output and not calls
