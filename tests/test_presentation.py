"""Models declare how reports show them (names, role, colour, marker, names of their option settings): a
plugin model declaring the role "proposed" is the report's proposed model by default, and an ablation of its
options names their settings as the model declares.  (The whole plugin-as-proposed scenario: test_proposed.py.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from torch import nn

from avbench.models import AVModel, Presentation, register_model
from avbench.registry import MODELS
from avbench.report import build_report
from avbench.report.artifacts import ReportContext
from avbench.report.presentation import model_color, model_label, model_marker, table_label
from avbench.report.rundata import load_run
from avbench.report.tables import _ablation_table, ablation
from avbench.results import COLUMNS, ProtocolManifest, write_manifest, write_table

PLUGIN = "my-fusion"


class _Tiny(AVModel):
    def __init__(self, *, num_classes, audio_dim, visual_dim, width: int = 4):
        super().__init__()
        self.head = nn.Linear(audio_dim + visual_dim, num_classes)
        self.loss_weights = {"av": 1.0}


@pytest.fixture
def proposed_plugin():
    register_model(PLUGIN, description="a plugin's own proposed model",
                   presentation=Presentation("MyFusion", "MyFusion", role="proposed", color="#D55E00",
                                             marker="h"))(_Tiny)
    yield PLUGIN
    MODELS.unregister(PLUGIN)


def _run(root, quality: dict[str, float], seeds: int = 6):
    rows = []
    for model, q in quality.items():
        for regime in ("standard", "optimized"):
            for seed in range(seeds):
                noise = int(hashlib.sha256(f"{model}{regime}{seed}".encode()).hexdigest()[:6], 16) / 16**6 - 0.5
                for metric in ("micro_f1", "macro_f1"):
                    rows.append({"corpus": "crema-d-0123abcd", "model": model, "variant": "default",
                                 "regime": regime, "protocol": regime, "condition": "full", "level": np.nan,
                                 "seed": seed, "metric": metric, "value": q + 0.01 * noise + 0.002 * seed})
    write_table(root / "results.csv", pd.DataFrame(rows, columns=COLUMNS))
    return root


def test_presentation_comes_from_the_models_metadata(proposed_plugin):
    assert model_label(PLUGIN) == "MyFusion" and model_label(PLUGIN, short=True) == "MyFusion"
    assert table_label(PLUGIN) == "MyFusion"  # defaults to the label
    assert model_label("auxformer") == "AuxFormer"  # "(ours)" is the report's to add, to the chosen model only
    assert model_color(PLUGIN) == "#D55E00" and model_marker(PLUGIN) == "h"
    assert model_label("mult") == "Baseline 2 (MulT)" and table_label("mult") == "Baseline 2"
    assert model_label("not-installed") == "not-installed"  # a model of the run missing here keeps its name
    with pytest.raises(ValueError, match="'role'.*Got 'hero'"):
        Presentation(role="hero")


def test_repeated_proposed_builds_each_testing_table_once_per_model(proposed_plugin, tmp_path):
    root = _run(tmp_path / "run", {"auxformer": 0.76, "baseline1": 0.70, "mult": 0.69, PLUGIN: 0.85})
    report = build_report(root, figures=False, strict=True, proposed=[PLUGIN, "auxformer"])
    keys = [t.key for t in report.tables]
    assert keys == ["table1", "table1-auxformer", "bayes", "bayes-auxformer"]  # each testing table once per model
    mine = (report.out / "tables" / "table1.md").read_text()
    assert "Comparison of MyFusion with the audiovisual baselines" in mine
    rows = [line for line in mine.splitlines() if line.startswith("| MyFusion (ours)")]
    assert len(rows) == 2 and all(r.count("\\*") == 2 for r in rows)  # significant in every cell of both regimes
    theirs = (report.out / "tables" / "table1-auxformer.md").read_text()
    assert "Comparison of AuxFormer with the audiovisual baselines" in theirs
    assert "*: AuxFormer is significantly better" in theirs.replace("\\*", "*")
    assert "| AuxFormer (ours)" in theirs and "| MyFusion (ours)" in theirs  # both chosen: both the user's
    stats = pd.read_csv(report.out / "stats.csv")
    assert set(stats.loc[stats["table"] == "Table 1", "proposed"]) == {"MyFusion (ours)", "AuxFormer (ours)"}


def test_an_ablation_of_a_plugin_model_names_its_settings_as_the_model_declares(tmp_path):
    register_model("my-ablated", description="a plugin model with an option the paper never had",
                   presentation=Presentation("MyNet", "MyNet", role="proposed",
                                             option_labels={"gate": {True: "Gated fusion", False: "Plain sum"}}))(_Tiny)
    try:
        root = tmp_path / "run"
        rows = [{"corpus": "crema-d-0123abcd", "model": "my-ablated", "variant": f"gate={str(gate).lower()}",
                 "regime": "optimized", "protocol": "gating", "condition": "full", "level": np.nan, "seed": seed,
                 "metric": metric, "value": 0.6 + 0.1 * gate + 0.01 * seed, "train_shift_ms": 0.0, "is_default": gate}
                for gate in (True, False) for seed in range(3) for metric in ("micro_f1", "macro_f1")]
        write_table(root / "results.csv", pd.DataFrame(rows))
        variants = [{"name": f"gate={str(g).lower()}", "config": {"gate": g}} for g in (True, False)]
        write_manifest(root / "protocols" / "gating@crema-d-0123abcd.json", ProtocolManifest(
            "gating", definition={"name": "gating", "models": ["my-ablated"], "variants": variants}))
        ctx = ReportContext(load_run(root))
        table = _ablation_table(ctx, ablation(ctx, "gate", "gating"), "t", "Table X", "Gating", "Gate",
                                "The gate:").to_markdown()
    finally:
        MODELS.unregister("my-ablated")
    assert "| Gated fusion |" in table.replace("\\*", "") and "| Plain sum |" in table
    assert "The gate: MyNet, optimized training" in table and "AuxFormer" not in table
