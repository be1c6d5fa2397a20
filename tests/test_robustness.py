"""The robustness summary: area under the score-vs-level curve and scores relative to clean input."""

import json

import numpy as np
import pandas as pd
import pytest

from avbench.results import COLUMNS
from avbench.robustness import robustness_summary, with_summaries

UNIT = dict(corpus="c", model="m", variant="default", regime="optimized")


def rows(protocol, seed, condition, level, metric, value, **unit):
    return {**UNIT, **unit, "protocol": protocol, "condition": condition,
            "level": np.nan if level is None else level, "seed": seed, "metric": metric, "value": value}


def table(*extra):
    base = [rows("masking", 0, "full", None, "micro_f1", 0.8),
            rows("masking", 0, "mask_audio", 0.1, "micro_f1", 0.4),
            rows("masking", 0, "mask_audio", 0.5, "micro_f1", 0.6),
            rows("masking", 0, "mask_audio", 0.9, "micro_f1", 0.8),
            rows("masking", 0, "train", None, "params", 1000.0)]
    return pd.DataFrame(base + list(extra), columns=COLUMNS)


def get(out, condition, metric, level=None):
    sel = out[(out.condition == condition) & (out.metric == metric)]
    sel = sel[sel.level.isna()] if level is None else sel[np.isclose(sel.level, level)]
    assert len(sel) == 1, sel
    return float(sel.value.iloc[0])


def test_auc_is_trapezoid_over_levels_normalised_by_range():
    out = robustness_summary(table())
    assert list(out.columns) == COLUMNS
    # trapezoid: 0.4*(0.4+0.6)/2 + 0.4*(0.6+0.8)/2 = 0.48, over a range of 0.8 -> 0.6
    assert get(out, "mask_audio", "auc_micro_f1") == pytest.approx(0.6)
    assert get(out, "mask_audio", "relative_auc_micro_f1") == pytest.approx(0.6 / 0.8)
    assert get(out, "mask_audio", "relative_micro_f1", 0.1) == pytest.approx(0.5)
    assert get(out, "mask_audio", "relative_micro_f1", 0.9) == pytest.approx(1.0)
    assert set(out.protocol) == {"masking"} and set(out.seed) == {0}
    assert "train" not in set(out.condition) and "full" not in set(out.condition)


def test_levels_in_any_order_and_negative_levels():
    t = table(rows("masking", 0, "shift_visual", 500, "micro_f1", 0.5),
              rows("masking", 0, "shift_visual", -500, "micro_f1", 0.7),
              rows("masking", 0, "shift_visual", 0, "micro_f1", 0.8))
    out = robustness_summary(t)
    # (0.7+0.8)/2*500 + (0.8+0.5)/2*500 = 700, over 1000 ms
    assert get(out, "shift_visual", "auc_micro_f1") == pytest.approx(0.7)


def test_single_level_or_clip_has_relative_score_but_no_area():
    t = table(rows("masking", 0, "clip_audio", None, "micro_f1", 0.6))
    out = robustness_summary(t)
    assert get(out, "clip_audio", "relative_micro_f1") == pytest.approx(0.75)
    assert out[(out.condition == "clip_audio") & out.metric.str.startswith("auc")].empty


def test_a_unit_missing_levels_of_its_family_gets_no_area():
    """Seed 1 was scored at 0.1 and 0.9 only (its protocol then had fewer levels): a mean over those two levels
    is not the mean over the family's three, which the report's label would claim, so it gets no area."""
    t = table(rows("masking", 1, "full", None, "micro_f1", 0.8),
              rows("masking", 1, "mask_audio", 0.1, "micro_f1", 0.4),
              rows("masking", 1, "mask_audio", 0.9, "micro_f1", 0.8))
    out = robustness_summary(t)
    areas = out[out.metric == "auc_micro_f1"]
    assert areas.seed.tolist() == [0] and areas.value.tolist() == pytest.approx([0.6])
    assert len(out[(out.seed == 1) & (out.metric == "relative_micro_f1")]) == 2  # its per-level rows stay


def test_per_seed_and_per_model_and_metric_choice():
    t = table(rows("masking", 1, "full", None, "micro_f1", 0.5),
              rows("masking", 1, "mask_audio", 0.1, "micro_f1", 0.5),
              rows("masking", 1, "mask_audio", 0.5, "micro_f1", 0.5),
              rows("masking", 1, "mask_audio", 0.9, "micro_f1", 0.5),
              rows("masking", 0, "full", None, "macro_f1", 0.5, model="other"),
              rows("masking", 0, "mask_audio", 0.1, "macro_f1", 0.25, model="other"),
              rows("masking", 0, "mask_audio", 0.9, "macro_f1", 0.25, model="other"))
    out = robustness_summary(t)
    auc = out[out.metric == "auc_micro_f1"].set_index("seed").value
    assert auc[0] == pytest.approx(0.6) and auc[1] == pytest.approx(0.5)
    assert set(out.model) == {"m"}  # "other" has no micro_f1 rows
    macro = robustness_summary(t, metric="macro_f1")
    assert set(macro.model) == {"other"}
    assert get(macro, "mask_audio", "relative_auc_macro_f1") == pytest.approx(0.5)


def test_clean_score_from_another_protocol_of_the_same_unit():
    t = pd.DataFrame([rows("standard", 0, "full", None, "micro_f1", 0.5),
                      rows("noise", 0, "noise_audio", 0, "micro_f1", 0.25),
                      rows("noise", 0, "noise_audio", 10, "micro_f1", 0.5)], columns=COLUMNS)
    out = robustness_summary(t)
    assert get(out, "noise_audio", "relative_auc_micro_f1") == pytest.approx(0.375 / 0.5)
    assert set(out.protocol) == {"noise"}


def test_no_clean_score_gives_area_only_and_empty_input_gives_empty_table():
    t = pd.DataFrame([rows("noise", 0, "noise_audio", 0, "micro_f1", 0.25),
                      rows("noise", 0, "noise_audio", 10, "micro_f1", 0.5)], columns=COLUMNS)
    out = robustness_summary(t)
    assert set(out.metric) == {"auc_micro_f1"}
    assert robustness_summary(t.iloc[:0]).empty


def test_with_summaries_only_for_protocols_asking_and_idempotent(tmp_path):
    (tmp_path / "protocols").mkdir()
    for name, summary in (("masking", True), ("plain", False)):
        (tmp_path / "protocols" / f"{name}.json").write_text(
            json.dumps({"protocol": name, "definition": {"name": name, "summary": summary}}))
    t = pd.concat([table(), table().assign(protocol="plain")], ignore_index=True)
    once = with_summaries(t, tmp_path)
    added = once[once.metric.str.startswith(("auc_", "relative_"))]
    assert set(added.protocol) == {"masking"}
    assert len(once) > len(t)
    twice = with_summaries(once, tmp_path)
    pd.testing.assert_frame_equal(once, twice)
