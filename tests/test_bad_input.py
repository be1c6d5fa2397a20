"""Every mistake gets one clear message: the exit status, the culprit named, no traceback, and
the results already stored left exactly as they were.

Exit status 2 is a bad option or name (a usage error), 1 bad data, a missing path or a place
avbench cannot write.  Each test runs against a finished smoke run (``run_dir``) or a copy of it.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from avbench.cli import main
from avbench.results import write_json



def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with a digest of its bytes."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def refused(args, culprit, status, *unchanged: Path):
    """Runs the CLI and checks the refusal: status, culprit in the message, no traceback,
    no Usage: block for data errors, nothing under ``unchanged`` modified."""
    before = [snapshot(d) for d in unchanged]
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert isinstance(r.exception, SystemExit), f"uncaught {r.exception!r}\n{r.output}"
    assert r.exit_code == status, r.output
    assert "Traceback" not in r.output
    for text in [culprit] if isinstance(culprit, str) else culprit:
        assert text in r.output, r.output
    if status == 1:
        assert "Usage:" not in r.output, r.output
    for d, earlier in zip(unchanged, before):
        # no record changed or removed; a unit that failed (the others go on) leaves its error
        # record, and the run rewrites what it derives from the records (table, manifests, plan)
        now, earlier = (records(snap) for snap in (snapshot(d), earlier))
        assert {k: now.get(k) for k in earlier} == earlier
        assert all(k.endswith("/error.json") for k in set(now) - set(earlier))
    return r.output


def records(snap: dict[str, str]) -> dict[str, str]:
    derived = ("results.csv", "protocols", "plans", "locks")
    return {k: v for k, v in snap.items() if k.split("/")[0] not in derived}


@pytest.fixture(scope="module")
def run_dir(tiny_store, tmp_path_factory):
    """A finished one-unit smoke run (baseline 2, standard protocol, one trial)."""
    out = tmp_path_factory.mktemp("run") / "out"
    r = CliRunner().invoke(main, ["run", "--protocol", "standard", "--model", "mult", "--corpus",
                                  str(tiny_store.path), "--profile", "smoke", "--seeds", "1", "--out", str(out),
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    return out


def run_args(store, out, *extra):
    return ["run", "--protocol", "standard", "--model", "mult", "--corpus", store, "--profile", "smoke",
            "--seeds", "1", "--out", out, "--quiet", *extra]


@pytest.fixture
def copy_run(run_dir, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


@pytest.fixture
def copy_store(tiny_store, tmp_path):
    dst = tmp_path / "store"
    shutil.copytree(tiny_store.path, dst)
    return dst


def unit_dir(out: Path) -> Path:
    return next(out.glob("units/*/smoke/mult/default/standard/seed-00"))


# ------------------------------------------------------------------ options and names
def test_set_without_equals(tiny_store, run_dir):
    refused(run_args(tiny_store.path, run_dir, "--set", "pos_enc"), ["--set", "key=value"], 2, run_dir)


def test_set_broken_yaml(tiny_store, run_dir):
    refused(run_args(tiny_store.path, run_dir, "--set", "heads=[2, 4"), ["--set", "heads=[2, 4", "YAML"], 2,
            run_dir)


def test_set_wrong_length(tiny_store, run_dir):
    args = run_args(tiny_store.path, run_dir, "--set", "loss_weights=[0.5, 0.5]")
    args[args.index("mult")] = "auxformer"
    refused(args, ["'loss_weights' option of model 'auxformer'", "a list of 3 non-negative numbers"], 2, run_dir)


def test_set_value_outside_the_options_constraint(tiny_store, run_dir):
    """Refused when the run is planned, before any training, on one line."""
    output = refused(run_args(tiny_store.path, run_dir, "--set", "out_dropout=1.5"),
                     "The 'out_dropout' option of model 'mult' must be a float in [0, 1). Got 1.5 instead.", 2,
                     run_dir)
    assert sum("out_dropout" in line for line in output.splitlines()) == 1, output


def test_set_unknown_option(tiny_store, run_dir):
    refused(run_args(tiny_store.path, run_dir, "--set", "pos_enc=false"), ["'mult' has no option 'pos_enc'"], 2,
            run_dir)


def test_set_misspelt_option_suggests_the_close_name(tiny_store, run_dir):
    refused(run_args(tiny_store.path, run_dir, "--set", "out_dropuot=0.1"),
            ["'mult' has no option 'out_dropuot'. Did you mean 'out_dropout'"], 2, run_dir)


def test_set_for_a_model_the_run_does_not_train(tiny_store, run_dir):
    refused(run_args(tiny_store.path, run_dir, "--set", "mlt.heads=2"),
            ["The '--set' option must name, before the '.', a model this run trains (mult)", "'mlt.heads'",
             "Did you mean 'mult'?"], 2, run_dir)


def test_set_value_that_would_leave_out(tiny_store, run_dir, monkeypatch):
    """A plugin's free-text option cannot make a variant directory outside --out."""
    import avbench.planning

    monkeypatch.setattr(avbench.planning, "check_config", lambda name, config: None)  # a plugin taking any text
    refused(run_args(tiny_store.path, run_dir, "--set", "tag=../../x"), ["--set", "../../x"], 2, run_dir)


