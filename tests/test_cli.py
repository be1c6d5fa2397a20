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
