"""Given weights (``avbench run --weights MODEL=PATH``): units scored without training, kept apart from
trained ones, fed what the weights expect, and bad input refused before any work."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from avbench.cli import main
from avbench.conditions import Condition
from avbench.data.splits import load_splits
from avbench.models.auxformer import from_official
from avbench.normalization import fit_normalizer
from avbench.profiles import get_profile
from avbench.training import predict
from test_fidelity import released_state_dict

HEADS = 2


def _released(tiny_store, path, seed=0):
    """A released-layout state dict for the tiny store (width = its visual size: no visual projection)."""
    sd = released_state_dict(classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                             d=tiny_store.visual_dim, layers=1, seed=seed)
    torch.save(sd, path)
    return sd


def _run(tiny_store, out, *extra):
    return CliRunner().invoke(main, ["run", "-p", "optimized", "-m", "auxformer", "--corpus", str(tiny_store.path),
                                     "--profile", "smoke", "--seeds", "1", "--out", str(out), "--quiet",
                                     "--set", f"heads={HEADS}", *extra])


def test_released_weights_are_scored_as_from_official_scores_them(tiny_store, tmp_path):
    sd = _released(tiny_store, tmp_path / "final_head.pt")
    result = _run(tiny_store, tmp_path / "run", "--weights", f"auxformer={tmp_path / 'final_head.pt'}")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "run" / "results.csv")
    rows = table[(table["condition"] == "full") & (table["metric"] == "macro_f1")]
    assert set(rows["regime"]) == {"pretrained"} and rows["variant"].iloc[0].startswith("weights-")

    model = from_official(sd, num_classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                          visual_dim=tiny_store.visual_dim, heads=HEADS)
    parts = load_splits(tiny_store, 1)[0].indices(tiny_store.speakers)
    norm = fit_normalizer(tiny_store, parts["train"]).only(("visual",))  # released code: visual only
    direct = predict(model, tiny_store, parts["test"], profile=get_profile("smoke"), device=torch.device("cpu"),
                     condition=Condition("full"), norm=norm)
    pred, label = direct.pred, direct.label
    unit = next((tmp_path / "run").glob("units/**/pretrained/seed-00"))
    scored = json.loads(next(unit.glob("evals/full*.json")).read_text())["predictions"]
    assert scored["pred"] == pred.tolist() and scored["label"] == label.tolist()

    record = json.loads((unit / "train.json").read_text())
    assert record["history"] == [] and record["weights"]["format"] == "released"
    assert record["unit"]["variant"] == "weights-" + record["weights"]["sha256"][:12]
    assert record["normalization"]["streams"] == ["visual"]


def test_units_with_weights_are_apart_from_trained_ones_and_other_weights_are_not_reused(tiny_store, tmp_path):
    out = tmp_path / "run"
    assert _run(tiny_store, out).exit_code == 0  # trained
    _released(tiny_store, tmp_path / "a.pt", seed=1)
    first = _run(tiny_store, out, "--weights", f"auxformer={tmp_path / 'a.pt'}")
    assert first.exit_code == 0 and "given weights loaded" in first.output
    again = _run(tiny_store, out, "--weights", f"auxformer={tmp_path / 'a.pt'}")
    assert again.exit_code == 0 and "reused" in again.output
    _released(tiny_store, tmp_path / "a.pt", seed=2)  # other weights, same path
    third = _run(tiny_store, out, "--weights", f"auxformer={tmp_path / 'a.pt'}")
    assert third.exit_code == 0 and "given weights loaded" in third.output
    table = pd.read_csv(out / "results.csv")
    units = table[["variant", "regime"]].drop_duplicates()
    assert len(units) == 3 and (units["regime"] == "pretrained").sum() == 2
    assert not units[units["regime"] != "pretrained"]["variant"].str.startswith("weights-").any()


def test_an_avbench_model_pt_is_taken_too(tiny_store, tmp_path):
    out = tmp_path / "run"
    assert _run(tiny_store, out).exit_code == 0
    trained = next(out.glob("units/**/optimized/seed-00"))
    result = _run(tiny_store, tmp_path / "run2", "--weights", f"auxformer={trained / 'model.pt'}")
    assert result.exit_code == 0, result.output
    unit = next((tmp_path / "run2").glob("units/**/pretrained/seed-00"))
    record = json.loads((unit / "train.json").read_text())
    assert record["weights"]["format"] == "avbench" and record["normalization"]["streams"] == ["audio", "visual"]
    ours = json.loads(next(unit.glob("evals/full*.json")).read_text())["predictions"]
    theirs = json.loads(next(trained.glob("evals/full*.json")).read_text())["predictions"]
    assert ours["pred"] == theirs["pred"]  # the same weights, normalisation and test clips


@pytest.mark.parametrize("entry, needle", [
    ("auxformer", "must look like MODEL=PATH"),
    ("mult={pt}", "must name a model of this run (auxformer). Got 'mult' instead"),
    ("auxformer={missing}", "must name an existing file for 'auxformer'"),
    ("auxformer={junk}", "cannot be read as one"),
    ("auxformer={wide}", "'out_layer.weight' has shape"),
    ("auxformer={partial}", "missing key"),
])
def test_bad_weights_are_refused_naming_the_option(tiny_store, tmp_path, entry, needle):
    sd = _released(tiny_store, tmp_path / "ok.pt")
    torch.save({k: v for k, v in sd.items() if not k.startswith("out_layer_aux")}, tmp_path / "partial.pt")
    torch.save(released_state_dict(classes=3, audio_dim=tiny_store.audio_dim, d=tiny_store.visual_dim, layers=1),
               tmp_path / "wide.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    entry = entry.format(pt=tmp_path / "ok.pt", missing=tmp_path / "nope.pt", junk=tmp_path / "junk.pt",
                         wide=tmp_path / "wide.pt", partial=tmp_path / "partial.pt")
    result = _run(tiny_store, tmp_path / "run", "--weights", entry)
    assert result.exit_code == 2, result.output
    assert "The '--weights' option must" in result.output and needle in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_released_weights_only_fit_auxformer(tiny_store, tmp_path):
    from avbench.pretrained import GivenWeights, build_model
    from avbench.validation import ValidationError

    _released(tiny_store, tmp_path / "ok.pt")
    given = GivenWeights("baseline1", str(tmp_path / "ok.pt"), "0" * 64, "released", {"heads": 2})
    with pytest.raises(ValidationError, match="only 'auxformer' loads"):
        build_model(given, tiny_store, torch.load(tmp_path / "ok.pt"))


def test_a_unit_scored_in_part_reloads_its_saved_weights_and_specs_carry_them(tiny_store, tmp_path):
    _released(tiny_store, tmp_path / "w.pt")
    out = tmp_path / "run"
    assert _run(tiny_store, out, "--weights", f"auxformer={tmp_path / 'w.pt'}").exit_code == 0
    unit = next(out.glob("units/**/pretrained/seed-00"))
    full = next(unit.glob("evals/full*.json"))
    before = json.loads(full.read_text())["predictions"]
    full.unlink()
    (unit / "record.json").unlink()
    assert _run(tiny_store, out, "--weights", f"auxformer={tmp_path / 'w.pt'}").exit_code == 0
    assert json.loads(full.read_text())["predictions"] == before  # model.pt reloaded, same scores

    emitted = CliRunner().invoke(main, ["plan", "-p", "optimized", "-m", "auxformer", "--corpus", str(tiny_store.path),
                                        "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "emit"),
                                        "--set", f"heads={HEADS}", "--weights", f"auxformer={tmp_path / 'w.pt'}",
                                        "--emit", str(tmp_path / "cmds.txt")])
    assert emitted.exit_code == 0, emitted.output
    spec = json.loads(next((tmp_path / "emit" / "specs").glob("*.json")).read_text())
    assert spec["weights"]["format"] == "released" and spec["unit"]["regime"] == "pretrained"
    done = CliRunner().invoke(main, ["run-unit", str(next((tmp_path / "emit" / "specs").glob("*.json")))])
    assert done.exit_code == 0, done.output
    scored = json.loads(next((tmp_path / "emit").glob("units/**/pretrained/seed-00/evals/full*.json")).read_text())
    assert scored["predictions"] == before


def test_released_weights_under_a_pooling_profile_are_noted(tiny_store, tmp_path):
    _released(tiny_store, tmp_path / "w.pt")
    result = CliRunner().invoke(main, ["run", "-p", "optimized", "-m", "auxformer", "--corpus", str(tiny_store.path),
                                       "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "run"),
                                       "--set", f"heads={HEADS}", "--weights", f"auxformer={tmp_path / 'w.pt'}",
                                       "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "fed its head every frame" in result.output and "auxformer/weights-" in result.output
    assert not (tmp_path / "run").exists()


def test_a_run_of_given_weights_is_reported_like_a_trained_one(tiny_store, tmp_path):
    """prepare -> run --weights -> report: the masking figure, Table R1 and the calibration artifacts show the
    given weights as the model's default, under the regime 'given weights', never as trained."""
    _released(tiny_store, tmp_path / "final_head.pt")
    result = CliRunner().invoke(main, ["run", "-p", "masking", "-p", "clipping", "-m", "auxformer", "--corpus",
                                       str(tiny_store.path), "--profile", "smoke", "--seeds", "2", "--out",
                                       str(tmp_path / "run"), "--quiet", "--set", f"heads={HEADS}", "--weights",
                                       f"auxformer={tmp_path / 'final_head.pt'}"])
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(main, ["status", str(tmp_path / "run")])
    assert status.exit_code == 0 and "auxformer/" in status.output, status.output  # no training time to read
    report = CliRunner().invoke(main, ["report", str(tmp_path / "run"), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    index = (tmp_path / "report" / "index.md").read_text()
    for built in ("Fig. 5", "Table R1", "Table C", "Fig. C2", "Table 5"):
        assert f"### {built}:" in index, built
    assert re.search(r"\| AuxFormer \(ours\) \| [\d,]+ \| – \|", index)  # Table 5: parameters, no training time
    captions = [line for line in index.splitlines() if line.startswith(("**Fig. 5", "**Table C", "**Fig. C2"))]
    assert captions and all("given weights, not trained by avbench" in c for c in captions), captions
    table = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(table.loc[table["model"] == "auxformer", "regime"]) == {"pretrained"}  # never trained here