def test_unknown_model(tiny_store, run_dir):
    args = run_args(tiny_store.path, run_dir)
    args[args.index("mult")] = "mlt"
    refused(args, ["Unknown model 'mlt'", "Did you mean"], 2, run_dir)


@pytest.mark.parametrize("option,value", [("--seeds", "0"), ("--jobs", "0"), ("--threads", "0")])
def test_run_counts_must_be_positive(tiny_store, run_dir, option, value):
    refused(run_args(tiny_store.path, run_dir, option, value), option, 2, run_dir)


def test_more_than_200_seeds_need_yes_and_the_unit_count_is_said(copy_store, tmp_path):
    args = run_args(copy_store, tmp_path / "run", "--seeds", "1000", "--model", "auxformer", "--dry-run")
    refused(args, ["The '--seeds' option asks for 1000 trials: 2,000 units would be planned (2 per trial)",
                   "--yes"], 2, copy_store)
    refused(["plan", *[a for a in args[1:] if a not in ("--quiet", "--dry-run")]], "2,000 units", 2, copy_store)
    refused(["reproduce", "--seeds", "201", "--profile", "smoke", "--corpus", copy_store, "--run-dir", tmp_path / "r"],
            ["201 trials", "per trial", "--yes"], 2, copy_store)
    assert not (tmp_path / "r").exists()
    r = CliRunner().invoke(main, list(map(str, run_args(copy_store, tmp_path / "run", "--seeds", "201", "--yes",
                                                        "--dry-run"))))
    assert r.exit_code == 0 and "201 unit(s) to train" in r.output, r.output


def test_a_corpus_of_two_speakers_is_a_data_error_naming_it(tmp_path):
    from avbench.data.synthetic import generate_synthetic

    store = generate_synthetic(tmp_path / "two", n_speakers=2, clips_per_speaker=6, visual_dim=4)
    output = refused(run_args(store.path, tmp_path / "run"), [f"{store.path}: the corpus has 2 speaker(s)",
                                                              "at least 3, one per partition"], 1)
    assert "make_split" not in output


def test_corpus_not_found(run_dir, tmp_path):
    refused(run_args(tmp_path / "no-such-store", run_dir), ["--corpus", "no-such-store", "not found"], 2, run_dir)


def test_corpus_directory_without_store(run_dir, tmp_path):
    refused(run_args(tmp_path, run_dir), ["--corpus", "no store.json"], 2, run_dir)


@pytest.mark.parametrize("option", ["--audio-dim", "--visual-dim", "--classes"])
def test_model_dims_must_be_positive(option):
    refused(["models", "list", option, "0"], option, 2)


def test_synth_speakers_must_be_positive(tmp_path):
    refused(["data", "synth", "--out", tmp_path / "s", "--speakers", "0"], "--speakers", 2)
    assert not (tmp_path / "s").exists()


def test_report_alpha_out_of_range(run_dir):
    refused(["report", run_dir, "--alpha", "2"], "--alpha", 2, run_dir)


# ------------------------------------------------------------------ protocol files
def protocol_file(tmp_path, text: str) -> Path:
    path = tmp_path / "proto.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, culprit", [
    ("name: p\nconditions:\n  - {kind: mask, modality: audio, levels: 0.5}\n", ["levels", "list", "0.5"]),  # scalar
    ("name: p\nmodels: mult\n", ["'models'", "list"]),  # a scalar where a list is expected
    ("name: ../../escape\nmodels: [mult]\n", ["'name'", "../../escape"]),  # a name escaping --out
    ("name: p\nmodels: [mult]\nvariants: [{name: a/b, config: {heads: 2}}]\n", ["variants", "a/b"]),  # a slash
])
def test_bad_protocol_file(text, culprit, tiny_store, run_dir, tmp_path):
    p = protocol_file(tmp_path, text)
    refused(["run", "--protocol", p, "--corpus", tiny_store.path, "--out", run_dir], culprit, 2, run_dir)


