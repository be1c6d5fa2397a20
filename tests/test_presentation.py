"""Models declare how reports show them (names, role, colour, marker): a plugin model declaring the role
"proposed" gets a Table 1 of its own, with its name and its significance marks."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from torch import nn

from avbench.models import AVModel, Presentation, register_model
from avbench.registry import MODELS
from avbench.report import build_report
from avbench.report.presentation import model_color, model_label, model_marker, table_label
from avbench.results import COLUMNS, write_table

PLUGIN = "my-fusion"


class _Tiny(AVModel):
    def __init__(self, *, num_classes, audio_dim, visual_dim, width: int = 4):
        super().__init__()
        self.head = nn.Linear(audio_dim + visual_dim, num_classes)
        self.loss_weights = {"av": 1.0}


@pytest.fixture
def proposed_plugin():
    register_model(PLUGIN, description="a plugin's own proposed model",
                   presentation=Presentation("MyFusion (ours)", "MyFusion", role="proposed", color="#D55E00",
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
    assert model_label(PLUGIN) == "MyFusion (ours)" and model_label(PLUGIN, short=True) == "MyFusion"
    assert table_label(PLUGIN) == "MyFusion (ours)"  # defaults to the label
    assert model_color(PLUGIN) == "#D55E00" and model_marker(PLUGIN) == "h"
    assert model_label("mult") == "Baseline 2 (MulT)" and table_label("mult") == "Baseline 2"
    assert model_label("not-installed") == "not-installed"  # a model of the run missing here keeps its name
    with pytest.raises(ValueError, match="'role'.*Got 'hero'"):
        Presentation(role="hero")


def test_a_proposed_plugin_model_gets_its_own_table1_with_marks(proposed_plugin, tmp_path):
    root = _run(tmp_path / "run", {"auxformer": 0.76, "baseline1": 0.70, "mult": 0.69, PLUGIN: 0.85})
    report = build_report(root, figures=False, strict=True)
    keys = [t.key for t in report.tables]
    assert "table1" in keys and f"table1-{PLUGIN}" in keys
    mine = (report.out / "tables" / f"table1-{PLUGIN}.md").read_text()
    assert "Comparison of MyFusion with the audiovisual baselines" in mine
    rows = [line for line in mine.splitlines() if line.startswith("| MyFusion (ours)")]
    assert len(rows) == 2 and all(r.count("\\*") == 2 for r in rows)  # significant in every cell of both regimes
    assert "| AuxFormer" not in mine  # another proposed model has its own table
    theirs = (report.out / "tables" / "table1.md").read_text()
    assert "MyFusion" not in theirs and "| AuxFormer (ours)" in theirs
