"""avbench compare: pairing, the per-cell statistics against scipy and avbench.stats, output, exit statuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as sst

from avbench import stats
from avbench.cli import main
from avbench.runcompare import compare_runs
from avbench.validation import ValidationError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "reports" / "example" / "data"


def copy_run(tmp_path: Path, name: str, change=None) -> Path:
    out = tmp_path / name
    shutil.copytree(EXAMPLE, out)
    if change is not None:
        t = pd.read_csv(out / "results.csv")
        change(t).to_csv(out / "results.csv", index=False)
    return out


def worse_auxformer(t: pd.DataFrame) -> pd.DataFrame:
    rows = (t["model"] == "auxformer") & (t["condition"] == "full") & t["metric"].isin(["micro_f1", "macro_f1"])
    t.loc[rows, "value"] -= 0.03 + 0.002 * t.loc[rows, "seed"]
    return t


def test_cells_match_scipy_and_the_t_posterior(tmp_path):
    b = copy_run(tmp_path, "b", worse_auxformer)
    res = compare_runs(EXAMPLE, b, rope=0.01)
    ta, tb = pd.read_csv(EXAMPLE / "results.csv"), pd.read_csv(b / "results.csv")
    cell = res.cells[(res.cells["protocol"] == "optimized") & (res.cells["model"] == "auxformer")
                     & (res.cells["condition"] == "full") & (res.cells["metric"] == "micro_f1")].iloc[0]
    pick = dict(protocol="optimized", model="auxformer", variant="default", regime="optimized", condition="full",
                metric="micro_f1")
    va = ta.loc[(ta[list(pick)] == pd.Series(pick)).all(axis=1)].sort_values("seed")["value"].to_numpy()
    vb = tb.loc[(tb[list(pick)] == pd.Series(pick)).all(axis=1)].sort_values("seed")["value"].to_numpy()
    assert cell["p"] == pytest.approx(sst.ttest_rel(vb, va).pvalue)
    post = stats.correlated_t(vb, va, 0.01)
    assert (cell["p_b_better"], cell["p_rope"], cell["p_b_worse"]) == pytest.approx(
        (post.p_better, post.p_rope, post.p_worse))
    assert cell["diff"] == pytest.approx((vb - va).mean()) and cell["n"] == len(va)
    # Holm over the cells of one metric, NaN (identical cells) kept out of the rejections
    micro = res.cells[res.cells["metric"] == "micro_f1"]
    assert micro["p_holm"].to_numpy() == pytest.approx(stats.correct(micro["p"], "holm")[1], nan_ok=True)
    # identical cells elsewhere: everything in the ROPE
    same = res.cells[(res.cells["model"] == "mult") & (res.cells["condition"] == "full")]
    assert (same["p_rope"] == 1.0).all()


def test_every_cell_agrees_with_per_cell_calls(tmp_path):
    rng = np.random.default_rng(0)

    def noisy(t):
        scores = ~t["metric"].isin(["params", "epochs", "best_epoch"])  # counts stay integers (results.csv checks)
        t["value"] = t["value"] + rng.normal(0, 0.01, len(t)) * scores
        return t
    b = copy_run(tmp_path, "b", noisy)
    res = compare_runs(EXAMPLE, b, rope=0.02, fail_if_worse=0.005)
    ta, tb = pd.read_csv(EXAMPLE / "results.csv"), pd.read_csv(b / "results.csv")
    key = ["corpus", "protocol", "model", "variant", "regime", "condition", "level", "metric"]
    merged = ta.merge(tb, on=key + ["seed"], suffixes=("_a", "_b"))
    for _, c in res.cells.sample(40, random_state=1).iterrows():  # the vectorised cells against per-cell calls
        rows = merged
        for k in key:
            rows = rows[rows[k].isna()] if k == "level" and pd.isna(c[k]) else rows[np.isclose(rows[k], c[k])] \
                if k == "level" else rows[rows[k] == c[k]]
        rows = rows.sort_values("seed")
        va, vb = rows["value_a"].to_numpy(), rows["value_b"].to_numpy()
        assert c["p"] == pytest.approx(sst.ttest_rel(vb, va).pvalue)
        with pytest.warns(stats.TooFewTrialsWarning):
            test = stats.paired_test(vb, va)
        assert (c["ci_low"], c["ci_high"]) == pytest.approx((test.ci_low, test.ci_high))
        post = stats.correlated_t(vb, va, 0.02)
        assert c["p_b_worse"] == pytest.approx(post.p_worse)
        assert c["p_b_worse_than_margin"] == pytest.approx(stats.correlated_t(vb, va, 0.005).p_worse)


def test_unpaired_units_are_listed(tmp_path):
    b = copy_run(tmp_path, "b", lambda t: t[~((t["model"] == "mult") & (t["seed"] == 2))])
    res = compare_runs(EXAMPLE, b)
    assert not res.unpaired.empty and set(res.unpaired["model"]) == {"mult"}
    assert set(res.unpaired["seed"]) == {2} and set(res.unpaired["run"]) == {str(EXAMPLE)}
    out = CliRunner().invoke(main, ["compare", str(EXAMPLE), str(b)])
    assert out.exit_code == 0, out.output
    assert "without a partner" in out.output and "only in" in out.output


def test_fail_if_worse_exits_3_and_names_the_cells(tmp_path):
    b = copy_run(tmp_path, "b", worse_auxformer)
    md = tmp_path / "diff.md"
    out = CliRunner().invoke(main, ["compare", str(EXAMPLE), str(b), "--fail-if-worse", "0.01", "--out", str(md)])
    assert out.exit_code == 3, out.output
    assert "FAIL" in out.output and "auxformer" in out.output.split("FAIL")[1]
    assert md.read_text().startswith("**Comparison.**")
    # a margin larger than the loss passes; so does an unchanged run
    assert CliRunner().invoke(main, ["compare", str(EXAMPLE), str(b), "--fail-if-worse", "0.05"]).exit_code == 0
    tex = tmp_path / "same.tex"
    ok = CliRunner().invoke(main, ["compare", str(EXAMPLE), str(EXAMPLE), "--fail-if-worse", "0.0", "--out", str(tex)])
    assert ok.exit_code == 0 and "\\begin{table}" in tex.read_text()


def test_pair_ignore_variant(tmp_path):
    b = copy_run(tmp_path, "b", lambda t: t[t["model"] == "auxformer"].assign(
        variant=lambda f: f["variant"].where(f["variant"] != "default", "default+mine")))
    a = copy_run(tmp_path, "a", lambda t: t[(t["model"] == "auxformer") & (t["variant"] == "default")])
    b2 = copy_run(tmp_path, "b2", lambda t: t[(t["model"] == "auxformer") & (t["variant"] == "default")].assign(
        variant="pos_enc=false"))
    plain = compare_runs(a, b2)
    assert plain.cells.empty and not plain.unpaired.empty  # nothing pairs by variant
    res = compare_runs(a, b2, pair_ignore=["variant"])
    assert not res.cells.empty and set(res.cells["variant_b"]) == {"pos_enc=false"}
    with pytest.raises(ValidationError, match="variants"):
        compare_runs(a, b, pair_ignore=["variant"])  # b holds several variants of auxformer per key


def test_different_corpora_or_splits_refused(tmp_path):
    def rename(t):
        t["corpus"] = t["corpus"] + "+splits-pub-1a2b3c4d"
        return t
    b = copy_run(tmp_path, "b", rename)
    out = CliRunner().invoke(main, ["compare", str(EXAMPLE), str(b), "--out", str(tmp_path / "x.csv")])
    assert out.exit_code == 2 and "different corpora or splits" in out.output and "splits" in out.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("args, what", [(["--rope", "0"], "--rope"), (["--rope", "1.5"], "--rope"),
                                         (["--metric", "nope"], "--metric"), (["--out", "x.txt"], "--out")])
def test_bad_options_exit_2(tmp_path, args, what):
    out = CliRunner().invoke(main, ["compare", str(EXAMPLE), str(EXAMPLE), *args])
    assert out.exit_code == 2 and what in out.output, out.output