def test_binary_file_as_protocol(tiny_store, run_dir, tmp_path):
    p = tmp_path / "proto.yaml"
    p.write_bytes(bytes(range(256)) * 4)
    refused(["run", "--protocol", p, "--corpus", tiny_store.path, "--out", run_dir], str(p), 2, run_dir)


# ------------------------------------------------------------------ results tables
def test_binary_file_as_results_table(tmp_path):
    p = tmp_path / "results.csv"
    p.write_bytes(bytes(range(256)) * 4)
    refused(["report", p, "--out", tmp_path / "rep"], str(p), 1)
    assert not (tmp_path / "rep").exists()


def test_non_numeric_value_in_results(run_dir, tmp_path):
    lines = (run_dir / "results.csv").read_text().splitlines()
    cells = lines[3].split(",")
    cells[lines[0].split(",").index("value")] = "oops"
    lines[3] = ",".join(cells)
    p = tmp_path / "results.csv"
    p.write_text("\n".join(lines) + "\n")
    refused(["report", p, "--out", tmp_path / "rep"], [str(p), "line 4", "'value'", "oops"], 1)


def test_report_of_missing_run(tmp_path):
    refused(["report", tmp_path / "nothing-here"], ["nothing-here", "not found"], 1)


# ------------------------------------------------------------------ run records and checkpoints
def needs_weights(unit: Path) -> None:
    """Makes a finished unit need its weights again (a condition left to score): a finished unit is
    read from its JSON records alone, without loading its checkpoint."""
    next((unit / "evals").glob("*.json")).unlink()


def test_truncated_model_checkpoint(tiny_store, copy_run):
    model = unit_dir(copy_run) / "model.pt"
    model.write_bytes(model.read_bytes()[:100])
    needs_weights(unit_dir(copy_run))
    refused(run_args(tiny_store.path, copy_run), [str(model), "Delete it"], 1, copy_run)


def test_truncated_training_state(tiny_store, copy_run):
    d = unit_dir(copy_run)  # made to look mid-training: identity.json and a training state, no train.json
    write_json(d / "identity.json", {"unit": json.loads((d / "train.json").read_text())["unit"]})
    (d / "train.json").unlink()
    (d / "model.pt").rename(d / "train_state.pt")
    state = d / "train_state.pt"
    state.write_bytes(state.read_bytes()[:64])
    refused(run_args(tiny_store.path, copy_run), [str(state), "Delete it"], 1, copy_run)


def test_truncated_normalisation_statistics(tiny_store, copy_run):
    d = unit_dir(copy_run)
    write_json(d / "identity.json", {"unit": json.loads((d / "train.json").read_text())["unit"]})
    (d / "train.json").unlink()  # mid-training: the statistics are read back from the unit directory
    stats = d / "normalization.npz"
    stats.write_bytes(stats.read_bytes()[:50])
    refused(run_args(tiny_store.path, copy_run), [str(stats), "Delete it"], 1, copy_run)


def test_pickled_object_is_not_loaded(tiny_store, copy_run):
    """A checkpoint that would run code when unpickled is refused, not executed."""
    import torch

    marker = copy_run / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    model = unit_dir(copy_run) / "model.pt"
    torch.save({"x": Payload()}, model)
    needs_weights(unit_dir(copy_run))
    refused(run_args(tiny_store.path, copy_run), str(model), 1, copy_run)
    assert not marker.exists()


def test_corrupt_unit_record(tiny_store, copy_run):
    record = unit_dir(copy_run) / "train.json"
    record.write_bytes(b"\x00\xff" * 50)
    refused(run_args(tiny_store.path, copy_run), [str(record), "delete it"], 1, copy_run)


# ------------------------------------------------------------------ feature stores
def test_flipped_byte_in_features_is_refused(copy_store, run_dir):
    with open(copy_store / "visual.bin", "r+b") as f:
        f.seek(333)
        b = f.read(1)
        f.seek(333)
        f.write(bytes([b[0] ^ 0x40]))
    refused(run_args(copy_store, run_dir), ["visual.bin", "sha256", "corrupted"], 1, run_dir)


