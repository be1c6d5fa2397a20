"""The command line: a thin wrapper whose errors name the option and what was expected."""

import json

from click.testing import CliRunner

from avbench.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_models_list_json_has_exact_paper_count():
    r = invoke("models", "list", "--json", "--classes", "4", "--audio-dim", "130", "--visual-dim", "4096")
    assert r.exit_code == 0
    rows = {m["name"]: m for m in json.loads(r.output)}
    assert rows["auxformer"]["params"] == 7_054_748
    assert rows["auxformer"]["modalities"] == ["audio", "visual"]


def test_models_show_breaks_down_by_block():
    r = invoke("models", "show", "auxformer")
    assert r.exit_code == 0 and "aux_head" in r.output and "7,054,748" in r.output


def test_unknown_names_and_bad_options_are_usage_errors(tmp_path):
    r = invoke("run", "--protocol", "maskng", "--model", "auxformer", "--out", str(tmp_path))
    assert r.exit_code == 2 and "Did you mean 'masking'" in r.output
    r = invoke("run", "--protocol", "masking", "--model", "auxfomer", "--out", str(tmp_path))
    assert r.exit_code == 2 and "Did you mean 'auxformer'" in r.output and "Available:" in r.output
    r = invoke("run", "--protocol", "masking", "--set", "pos_enc", "--out", str(tmp_path))
    assert r.exit_code == 2 and "key=value" in r.output
    r = invoke("models", "show", "mul")
    assert r.exit_code == 2 and "Unknown model 'mul'" in r.output
    r = invoke("run", "--protocol", "masking", "--profile", "fast")
    assert r.exit_code == 2 and "fast" in r.output


def test_run_prints_table_and_rerun_prints_the_same(tiny_store, tmp_path):
    args = ["run", "--protocol", "masking", "--model", "auxformer", "--corpus", str(tiny_store.path),
            "--profile", "smoke", "--seeds", "2", "--out", str(tmp_path), "--quiet"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "mask_audio" in first.output and "micro_f1" in first.output and "SYNTHETIC" in first.output
    assert "% of training" in first.output
    second = invoke(*args)
    assert "units trained now: 0, reused: 2" in second.output
    table = lambda out: out.split("Results")[1].split("units trained now")[0]
    assert table(first.output) == table(second.output)


def test_protocols_list_and_show():
    r = invoke("protocols", "list")
    assert r.exit_code == 0 and "masking" in r.output
    r = invoke("protocols", "show", "masking")
    assert r.exit_code == 0 and "mask_visual@0.9" in r.output and "levels" in r.output


def test_data_commands_import_synthesise_and_describe(tmp_path):
    import numpy as np

    feats = tmp_path / "feats"
    feats.mkdir()
    rows = ["clip_id,speaker,label"]
    rng = np.random.default_rng(0)
    for i in range(6):
        np.save(feats / f"c{i}.audio.npy", rng.normal(size=(20 + i, 5)).astype(np.float32))
        np.save(feats / f"c{i}.visual.npy", rng.normal(size=(10 + i, 3)).astype(np.float32))
        rows.append(f"c{i},s{i % 3},{['anger', 'neutral'][i % 2]}")
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n")
    r = invoke("data", "import", str(tmp_path / "clips.csv"), str(feats), "--out", str(tmp_path / "store"))
    assert r.exit_code == 0 and "6 clips" in r.output and "anger, neutral" in r.output
    r = invoke("data", "info", str(tmp_path / "store"), "--verify")
    assert r.exit_code == 0 and "speakers 3" in r.output and "audio 5-d" in r.output and "SYNTHETIC" not in r.output
    assert r.output.startswith("verified:")  # a successful check says so
    (feats / "c0.visual.npy").write_bytes(b"not an npy file")
    r = invoke("data", "import", str(tmp_path / "clips.csv"), str(feats), "--out", str(tmp_path / "store2"))
    assert r.exit_code == 1 and "c0.visual.npy" in r.output and "Usage:" not in r.output
    r = invoke("data", "synth", "--out", str(tmp_path / "syn"), "--speakers", "9", "--clips-per-speaker", "2",
               "--visual-dim", "4")
    assert r.exit_code == 0 and "18 clips, 9 speakers" in r.output and "generated:" in r.output
    fresh = ("data", "synth", "--seed", "11", "--speakers", "9", "--clips-per-speaker", "2", "--visual-dim", "4")
    r, again = invoke(*fresh), invoke(*fresh)  # under AVBENCH_HOME; no other test asks for seed 11
    assert "generated:" in r.output and "reused (generated before):" in again.output
    r = invoke("data", "info", str(tmp_path / "syn"))
    assert "[SYNTHETIC]" in r.output


def test_only_user_errors_become_one_line_messages_and_debug_reraises(monkeypatch):
    from click.testing import CliRunner

    import avbench.runner as runner_mod
    from avbench.cli import main
    from avbench.validation import ValidationError

    def bug(*args, **kwargs):
        raise ValueError("an avbench bug")  # not a ValidationError: a bug, not bad input

    monkeypatch.setattr(runner_mod, "run", bug)
    result = CliRunner().invoke(main, ["run", "--protocol", "optimized"])
    assert type(result.exception) is ValueError  # a bug keeps its traceback, not a usage message

    def bad(*args, **kwargs):
        raise ValidationError("The 'seeds' parameter of avbench run must be a positive integer. Got 0 instead.")

    monkeypatch.setattr(runner_mod, "run", bad)
    result = CliRunner().invoke(main, ["run", "--protocol", "optimized"])
    assert result.exit_code == 2 and "positive integer" in result.output and result.output.count("\n") <= 4
    result = CliRunner().invoke(main, ["--debug", "run", "--protocol", "optimized"])
    assert isinstance(result.exception, ValidationError)


def test_profile_and_device_choices_come_from_their_owners():
    from click.testing import CliRunner

    from avbench.cli import main
    from avbench.devices import DEVICES
    from avbench.profiles import PROFILES

    text = CliRunner().invoke(main, ["run", "--help"]).output
    assert all(name in text for name in (*PROFILES, *DEVICES)) and "Model size" in text
