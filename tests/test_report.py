"""Tests for avbench.report: tables, figures, index, CLI, from realistic tidy tables (no training)
except one tiny real run through `avbench report`."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avbench import stats
from avbench.report import ReportContext, build_report
from avbench.report.render import latex_escape
from avbench.report.style import OKABE_ITO, RC
from avbench.results import COLUMNS, write_json, write_table

ROOT = Path(__file__).resolve().parents[1]
SEEDS = 6
ALL_PROTOCOLS = ("standard", "optimized", "training-regimes", "clipping", "masking", "posenc", "self-attention",
                 "token", "lambda-grid", "complexity", "upscaled", "misalignment", "misalignment-trained",
                 "occlusion", "noise")
QUALITY = {"auxformer": 0.76, "baseline1": 0.72, "mult": 0.71, "xmodal": 0.64, "mult-xl": 0.715,
           "xmodal-xl": 0.655, "unimodal-audio": 0.57, "unimodal-visual": 0.60}
ONE_MODALITY = {"auxformer": (0.60, 0.62), "unimodal-audio": (0.57, None), "unimodal-visual": (None, 0.60)}
PARAMS = {"auxformer": 707_474, "baseline1": 477_699, "mult": 35_838, "xmodal": 221_162, "mult-xl": 707_040,
          "xmodal-xl": 712_527, "unimodal-audio": 436_435, "unimodal-visual": 436_435}
VARIANT_EFFECT = {"pos_enc": {False: -0.008}, "self_attention": {"none": -0.014, "lstm": -0.008, "gru": -0.007},
                  "token": {"cls": -0.012, "mean": -0.003}}


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(repr(key).encode()).hexdigest()[:12], 16))


def score(corpus, model, config, regime, condition, level, seed) -> float:
    """A deterministic plausible micro-F1: shared split difficulty + model quality + condition effect."""
    split = _rng(corpus, "split", seed).normal(0, 0.012)
    full = QUALITY[model] - (0.004 if regime == "standard" else 0.0)
    for key, effects in VARIANT_EFFECT.items():
        full += effects.get(config.get(key), 0.0)
    if "loss_weights" in config:
        w = np.asarray(config["loss_weights"], float)
        full -= 0.04 * float(np.abs(w - 1 / 3).max()) + (0.03 if (w == 0).any() else 0.0)
    a_only, v_only = ONE_MODALITY.get(model, (0.52, 0.55))
    if regime == "standard" and model not in ONE_MODALITY:
        a_only, v_only = a_only - 0.18, v_only - 0.15
    elif regime == "standard" and model == "auxformer":
        a_only, v_only = a_only - 0.08, v_only - 0.06
    kind, _, mod = condition.partition("_")
    if model == "unimodal-audio":
        value = a_only
    elif model == "unimodal-visual":
        value = v_only
    elif kind == "full":
        value = full
    else:
        other = v_only if mod == "audio" else a_only  # what is left when `mod` is gone
        lost = full - other
        frac = {"clip": 1.0, "mask": (1 - (level or 0)) ** 2, "burst": (level or 0) ** 1.5,
                "shift": min(abs(level or 0) / 500, 1) * 0.4, "noise": 1 / (1 + np.exp(((level or 0) - 2) / 3))}[kind]
        robust = 0.6 if model == "auxformer" else 1.0
        value = full - lost * frac * (robust if kind != "clip" else 1.0)
    return float(np.clip(value + split + _rng(corpus, model, repr(sorted(config.items())), regime, condition,
                                             level, seed).normal(0, 0.004), 0, 1))


def make_run(root: Path, protocols=ALL_PROTOCOLS, *, synthetic: bool = True, corpora=("crema-d",),
             seeds: int = SEEDS, drop_seed: tuple[str, int] | None = None) -> Path:
    """Writes a run directory (results.csv + protocols/*.json) shaped like avbench.runner.run's."""
    from avbench.protocol import Protocol
    from avbench.robustness import with_summaries

    rows = []
    for cname in corpora:
        checksum = hashlib.sha256(cname.encode()).hexdigest()
        name = f"synthetic-{cname}" if synthetic else cname
        cid = f"{name}-{checksum[:8]}"
        for pname in protocols:
            p = Protocol.from_yaml(ROOT / "protocols" / f"{pname}.yaml")
            d = p.source
            suffix = f"+train_shift={d['train_shift_ms']:g}ms" if d.get("train_shift_ms") else ""
            units = [(m, v.name + suffix, v.config, r, p.conditions) for m in p.models for v in p.variants
                     for r in p.regimes]
            units += [(m, "default", {}, r, p.needs_conditions or p.conditions) for m in p.needs
                      for r in (p.needs_regimes or p.regimes)]
            for model, variant, config, regime, conditions in units:
                mods = {"unimodal-audio": {"audio"}, "unimodal-visual": {"visual"}}.get(model, {"audio", "visual"})
                for seed in range(seeds):
                    if drop_seed and drop_seed == (model, seed):
                        continue
                    base = {"corpus": cid, "model": model, "variant": variant, "regime": regime, "protocol": pname,
                            "seed": seed}
                    cfg = dict(config, train_shift=bool(suffix)) if suffix else config
                    for c in conditions:
                        if mods <= c.removes():
                            continue
                        mi = score(cid, model, cfg, regime, c.name, c.level, seed)
                        gap = max(0.0, 0.8 - mi)  # calibration worsens with the score (avbench.report.significance)
                        for metric, value in (("micro_f1", mi), ("macro_f1", mi - 0.004),
                                              ("accuracy", mi), ("ece", 0.03 + 0.3 * gap), ("brier", 0.3 + gap),
                                              ("nll", 0.8 + 2 * gap)):
                            rows.append({**base, "condition": c.name, "level": c.level, "metric": metric,
                                         "value": value})
                    spe = {"auxformer": 1.2, "baseline1": 0.7, "mult": 0.4}.get(model, 0.6)
                    spe *= 1 + 0.05 * _rng(model, seed, "t").standard_normal()
                    for metric, value in (("seconds_per_epoch", spe), ("train_seconds", 12 * spe),
                                          ("epochs", 12), ("best_epoch", 9), ("params", PARAMS[model])):
                        rows.append({**base, "condition": "train", "level": None, "metric": metric, "value": value})
            write_json(root / "protocols" / f"{pname}@{name}-{checksum[:8]}.json", {  # as the runner names it
                "protocol": pname, "definition": d, "profile": "quick", "seeds": seeds,
                "corpus": {"name": name, "checksum": checksum, "synthetic": synthetic, "path": f"/data/{name}"},
                "provenance": {"avbench": "0.1.0", "git_revision": "0123456789abcdef", "python": "3.12.0",
                               "torch": "2.13.0", "machine": {"platform": "Linux-test", "processor": "x86_64",
                                                              "cpu_threads": 2, "cuda": None}},
                "entries": [], "train": []})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.drop_duplicates(subset=COLUMNS[:-1])
    write_table(root / "results.csv", with_summaries(table, root))
    return root


def add_histories(root: Path, epochs: int = 5) -> None:
    """Gives every trained unit of a :func:`make_run` directory a ``train.json`` with a plausible
    per-epoch history, listed in its protocols' manifests as avbench.runner.run lists them."""
    import json

    results = pd.read_csv(root / "results.csv")
    trained = results[results["condition"] == "train"]
    for manifest in (root / "protocols").glob("*.json"):
        m = json.loads(manifest.read_text())
        units = trained[trained["protocol"] == m["protocol"]].drop_duplicates(["corpus", "model", "variant",
                                                                                "regime", "seed"])
        for u in units.itertuples():
            rel = Path("units", u.corpus, u.model, u.variant, u.regime, f"seed-{u.seed:02d}", "train.json")
            rng = _rng(u.corpus, u.model, u.variant, u.regime, u.seed, "history")
            history = [{"epoch": e, "train_loss": 1.8 * 0.8 ** e + 0.02 * rng.random(),
                        "dev_loss": 1.6 + 0.01 * (e - 3) ** 2 + 0.02 * rng.random(),
                        "dev_micro_f1": 0.5 + 0.03 * e + 0.01 * rng.random(),
                        "dev_macro_f1": 0.45 + 0.03 * e + 0.01 * rng.random()} for e in range(1, epochs + 1)]
            write_json(root / rel, {"profile": {"name": "quick"}, "history": history, "best_epoch": 3})
            m["train"].append({"unit": {"corpus": u.corpus, "model": u.model, "variant": u.variant,
                                        "regime": u.regime, "seed": int(u.seed)}, "train": rel.as_posix()})
        write_json(manifest, m)


def add_probabilities(root: Path, clips: int = 40, classes: int = 6) -> None:
    """Gives every unit :func:`add_histories` wrote the evaluation records and per-clip class probabilities
    (``evals/<condition>.json`` and ``.npz``) of its full and clipped conditions, as avbench.worker writes them:
    the top probability grows with the unit's score, over-confident without a modality."""
    import json

    results = pd.read_csv(root / "results.csv")
    for manifest in (root / "protocols").glob("*.json"):
        for entry in json.loads(manifest.read_text())["train"]:
            u, evals = entry["unit"], root / Path(entry["train"]).parent / "evals"
            for condition in ("full", "clip_audio", "clip_visual"):
                scored = results[(results["corpus"] == u["corpus"]) & (results["model"] == u["model"])
                                 & (results["variant"] == u["variant"]) & (results["regime"] == u["regime"])
                                 & (results["seed"] == u["seed"]) & (results["condition"] == condition)
                                 & (results["metric"] == "micro_f1")]
                if scored.empty:
                    continue
                rng = _rng(u["corpus"], u["model"], u["variant"], u["regime"], u["seed"], condition)
                label = rng.integers(0, classes, clips)
                right = rng.random(clips) < float(scored["value"].iloc[0])
                pred = np.where(right, label, (label + 1) % classes)
                top = np.clip(rng.normal(0.55 if condition == "full" else 0.75, 0.1, clips), 1 / classes + 0.01, 0.99)
                probs = np.tile(((1 - top) / (classes - 1))[:, None], (1, classes))
                probs[np.arange(clips), pred] = top
                ids = [f"clip{i:03d}" for i in range(clips)]
                write_json(evals / f"{condition}.json", {
                    "condition": condition, "level": None, "unit": u, "status": "ok", "schema_version": 2,
                    "predictions": {"clip_id": ids, "label": label.tolist(), "pred": pred.tolist()}})
                np.savez_compressed(evals / f"{condition}.npz", clip_id=np.array(ids), probs=probs.astype(np.float32))


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """Every protocol, two corpora: tables, statistics and index (figures are drawn in figure_report)."""
    root = make_run(tmp_path_factory.mktemp("run"), corpora=("crema-d", "msp-improv"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no builder may fail silently
        report = build_report(root, figures=False, strict=True)
    return root, report


@pytest.fixture(scope="module")
def figure_report(tmp_path_factory):
    """Every protocol, one corpus, with figures."""
    root = make_run(tmp_path_factory.mktemp("run1"), corpora=("crema-d",))
    add_histories(root)
    add_probabilities(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = build_report(root, strict=True)
    return root, report


# ------------------------------------------------------------------------------------ helpers
def latex_rows(tex: str) -> list[tuple[str | None, list[str]]]:
    """(section, cells) for each body row of a booktabs table; section rows set the section."""
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule")[0]
    out, section = [], None
    for line in body.splitlines():
        line = line.strip()
        if not line.endswith("\\\\"):
            continue
        m = re.match(r"\\multicolumn\{\d+\}\{c\}\{\\textit\{(.*)\}\} \\\\$", line)
        if m:
            section = m.group(1)
            continue
        out.append((section, [c.strip() for c in line[:-2].split(" & ")]))
    return out


def number(cell: str) -> float:
    return float(re.search(r"\d+\.\d+", cell).group())


def check_braces(tex: str) -> None:
    depth = 0
    for i, ch in enumerate(tex):
        if ch in "{}" and i and tex[i - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "closing brace without opening one"
    assert depth == 0, "unbalanced braces"


def md_table_blocks(md: str) -> list[list[str]]:
    blocks, cur = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def n_cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1


# ------------------------------------------------------------------------------------ tests
def test_every_artifact_is_produced(full_report, figure_report):
    for root, _ in (full_report, figure_report):
        for key in ("table1", "table2", "table3", "table4", "table5", "robustness"):
            for ext in ("tex", "md", "csv"):
                assert (root / "report" / "tables" / f"{key}.{ext}").stat().st_size > 0, f"{key}.{ext}"
    root, report = figure_report
    out = root / "report"
    for stem in ("fig3_trials_boxplot", "fig4_regimes_clipping", "fig5_masking", "fig6_self_attention", "fig7_token",
                 "fig8_upscaled", "figR1_misalignment", "figR2_occlusion", "figR3_noise", "figT1_training_curves",
                 "fig_reliability", "fig_ece_masking", "fig_power"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"
    assert not report.skipped, report.skipped
    for f in ("index.md", "index.html", "stats.csv", "data/results.csv", "data/provenance.json", "data/histories.csv",
              "data/confidences.csv"):
        assert (out / f).exists(), f
    index = (out / "index.md").read_text()
    for stem in ("fig3_trials_boxplot.png", "fig5_masking.png", "figR3_noise.png"):
        assert f"](figures/{stem})" in index
    assert "## Skipped" not in index


def test_latex_structure_is_valid(full_report):
    root, report = full_report
    for tex_file in sorted((root / "report" / "tables").glob("*.tex")):
        tex = tex_file.read_text()
        check_braces(tex)
        for token in ("\\begin{tabular}", "\\end{tabular}", "\\toprule", "\\midrule", "\\bottomrule", "\\caption{",
                      "\\label{tab:avbench-"):
            assert tex.count(token) >= 1, (tex_file.name, token)
        assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
        assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
        spec = re.search(r"\\begin\{tabular\}\{@\{\}(l[c]+)@\{\}\}", tex).group(1)
        for _, cells in latex_rows(tex):
            assert len(cells) == len(spec), (tex_file.name, cells)
        assert "trials" in tex or tex_file.stem == "table5"
        assert "SYNTHETIC" in tex


def test_captions_state_the_test(full_report):
    root, _ = full_report
    tex = (root / "report" / "tables" / "table1.tex").read_text()
    assert "one-tailed paired t-test" in tex and "$\\alpha$ = 0.05" in tex and "Holm correction over the comparisons of each cell" in tex
    assert f"over {SEEDS} trials" in tex
    t5 = (root / "report" / "tables" / "table5.tex").read_text()
    assert "measured on" in t5 and "x86\\_64, 2 CPU threads" in t5 and "707{,}474" in t5


def _expected_marks(raw: pd.DataFrame, where: dict, metric: str, proposed_filter: dict, others: dict,
                    correction: str = "none") -> str:
    res = stats.compare(raw, metric, proposed_filter, others, correction=correction)
    return stats.significance_mark(res)


@pytest.mark.parametrize("correction", ["none", "holm"])
def test_table1_marks_match_stats(tmp_path, full_report, correction):
    root, _ = full_report
    report = build_report(root, tmp_path / "r", correction=correction, figures=False, strict=True)
    tex = (tmp_path / "r" / "tables" / "table1.tex").read_text()
    raw = pd.read_csv(root / "results.csv")
    sub = raw[raw["protocol"].isin(["standard", "optimized"]) & (raw["condition"] == "full")
              & raw["metric"].isin(["micro_f1", "macro_f1"])].drop(columns="protocol")
    corpora = sorted(sub["corpus"].unique())
    expected_any = False
    rows = latex_rows(tex)
    for section, regime in (("Standard Training Procedure", "standard"), ("Optimized Training Procedure", "optimized")):
        ours = [c for s, c in rows if s == section and c[0].startswith("AuxFormer")][0]
        others = [c for s, c in rows if s == section and not c[0].startswith("AuxFormer")]
        assert all("*" not in cell for row in others for cell in row[1:])
        j = 1
        for corpus in corpora:
            for metric in ("micro_f1", "macro_f1"):
                res = stats.compare_all(sub[(sub["corpus"] == corpus) & (sub["regime"] == regime)], metric,
                                        proposed="auxformer", correction=correction)
                want = stats.significance_mark(res)
                expected_any |= bool(want)
                assert ours[j].endswith("*") == bool(want), (section, corpus, metric, ours[j], res)
                j += 1
    assert expected_any, "the fixture should make some cells significant"
    assert report.tables[0].comparisons["correction"].eq(correction).all()


def test_table2_marks_include_baseline4(full_report):
    root, _ = full_report
    raw = pd.read_csv(root / "results.csv")
    tex = (root / "report" / "tables" / "table2.tex").read_text()
    rows = latex_rows(tex)
    corpora = sorted(raw["corpus"].unique())
    for section, cond, b4 in (("Visual Features Only", "clip_audio", "unimodal-visual"),
                              ("Acoustic Features Only", "clip_visual", "unimodal-audio")):
        labels = [c[0] for s, c in rows if s == section]
        assert labels[:2] == ["AuxFormer (ours)", "Baseline 4"] and len(labels) == 5
        ours = [c for s, c in rows if s == section][0]
        j = 1
        for corpus in corpora:
            for metric in ("micro_f1", "macro_f1"):
                t = raw[(raw["corpus"] == corpus) & (raw["protocol"] == "clipping")]
                prop = {"model": "auxformer", "condition": cond, "regime": "optimized"}
                others = {m: {"model": m, "condition": cond, "regime": "optimized"}
                          for m in ("baseline1", "mult", "xmodal")}
                others["b4"] = {"model": b4, "condition": "full", "regime": "standard"}
                want = _expected_marks(t, {}, metric, prop, others)
                assert ours[j].endswith("*") == bool(want), (section, corpus, metric)
                # baseline 4's cell is its mean full-condition score
                b4_row = [c for s, c in rows if s == section][1]
                mean = t[(t["model"] == b4) & (t["condition"] == "full") & (t["metric"] == metric)]["value"].mean()
                assert number(b4_row[j]) == pytest.approx(round(mean, 3), abs=1e-9)
                j += 1


def test_bold_is_the_best_of_each_column(full_report):
    root, _ = full_report
    for key in ("table1", "table2", "table3", "table4"):
        rows = latex_rows((root / "report" / "tables" / f"{key}.tex").read_text())
        sections = sorted({s for s, _ in rows}, key=str)
        for section in sections:
            block = [c for s, c in rows if s == section]
            for j in range(1, len(block[0])):
                values = [number(r[j]) for r in block]
                bold = [number(r[j]) for r in block if "\\textbf{" in r[j]]
                assert bold and all(b == max(values) for b in bold), (key, section, j)
                assert len(bold) == values.count(max(values))
    t5 = (root / "report" / "tables" / "table5.tex").read_text()
    assert "\\textbf" not in t5


def test_table_means_are_means_over_trials(full_report):
    root, report = full_report
    raw = pd.read_csv(root / "results.csv")
    csv = pd.read_csv(root / "report" / "tables" / "table1.csv")
    row = csv[(csv["row"] == "Baseline 1") & (csv["section"] == "Optimized Training Procedure")].iloc[0]
    corpus = sorted(raw["corpus"].unique())[0]
    want = raw[(raw["model"] == "baseline1") & (raw["regime"] == "optimized") & (raw["condition"] == "full")
               & (raw["metric"] == "micro_f1") & (raw["corpus"] == corpus) & (raw["protocol"] == "optimized")]["value"]
    assert row["n"] == SEEDS and row["mean"] == pytest.approx(want.mean())
    assert row["sd"] == pytest.approx(want.std(ddof=1))


def test_table3_and_4_layout(full_report):
    root, _ = full_report
    t3 = latex_rows((root / "report" / "tables" / "table3.tex").read_text())
    assert [c[0] for _, c in t3] == ["No Pos. Encoding", "1-D Pos. Encoding"]
    t4 = latex_rows((root / "report" / "tables" / "table4.tex").read_text())
    assert [c[0] for _, c in t4][:3] == ["(0.20, 0.40, 0.40)", "(0.30, 0.35, 0.35)", "(0.33, 0.33, 0.33)"]
    assert len(t4) == 11
    assert "$(\\lambda_{av}, \\lambda_{a}, \\lambda_{v})$" in (root / "report" / "tables" / "table4.tex").read_text()


def test_markdown_tables_have_consistent_columns(full_report):
    root, _ = full_report
    files = sorted((root / "report" / "tables").glob("*.md")) + [root / "report" / "index.md"]
    n_tables = 0
    for f in files:
        for block in md_table_blocks(f.read_text()):
            counts = {n_cells(line) for line in block}
            assert len(counts) == 1, (f.name, block[:3])
            assert re.match(r"^\|( :?-+:? \|)+$", block[1]), (f.name, block[1])
            n_tables += 1
    assert n_tables >= 7


def test_synthetic_banner_only_when_synthetic(tmp_path):
    fake = make_run(tmp_path / "synth", ("standard", "optimized"), synthetic=True)
    real = make_run(tmp_path / "real", ("standard", "optimized"), synthetic=False)
    build_report(fake, figures=False, strict=True)
    build_report(real, figures=False, strict=True)
    for root, want in ((fake, True), (real, False)):
        index = (root / "report" / "index.md").read_text()
        assert ("SYNTHETIC CORPUS" in index) is want
        assert ("SYNTHETIC" in (root / "report" / "tables" / "table1.tex").read_text()) is want
        assert ("SYNTHETIC" in (root / "report" / "index.html").read_text()) is want
        assert ("— SYNTHETIC;" in index) is want and ("— real;" in index) is not want
    assert "CREMA-D" in (tmp_path / "real" / "report" / "tables" / "table1.md").read_text()


def test_missing_protocols_are_skipped_and_listed(tmp_path):
    root = make_run(tmp_path / "run", ("optimized",), seeds=5)
    report = build_report(root, strict=True)
    index = (root / "report" / "index.md").read_text()
    # the Bayesian and calibration artifacts need only full-input scores (avbench.report.significance)
    assert [t.key for t in report.tables] == ["table1", "table5", "bayes", "calibration"]
    assert {f.key for f in report.figures} == {"fig3_trials_boxplot", "fig_posterior", "fig_power"}
    skipped = "\n".join(index.split("## Skipped", 1)[1].splitlines())
    for artifact, protocol in (("Table 2", "clipping"), ("Table 3", "posenc"), ("Table 4", "lambda-grid"),
                               ("Fig. 4", "training-regimes"), ("Fig. 5", "masking"), ("Fig. 6", "self-attention"),
                               ("Fig. 7", "token"), ("Fig. 8", "upscaled"), ("Fig. R1", "misalignment"),
                               ("Fig. R2", "occlusion"), ("Fig. R3", "noise")):
        line = next(l for l in skipped.splitlines() if l.startswith(f"| {artifact} "))
        assert protocol in line, line
    t1 = (root / "report" / "tables" / "table1.tex").read_text()
    assert "Standard Training" not in t1 and "Standard training is not in this run" in t1


def test_unpaired_seeds_do_not_crash(tmp_path):
    root = make_run(tmp_path / "run", ("optimized",), drop_seed=("mult", 3))
    report = build_report(root, figures=False, strict=True)
    t1 = report.tables[0]
    assert any("No significance test in 2 cell(s)" in n and "Baseline 2 lacks trial(s) [3]" in n for n in t1.notes)
    assert "No test (hence no *) in 2 cell(s): trials are not paired across rows" in t1.caption
    assert "Baseline 2 has 5" in (root / "report" / "tables" / "table1.tex").read_text()


def test_report_rebuilds_from_its_own_data(tmp_path):
    root = make_run(tmp_path / "run", ("optimized", "clipping"))
    build_report(root, tmp_path / "rep", figures=False, strict=True)
    first = (tmp_path / "rep" / "tables" / "table2.tex").read_text()
    shutil.rmtree(root)
    again = build_report(tmp_path / "rep" / "data", tmp_path / "rep", figures=False, strict=True)
    assert (tmp_path / "rep" / "tables" / "table2.tex").read_text() == first
    assert again.run.synthetic and "x86\\_64, 2 CPU threads" in (tmp_path / "rep" / "index.md").read_text()


def test_report_into_an_existing_directory_leaves_no_stale_artifacts(tmp_path):
    """Rebuilt from a narrower run, with --no-html, into the same directory: only this report's files."""
    wide = make_run(tmp_path / "wide", ("optimized", "clipping"))
    build_report(wide, tmp_path / "rep", figures=False, strict=True)
    assert (tmp_path / "rep" / "tables" / "table2.tex").exists()
    (tmp_path / "rep" / "notes.txt").write_text("mine")  # not avbench's: kept
    narrow = make_run(tmp_path / "narrow", ("optimized",))
    report = build_report(narrow, tmp_path / "rep", figures=False, strict=True, html_page=False)
    written = {p.resolve() for p in report.files}
    left = {p.resolve() for p in (tmp_path / "rep").rglob("*") if p.is_file()}
    assert left - written == {(tmp_path / "rep" / "notes.txt").resolve(),
                              (tmp_path / "rep" / ".avbench-report.json").resolve()}


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} α ± λ") == r"a\_b \& 50\% \#1 \{x\} $\alpha$ $\pm$ $\lambda$"
    assert latex_escape("--profile 1–2") == "-{}-profile 1--2"


def test_the_figure_style_is_a_matplotlib_style_of_the_installed_package():
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("avbench.report.avbench"):  # what a user's own plot would apply
        assert {k: matplotlib.rcParams[k] for k in RC} == dict(RC) and len(RC) == 25
    cycle = RC["axes.prop_cycle"].by_key()["color"]  # the palette's colours, each once
    assert len(set(cycle)) == len(cycle) == 8 and set(cycle) <= set(OKABE_ITO.values())


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_tables_compile_with_pdflatex(full_report, tmp_path):
    root, _ = full_report
    inputs = "\n".join(f"\\input{{{p.as_posix()}}}\\clearpage"
                       for p in sorted((root / "report" / "tables").glob("*.tex")))
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
                   "\\usepackage{booktabs}\n\\usepackage[margin=1.5cm]{geometry}\n\\begin{document}\n"
                   f"{inputs}\n\\end{{document}}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_cli_report_on_a_tiny_real_run(tiny_store, tmp_path):
    try:
        from avbench.data import load_splits, open_corpus  # noqa: F401 -- the data layer the runner needs
    except ImportError:
        pytest.skip("the data layer (avbench.data.open_corpus / load_splits) is not there yet")
    from click.testing import CliRunner

    import json

    from avbench.cli import main
    from avbench.runner import run

    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for protocol in ("optimized", "posenc"):
            run(protocol, ["auxformer"], corpus=tiny_store.path, profile="smoke", seeds=2, out=out,
                progress=False, echo=lambda s: None)
    result = CliRunner().invoke(main, ["report", str(out), "--correction", "holm"])
    assert result.exit_code == 0, result.output
    index = (out / "report" / "index.md").read_text()
    assert (out / "report" / "tables" / "table3.tex").exists()  # found through the runner's manifests
    assert "SYNTHETIC CORPUS" in index and "smoke" in index and "torch" in index
    assert "Table 1" in index.split("## Skipped", 1)[1]   # one model: nothing to compare
    assert (out / "report" / "tables" / "table5.tex").exists()
    assert (out / "report" / "figures" / "fig3_trials_boxplot.png").exists()
    histories = pd.read_csv(out / "report" / "data" / "histories.csv")  # what the runner's fit recorded
    epochs = [len(json.loads(f.read_text())["history"]) for f in out.glob("units/**/train.json")]
    assert len(histories) == sum(epochs) > len(epochs) == 4  # 2 seeds x (default, pos_enc=false), 2 epochs each
    assert histories[["dev_loss", "dev_micro_f1", "dev_macro_f1"]].notna().all(axis=None)
    assert (out / "report" / "figures" / "figT1_training_curves.png").exists()
    bad = CliRunner().invoke(main, ["report", str(out), "--correction", "bogus"])
    assert bad.exit_code != 0 and "correction" in bad.output


def test_cli_default_correction_matches_library():
    from avbench.cli import REPORT_DEFAULT_CORRECTION
    from avbench.report import DEFAULT_CORRECTION

    assert REPORT_DEFAULT_CORRECTION == DEFAULT_CORRECTION == "holm"


def test_reference_lines_are_announced_only_when_drawn(tmp_path):
    from avbench.report import style
    from avbench.report.figures import fig4, fig5
    from avbench.report.rundata import load_run

    run = load_run(make_run(tmp_path / "run", ("training-regimes", "masking"), seeds=5))  # 5: Fig. 4 draws intervals
    run.table = run.table[~run.table["model"].astype(str).str.startswith("unimodal")].copy()  # no baseline 4
    wide = (run.table["model"] == "auxformer") & (run.table["condition"] == "full")
    run.table.loc[wide, "value"] = np.where(run.table.loc[wide, "seed"] == 1, 0.55, 0.99)  # a 95% CI past 1
    with style.styled():
        masking, regimes = fig5(ReportContext(run)), fig4(ReportContext(run))
    assert "dashed red line" not in masking.caption and "Solid horizontal line (in its colour): AuxFormer" in masking.caption
    assert "baseline 4" not in regimes.caption.lower()
    legend = [t.get_text() for t in regimes.fig.legends[0].get_texts()]
    assert not any("Baseline 4" in text for text in legend)
    for ax in regimes.fig.axes:  # error bars stay within F1's range
        tops = [seg[:, 1].max() for c in ax.collections if hasattr(c, "get_segments") for seg in c.get_segments()]
        assert tops and max(tops) <= 1.0


def _noisy_run(tmp_path: Path, protocols: tuple[str, ...], seeds: int = 2):
    """A run whose trials disagree by ~0.1 F1, as 2-3 trials of a small profile do: 95% t-intervals then
    reach past 0 and 1."""
    from avbench.report.rundata import load_run

    run = load_run(make_run(tmp_path / "run", protocols, seeds=seeds))
    perf = run.table["metric"].isin(["micro_f1", "macro_f1", "accuracy"])
    noise = np.random.default_rng(1).normal(0.15, 0.12, int(perf.sum()))
    run.table.loc[perf, "value"] = np.clip(run.table.loc[perf, "value"] + noise, 0, 1)
    return run


def test_curve_figures_show_every_trial_instead_of_bands(tmp_path):
    """With 2 trials a 95% band fills the axes: the curves show means and the trials themselves, in [0, 1]."""
    from matplotlib.collections import PolyCollection

    from avbench.conditions import get_kind
    from avbench.report import style
    from avbench.report.figures import fig5, kind_figure

    run = _noisy_run(tmp_path, ("masking", "misalignment"))
    with style.styled():
        figures = [fig5(ReportContext(run)), kind_figure(ReportContext(run), get_kind("shift"), "Fig. R1")]
    for res in figures:
        assert "Lines: mean over 2 trials; dots: the individual trials" in res.caption, res.caption
        assert "band" not in res.caption
        for ax in res.fig.axes:
            assert not [c for c in ax.collections if isinstance(c, PolyCollection)]  # no bands
            low, high = ax.get_ylim()
            assert 0.0 <= low < high <= 1.0
        dots = sum(len(c.get_offsets()) for ax in res.fig.axes for c in ax.collections)
        assert dots > 0
    masking = select_rows(run, condition=["mask_audio", "mask_visual"], regime="optimized")
    dots = sum(len(c.get_offsets()) for ax in figures[0].fig.axes for c in ax.collections)
    assert dots == len(masking[masking["model"].isin(["auxformer", "baseline1", "mult", "xmodal"])])


def select_rows(run, **filt):
    from avbench.results import select

    return select(run.table, variant="default", metric="micro_f1", **filt)


def test_bar_figures_keep_f1_axes_and_error_bars_within_0_1(tmp_path):
    from avbench.report import style
    from avbench.report.figures import fig4, fig6

    run = _noisy_run(tmp_path, ("clipping", "self-attention"))
    five = _noisy_run(tmp_path / "five", ("clipping",), seeds=5)  # Fig. 4 draws intervals from 5 trials up
    with style.styled():
        regimes, ablation, dotted = fig4(ReportContext(five)), fig6(ReportContext(run)), fig4(ReportContext(run))
    # below 5 trials Fig. 4 shows each trial as a dot instead of an interval, and says so
    assert "dots: the individual trials (fewer than 5 trials: no error bars)" in dotted.caption
    assert "t-intervals" not in dotted.caption
    assert not [c for ax in dotted.fig.axes for c in ax.collections if hasattr(c, "get_segments")]
    shown = select_rows(run, condition=["full", "clip_audio", "clip_visual"], regime="optimized")
    shown = shown[shown["model"].isin(["auxformer", "baseline1", "mult", "xmodal"])]  # AV, V and A of each
    assert sum(len(c.get_offsets()) for ax in dotted.fig.axes for c in ax.collections) == len(shown)
    assert dotted.title == "Optimized training, missing modality"  # only the regime present
    for res in (regimes, ablation):
        assert "cut at the limits of the score (0 and 1)" in res.caption
        for ax in res.fig.axes:
            assert ax.get_ylim()[1] <= 1.0
            ends = [seg[:, 1] for c in ax.collections if hasattr(c, "get_segments") for seg in c.get_segments()]
            assert ends and 0.0 <= min(e.min() for e in ends) and max(e.max() for e in ends) <= 1.0
    zoomed = any(ax.get_ylim()[0] > 0 for ax in ablation.fig.axes)
    assert ("does not start at 0" in ablation.caption) is zoomed
    labels = [t.get_text() for t in regimes.fig.legends[0].get_texts()]
    assert labels and all(text.strip() for text in labels)  # no blank entry
    assert "Optimized training" not in labels  # one regime: the caption names it, no hatch to explain


def test_box_plot_caption_names_outliers_only_when_drawn(tmp_path):
    from avbench.report import style
    from avbench.report.figures import fig3
    from avbench.report.rundata import load_run

    with style.styled():  # with 3 trials no point lies 1.5 interquartile ranges beyond the box
        plain = fig3(ReportContext(load_run(make_run(tmp_path / "three", ("optimized",), seeds=3))))
    run = load_run(make_run(tmp_path / "run", ("optimized",), seeds=8))
    one = (run.table["model"] == "mult") & (run.table["seed"] == 0) & (run.table["condition"] == "full")
    run.table.loc[one, "value"] = 0.2
    with style.styled():
        outlier = fig3(ReportContext(run))
    assert "outlier" not in plain.caption and "outlier" in outlier.caption
    assert len(outlier.fig.legends[0].get_texts()) == len(plain.fig.legends[0].get_texts()) + 1


def test_a_plugin_artifact_registered_with_the_decorator_appears_in_the_report(tmp_path):
    """A table and a figure of a user's own, registered with @artifact, are built like the paper's: files,
    index entries, and the 'skipped' list with the protocol named in `needs` when the run lacks their input."""
    from avbench.report import Section, Skip, Table, artifact, unregister
    from avbench.report.figures import FigureResult
    from avbench.report.render import Cell, Row

    @artifact("seeds-table", kind="table", needs="optimized")
    def seeds_table(ctx):
        seeds = sorted(ctx.select(condition="full", metric="micro_f1")["seed"].unique())
        return Table("seeds-table", "Table S1", "Trials in the run", f"Seeds of the run.{ctx.synthetic_note}", "Seed",
                     [], ["count"], [Section(None, [Row("all", [Cell(str(len(seeds)))])])])

    @artifact("mine", kind="figure", needs="my-protocol", name="Fig. M (mine)")
    def my_figure(ctx):
        if ctx.select(condition="mine").empty:
            raise Skip("needs the condition 'mine'")
        return FigureResult("figM", "Fig. M", "Mine", "", None)

    try:
        report = build_report(make_run(tmp_path / "run", ("optimized",), seeds=3), strict=True)
    finally:
        unregister("seeds-table")
        unregister("mine")
    assert [t.key for t in report.tables][-1] == "seeds-table"
    assert "| all | 3 |" in (report.out / "tables" / "seeds-table.md").read_text()
    index = report.index.read_text()
    assert "Table S1: Trials in the run" in index and "SYNTHETIC corpus" in index.split("Table S1")[-1]
    assert "| Fig. M (mine) | needs the condition 'mine' | my-protocol |" in index
    again = build_report(tmp_path / "run", tmp_path / "again", figures=False, strict=True)
    assert "seeds-table" not in [t.key for t in again.tables]  # unregistered: gone


def test_context_owns_the_regime_and_baseline4_policies(tmp_path):
    from avbench.report.rundata import load_run

    ctx = ReportContext(load_run(make_run(tmp_path / "run", ("clipping",), seeds=2)))
    rows = ctx.select(condition="clip_audio")
    assert ctx.regimes(rows) == ["standard", "optimized"] and ctx.regime(rows) == "optimized"
    assert ctx.regime(ctx.select(regime="standard")) == "standard"
    # baseline 4 is trained with the standard regime only: asked for optimized, the standard rows are read
    assert ctx.baseline4("visual", "optimized") == {"model": "unimodal-visual", "variant": "default",
                                                    "regime": "standard", "condition": "full", "level": None}
    assert ReportContext(load_run(make_run(tmp_path / "none", ("optimized",), seeds=2))).baseline4(
        "audio", "optimized") is None


def test_the_report_entry_point_group_takes_artifacts_and_refuses_bare_functions(tmp_path):
    """A package names its artifacts in the avbench.report group: an Artifact (or a module registering with
    @artifact) is taken; a bare builder function is refused with the entry point named."""
    from types import SimpleNamespace

    from avbench.registry import RegistryError
    from avbench.report import ARTIFACTS, Artifact, unregister
    from avbench.report.artifacts import planned
    from avbench.report.rundata import load_run

    def build(ctx):
        raise AssertionError("not built here")

    def entry_point(obj):
        return SimpleNamespace(name="theirs", value="their_pkg:theirs", load=lambda: obj)

    with pytest.raises(RegistryError, match="theirs.*their_pkg:theirs.*@artifact.*Got function"):
        ARTIFACTS._load_entry_point(entry_point(build))
    ARTIFACTS._load_entry_point(entry_point(Artifact("theirs", "figure", "their-protocol", "Fig. T", build)))
    try:
        keys = [a.key for a in planned(ReportContext(load_run(make_run(tmp_path / "run", ("optimized",), seeds=2))))]
    finally:
        unregister("theirs")
    assert keys[-1] == "theirs" and keys[:2] == ["table1", "table2"]