def test_nan_in_store_names_clip_frame_and_column(copy_store, run_dir):
    from avbench.data.store import FeatureStore, sha256_file

    store = FeatureStore.open(copy_store)
    o = store._offsets["visual"]
    data = np.memmap(copy_store / "visual.bin", dtype="<f2", mode="r+", shape=(int(o[-1]), store.visual_dim))
    data[o[5] + 3, 2] = np.inf
    data.flush()
    del data, store
    meta = json.loads((copy_store / "store.json").read_text())  # a store made elsewhere, checksums consistent
    meta["checksums"]["visual.bin"] = sha256_file(copy_store / "visual.bin")
    (copy_store / "store.json").write_text(json.dumps(meta))
    clip = FeatureStore.open(copy_store).manifest["clip_id"].iloc[5]
    refused(run_args(copy_store, run_dir), [str(copy_store), repr(clip), "frame 3", "column 2", "inf"], 1, run_dir)


@pytest.mark.parametrize("key,value", [("audio_dim", 0), ("visual_rate", -30.0), ("label_names", "anger")])
def test_store_json_values_must_make_sense(copy_store, run_dir, key, value):
    meta = json.loads((copy_store / "store.json").read_text())
    meta[key] = value
    (copy_store / "store.json").write_text(json.dumps(meta))
    refused(run_args(copy_store, run_dir), [str(copy_store / "store.json"), key, repr(value)], 1, run_dir)


def test_binary_store_json(copy_store, run_dir):
    (copy_store / "store.json").write_bytes(bytes(range(256)))
    refused(run_args(copy_store, run_dir), [str(copy_store / "store.json")], 1, run_dir)


# ------------------------------------------------------------------ data import
def import_inputs(tmp_path, rows):
    feats = tmp_path / "feats"
    feats.mkdir()
    rng = np.random.default_rng(0)
    for clip in ("c0", "c1", "c2"):
        np.save(feats / f"{clip}.audio.npy", rng.normal(size=(7, 3)).astype(np.float32))
        np.save(feats / f"{clip}.visual.npy", rng.normal(size=(4, 2)).astype(np.float32))
    (tmp_path / "clips.csv").write_text("clip_id,speaker,label\n" + "\n".join(rows) + "\n")
    return tmp_path / "clips.csv", feats


def test_import_empty_speaker(tmp_path):
    csv, feats = import_inputs(tmp_path, ["c0,s0,anger", "c1,,neutral", "c2,s2,anger"])
    refused(["data", "import", csv, feats, "--out", tmp_path / "st"], [str(csv), "line 3", "'speaker'", "empty"], 1)
    assert not (tmp_path / "st").exists()


def test_import_clip_id_escaping_feature_dir(tmp_path):
    csv, feats = import_inputs(tmp_path, ["c0,s0,anger", "../secret,s1,neutral", "c2,s2,anger"])
    refused(["data", "import", csv, feats, "--out", tmp_path / "st"], ["'../secret'", "outside the feature"], 1)
    assert not (tmp_path / "st").exists()


def test_import_rate_must_be_positive(tmp_path):
    csv, feats = import_inputs(tmp_path, ["c0,s0,anger", "c1,s1,neutral", "c2,s2,anger"])
    refused(["data", "import", csv, feats, "--out", tmp_path / "st", "--audio-rate", "0"], "--audio-rate", 2)


def test_import_manifest_not_found(tmp_path):
    _, feats = import_inputs(tmp_path, ["c0,s0,anger"])
    refused(["data", "import", tmp_path / "missing.csv", feats, "--out", tmp_path / "st"],
            ["missing.csv", "not found"], 1)


# ------------------------------------------------------------------ read-only places
def test_read_only_out(tiny_store, tmp_path, read_only):
    out = tmp_path / "ro"
    out.mkdir()
    read_only(out)
    refused(run_args(tiny_store.path, out), [str(out), "permission denied"], 1, out)


def test_read_only_report_directory(run_dir, tmp_path, read_only):
    rep = tmp_path / "rep"
    rep.mkdir()
    read_only(rep)
    refused(["report", run_dir, "--out", rep / "sub"], [str(rep), "permission denied"], 1, run_dir)


def test_read_only_avbench_home(tmp_path, monkeypatch, read_only):
    home = tmp_path / "home"
    home.mkdir()
    read_only(home)
    monkeypatch.setenv("AVBENCH_HOME", str(home))
    refused(["data", "synth", "--speakers", "9", "--clips-per-speaker", "2", "--visual-dim", "4"],
            [str(home), "permission denied"], 1)
