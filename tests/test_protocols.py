"""Every protocol end to end (tiny corpus, smoke profile, one epoch, two seeds), and the
semantics the protocols rest on: masks seen = masks stored, the same masks for every model,
clipping zeroes everything, the optimized regime's 20/20/60 groups, shared units, not applicable.

Protocols run into one module-wide output directory, so a unit several protocols need is
trained once (as in a real run); each test asserts the rows its protocol must produce.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import avbench.training as training_mod
from avbench.batching import read_clip
from avbench.conditions import Condition, keep_mask
from avbench.models import get_model_meta
from avbench.normalization import Normalizer
from avbench.profiles import get_profile
from avbench.protocol import Protocol, get_protocol
from avbench.protocol import members as expand_includes
from avbench.registry import MODELS, PROTOCOLS, RegistryError
from avbench.planning import plan
from avbench.runner import run
from avbench.validation import ValidationError

PROFILE = get_profile("smoke").replace(epochs=1)
SEEDS = 2
PAPER_PROTOCOLS = ["standard", "optimized", "training-regimes", "clipping", "masking", "posenc", "self-attention",
                   "token", "lambda-grid", "upscaled", "complexity"]
EXTRA_PROTOCOLS = ["misalignment", "misalignment-trained", "occlusion", "noise"]
AV_MODELS = ["auxformer", "baseline1", "mult", "xmodal"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The smoke models are tiny: one torch thread is as fast on an idle machine and avoids the
    ~100x slowdown of spinning OpenMP threads when other processes hold the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("protocols-run")


def _run(store, out, protocol, models=None, profile=PROFILE, seeds=SEEDS, **kw):
    p = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
    missing = [m for q in expand_includes(p) for m in (*(models or q.models), *q.needs) if m not in MODELS]
    if missing:
        pytest.skip(f"models not registered yet: {sorted(set(missing))}")
    # jobs=1: in this process, where the tests' spies on training functions see the units
    return run(p, models, corpus=store.path, profile=profile, seeds=seeds, out=out, progress=False,
               echo=lambda s: None, **({"jobs": 1} | kw))


def _level(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def expected_rows(protocol, models=None):
    """(model, variant, regime, condition, level, seed) -> applicable?, from the protocol's plan."""
    want = {}
    for q in expand_includes(get_protocol(protocol) if isinstance(protocol, str) else protocol):
        for u, conds in plan(q, models if q.name == protocol else None, corpus="x", profile=PROFILE, seeds=SEEDS):
            mods = set(get_model_meta(u.model).modalities)
            for c in conds:
                want[(u.model, u.key()["variant"], u.regime, c.name, _level(c.level), u.seed)] = \
                    not mods <= c.removes()
    return want


def assert_rows(summary, protocol, models=None):
    """The table has micro/macro F1 for every applicable planned row and nothing for the rest."""
    want = expected_rows(protocol, models)
    t = summary.table[summary.table.protocol == protocol]
    for metric in ("micro_f1", "macro_f1"):
        s = t[t.metric == metric]
        got = {(r.model, r.variant, r.regime, r.condition, _level(r.level), int(r.seed)) for r in s.itertuples()}
        assert got == {k for k, ok in want.items() if ok}, metric
        assert s.value.between(0, 1).all()
    train = t[t.condition == "train"]
    units = {(m, v, r, s) for m, v, r, _, _, s in want}
    for metric in ("params", "seconds_per_epoch", "train_seconds", "epochs", "best_epoch"):
        got = {(r.model, r.variant, r.regime, int(r.seed)) for r in train[train.metric == metric].itertuples()}
        assert got == units, metric
    assert (train[train.metric.isin(["params", "seconds_per_epoch"])].value > 0).all()
    na = {(k[0], k[3]) for k, ok in want.items() if not ok}
    assert {tuple(line.split(":")[0].split(" / ")) for line in summary.not_applicable} == na
    return t


# --- protocol definitions ------------------------------------------------------------------------

def test_every_protocol_is_registered_and_valid():
    names = PROTOCOLS.names()
    for name in PAPER_PROTOCOLS + EXTRA_PROTOCOLS + ["paper"]:
        assert name in names
        p = get_protocol(name)
        assert p.name == name and p.description and p.reference
        for q in expand_includes(p):
            assert q.conditions


def test_a_dict_or_callable_registered_as_plugin_works_with_get_protocol():
    spec = {"name": "plugin-proto", "models": ["auxformer"], "regimes": ["standard"],
            "conditions": [{"kind": "full"}, {"kind": "noise", "modality": "visual", "levels": [10, 0]}]}
    PROTOCOLS.register("plugin-proto", spec)
    PROTOCOLS.register("plugin-proto-fn", lambda: {**spec, "name": "plugin-proto-fn"})
    try:
        p = get_protocol("plugin-proto")
        assert isinstance(p, Protocol) and p.regimes == ("standard",)
        assert [c.key for c in p.conditions] == ["full", "noise_visual@10", "noise_visual@0"]
        assert get_protocol("plugin-proto-fn").name == "plugin-proto-fn"
    finally:
        PROTOCOLS.unregister("plugin-proto")
        PROTOCOLS.unregister("plugin-proto-fn")


@pytest.mark.parametrize("bad, match", [
    ({"name": "x", "conditon": []}, r"unknown protocol keys \['conditon'\]. Did you mean 'conditions'"),
    ({"name": "x", "conditions": [{"kind": "mask", "modality": "audio", "levles": [0.5]}]},
     r"unknown keys \['levles'\]; expected kind, modality, levels. Did you mean 'levels'\?"),
    ({"name": "x", "variants": [{"name": "a", "confg": {}}]}, r"optional 'config' mapping.*Did you mean 'config'\?"),
    ({"name": "x", "models": "auxformer"}, "'models'.*must be a list"),
    ({"name": "x", "regimes": ["fast"]}, "'regimes'"),
    ({"name": "x", "variants": [{"name": "a"}, {"name": "a"}]}, "distinct names"),
    ({"name": "x", "variants": [{"name": "a", "cfg": {}}]}, "'name' and an optional 'config'"),
    ({"name": "x", "train_shift_ms": -5}, "'train_shift_ms'"),
    ({"name": "x", "needs_conditions": [{"kind": "mask", "modality": "audio"}]}, "'levels'"),
    ({"name": "x", "include": ["masking", "noise"]}, "names one protocol.*use 'group:'|name them under 'group:'"),
])
def test_bad_protocol_definitions_fail_clearly(bad, match):
    with pytest.raises(ValidationError, match=match):
        Protocol.from_dict(bad)


def test_lambda_grid_has_the_eleven_weightings_of_table_4():
    p = get_protocol("lambda-grid")
    weights = [tuple(v.config["loss_weights"]) for v in p.variants]
    assert len(weights) == 11 and len(set(weights)) == 11
    assert all(math.isclose(sum(w), 1.0) for w in weights)
    assert [v.name for v in p.variants][:3] == ["l=0.20,0.40,0.40", "l=0.30,0.35,0.35", "l=0.33,0.33,0.33"]
    for v in p.variants:
        assert v.name == "l=" + ",".join(f"{x:.2f}" for x in v.config["loss_weights"])


def test_paper_expands_to_every_table_and_figure_and_trains_each_unit_once():
    prof = get_profile("quick")
    protocols = expand_includes(get_protocol("paper"))
    assert {p.name for p in protocols} == set(PAPER_PROTOCOLS)
    units = {}
    for p in protocols:
        for u, conds in plan(p, None, corpus="x", profile=prof, seeds=prof.seeds):
            units.setdefault(u, set()).update(c.key for c in conds)
    keys = {(u.model, u.variant, u.regime) for u in units}
    for m in AV_MODELS:  # Table 1: both regimes; Fig. 4, Table 2, Fig. 5 from the optimized one
        assert {(m, "default", "standard"), (m, "default", "optimized")} <= keys
    assert {("unimodal-audio", "default", "standard"), ("unimodal-visual", "default", "standard")} <= keys
    assert {("mult-xl", "default", "optimized"), ("xmodal-xl", "default", "optimized")} <= keys
    aux = {v for m, v, r in keys if m == "auxformer" and r == "optimized"}
    assert len(aux) == 1 + 1 + 3 + 2 + 10  # default, no pos, 3 self-attention, 2 tokens, 10 other weightings
    assert len(units) == 28 * prof.seeds
    main = next(u for u in units if (u.model, u.variant, u.regime, u.seed) == ("auxformer", "default", "optimized", 0))
    assert units[main] == {"full", "clip_audio", "clip_visual",
                           *(f"mask_{m}@{x / 10:g}" for m in ("audio", "visual") for x in range(1, 10))}


def test_variants_equal_to_the_default_model_share_its_unit():
    prof = get_profile("quick")
    default = {u for u, _ in plan(get_protocol("optimized"), ["auxformer"], corpus="x", profile=prof, seeds=1)}
    for name, label in (("posenc", "pos_enc=true"), ("self-attention", "self_attention=scaled"),
                        ("token", "token=last"), ("lambda-grid", "l=0.33,0.33,0.33")):
        units = {u.label or u.variant: u for u, _ in plan(get_protocol(name), None, corpus="x", profile=prof, seeds=1)}
        assert units[label] in default and units[label].path == next(iter(default)).path
        assert units[label].key()["variant"] == label
        assert len({u.path for u in units.values()}) == len(units)  # the others are distinct units
    opts = plan(get_protocol("posenc"), None, corpus="x", profile=prof, seeds=1, options={"heads": 2})
    assert sorted(u.key()["variant"] for u, _ in opts) == ["pos_enc=false+heads=2", "pos_enc=true+heads=2"]
    assert sorted(u.variant for u, _ in opts) == ["heads=2", "pos_enc=false+heads=2"]


def test_an_option_set_for_one_model_applies_to_it_only():
    """`--set auxformer.pos_enc=false` in a comparison: mult has no such option and keeps its default
    unit; `MODEL.key` wins over a `key` given for every model."""
    from avbench.protocol import check_model_options

    prof = get_profile("quick")
    units = {u.model: u for u, _ in plan(get_protocol("optimized"), ["auxformer", "mult"], corpus="x", profile=prof,
                                         seeds=1, options={"auxformer.pos_enc": False, "heads": 2,
                                                           "mult.heads": 1})}
    assert units["auxformer"].config["pos_enc"] is False and units["auxformer"].config["heads"] == 2
    assert units["auxformer"].variant == "heads=2,pos_enc=false"
    assert "pos_enc" not in units["mult"].config and units["mult"].config["heads"] == 1
    assert units["mult"].variant == "heads=1"
    with pytest.raises(ValidationError, match=r"must name, before the '.', a model this run trains \(auxformer, "
                                              r"mult\). Got 'mlt.heads' instead. Did you mean 'mult'\?"):
        check_model_options({"mlt.heads": 1}, get_protocol("optimized"), ["auxformer", "mult"])


# --- every protocol end to end -------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["standard", "optimized", "posenc", "self-attention", "token", "upscaled"])
def test_protocol_runs_end_to_end(protocol, tiny_store, out):
    s = _run(tiny_store, out, protocol)
    assert_rows(s, protocol)


def test_shared_variant_reports_the_same_scores_under_each_name(tiny_store, out):
    a = _run(tiny_store, out, "optimized").table
    b = _run(tiny_store, out, "lambda-grid").table
    assert_rows(_run(tiny_store, out, "lambda-grid"), "lambda-grid")
    key = ["seed", "metric"]
    x = a[(a.model == "auxformer") & (a.condition == "full")].set_index(key).value.sort_index()
    y = b[(b.variant == "l=0.33,0.33,0.33") & (b.condition == "full")].set_index(key).value.sort_index()
    pd.testing.assert_series_equal(x, y)
    assert len(set(b.variant)) == 11


def test_masking(tiny_store, out):
    s = _run(tiny_store, out, "masking", ["auxformer"])
    t = assert_rows(s, "masking", ["auxformer"])
    levels = sorted(t[(t.condition == "mask_visual") & (t.metric == "micro_f1")].level.unique())
    assert levels == pytest.approx([x / 10 for x in range(1, 10)])
    auc = t[t.metric == "auc_micro_f1"]
    assert {(r.condition, int(r.seed)) for r in auc.itertuples()} == {
        (c, s) for c in ("mask_audio", "mask_visual") for s in range(SEEDS)}
    assert auc.value.between(0, 1).all() and not t[t.metric == "relative_auc_macro_f1"].empty
    assert (t[(t.condition == "train") & (t.metric == "train_seconds")].value > 0).all()


@pytest.mark.parametrize("protocol", ["clipping", "training-regimes"])
def test_clip_protocols_record_unimodal_models_as_not_applicable(protocol, tiny_store, out):
    s = _run(tiny_store, out, protocol)
    t = assert_rows(s, protocol)
    assert any(line.startswith("unimodal-audio / clip_audio") for line in s.not_applicable)
    assert any(line.startswith("unimodal-visual / clip_visual") for line in s.not_applicable)
    rec = next(out.glob(f"units/*/{PROFILE.key}/unimodal-audio/default/standard/seed-00/evals/clip_audio.json"))
    assert json.loads(rec.read_text())["status"] == "not_applicable"
    scored = t[(t.model == "unimodal-audio") & (t.metric == "micro_f1")]
    assert set(scored.condition) == {"full", "clip_visual"}
    assert set(t[t.model == "unimodal-audio"].regime) == {"standard"}
    if protocol == "training-regimes":
        assert set(t[t.model == "auxformer"].regime) == {"standard", "optimized"}


def test_complexity_records_params_and_seconds_per_epoch_with_the_machine(tiny_store, out):
    s = _run(tiny_store, out, "complexity")
    t = assert_rows(s, "complexity")
    train = t[t.condition == "train"]
    assert set(train.model) == set(AV_MODELS) | {"unimodal-audio", "unimodal-visual"}
    params = train[train.metric == "params"].groupby("model").value.agg(["min", "max"])
    assert (params["min"] == params["max"]).all()  # a model's size does not depend on the seed
    manifest = json.loads(next((out / "protocols").glob("complexity@*.json")).read_text())
    assert manifest["provenance"]["machine"]["cpu_threads"] >= 1
    rec = json.loads(next(out.glob(f"units/*/{PROFILE.key}/auxformer/default/optimized/seed-00/train.json"))
                     .read_text())
    assert rec["train_metrics"]["seconds_per_epoch"] == pytest.approx(
        np.mean([h["train_seconds"] for h in rec["history"]]))


@pytest.mark.parametrize("protocol", ["misalignment", "occlusion", "noise"])
def test_robustness_protocols(protocol, tiny_store, out):
    s = _run(tiny_store, out, protocol, ["auxformer"])
    t = assert_rows(s, protocol, ["auxformer"])
    families = {c.name for c in get_protocol(protocol).conditions if c.level is not None}
    auc = t[t.metric == "auc_micro_f1"]
    assert {(r.condition, int(r.seed)) for r in auc.itertuples()} == {(f, x) for f in families for x in range(SEEDS)}
    rel = t[t.metric == "relative_micro_f1"]
    clean = t[(t.metric == "micro_f1") & (t.condition == "full")].set_index("seed").value
    ok = [x for x in range(SEEDS) if clean[x] > 0]  # a one-epoch model may score 0: no relative value
    assert len(rel) == len(t[(t.metric == "micro_f1") & (t.condition != "full") & t.seed.isin(ok)])
    assert set(rel.seed) == set(ok)


def test_misalignment_trained_units_do_not_collide_with_unshifted_ones(tiny_store, out, monkeypatch):
    plain = _run(tiny_store, out, "misalignment", ["auxformer"])
    calls = []
    real = training_mod.random_shift
    monkeypatch.setattr(training_mod, "random_shift", lambda b, ms, rates, rng: calls.append((ms, rates)) or
                        real(b, ms, rates, rng))
    s = _run(tiny_store, out, "misalignment-trained", ["auxformer"])
    assert s.trained == SEEDS and calls  # shifted training happened, for new units only
    assert set(calls) == {(500.0, (tiny_store.audio_rate / PROFILE.frame_pool[0],
                                   tiny_store.visual_rate / PROFILE.frame_pool[1]))}
    t = assert_rows(s, "misalignment-trained", ["auxformer"])
    assert set(t.variant) == {"default+train_shift=500ms"}
    rec = json.loads(next(out.glob(f"units/*/{PROFILE.key}/auxformer/default+train_shift=500ms/optimized/seed-00/"
                                   "train.json")).read_text())
    assert rec["unit"]["train_shift_ms"] == 500
    a = plain.table[(plain.table.metric == "micro_f1") & (plain.table.protocol == "misalignment")]
    assert set(a.variant) == {"default"}


def test_random_shift_moves_one_modality_per_clip_within_its_length():
    from avbench.batching import Batch

    n, ta, tv = 64, 40, 20
    audio = torch.arange(1, n * ta + 1, dtype=torch.float32).reshape(n, ta, 1)
    visual = torch.arange(1, n * tv + 1, dtype=torch.float32).reshape(n, tv, 1)
    la = torch.full((n,), 30)
    lv = torch.full((n,), 15)
    audio[:, 30:] = 0
    visual[:, 15:] = 0
    batch = Batch(audio, visual, la, lv, torch.zeros(n, dtype=torch.long), np.arange(n))
    rates = (20.0, 10.0)  # frames/s: 500 ms = 10 audio or 5 visual frames
    out = training_mod.random_shift(batch, 500.0, rates, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    which, ms = rng.integers(0, 2, size=n), rng.uniform(-500, 500, size=n)
    moved = 0
    for i in range(n):
        x, y, L, rate = (audio, out.audio, 30, 20.0) if which[i] == 0 else (visual, out.visual, 15, 10.0)
        other, other_out = (visual, out.visual) if which[i] == 0 else (audio, out.audio)
        assert torch.equal(other[i], other_out[i])
        k = int(round(ms[i] * rate / 1000))
        assert abs(k) <= 500 * rate / 1000
        expect = torch.zeros_like(x[i])
        if k >= 0:
            expect[k:L] = x[i, :L - k]
        else:
            expect[:L + k] = x[i, -k:L]
        assert torch.equal(y[i], expect)
        moved += k != 0
    assert moved > n // 2 and torch.equal(batch.audio, audio)  # input untouched


# --- semantics, end to end ----------------------------------------------------------------------

def test_masks_stored_match_what_every_model_saw(tiny_store, tmp_path, monkeypatch):
    """Evaluation inputs are captured as the models receive them (no pooling, so frames are
    visible): kept frames are exactly the stored mask (of the trial's z-normalised features), and
    both models saw identical inputs."""
    proto = Protocol.from_dict({"name": "mask-check", "models": ["auxformer", "baseline1"],
                                "conditions": [{"kind": "mask", "modality": "visual", "levels": [0.3]},
                                               {"kind": "mask", "modality": "audio", "levels": [0.6]},
                                               {"kind": "clip", "modality": "audio"}]})
    seen = {}
    real = training_mod.batches

    def spy(store, rows, batch_size, **kw):
        for b in real(store, rows, batch_size, **kw):
            c = kw.get("condition")
            if c is not None:
                for i, r in enumerate(b.rows):
                    seen.setdefault((c.key, kw["trial_seed"], int(r)), []).append(
                        (b.audio[i, :b.audio_lengths[i]].clone(), b.visual[i, :b.visual_lengths[i]].clone()))
            yield b

    monkeypatch.setattr(training_mod, "batches", spy)
    _run(tiny_store, tmp_path, proto, profile=PROFILE.replace(frame_pool=(1, 1)))
    ids = tiny_store.manifest["clip_id"].to_numpy()
    assert {k[0] for k in seen} == {"mask_visual@0.3", "mask_audio@0.6", "clip_audio"}
    assert {k[1] for k in seen} == set(range(SEEDS))
    for (key, seed, row), inputs in seen.items():
        assert len(inputs) == 2  # one per model
        (a1, v1), (a2, v2) = inputs
        assert torch.equal(a1, a2) and torch.equal(v1, v2)  # the same masks for every model
        norm = Normalizer.load(next(tmp_path.glob(f"units/**/auxformer/**/seed-{seed:02d}/normalization.npz")))
        a, v = (torch.as_tensor(x) for x in read_clip(tiny_store, row, norm))
        if key == "clip_audio":
            assert not a1.any() and a1.shape == a.shape and torch.equal(v1, v)  # clipping zeroes all frames
            continue
        modality = key.split("@")[0].split("_")[1]
        x, y, other, other_seen = (v, v1, a, a1) if modality == "visual" else (a, a1, v, v1)
        assert torch.equal(other_seen, other)
        z = np.load(next(tmp_path.glob(f"masks/*/seed-{seed:02d}/{key}.npz")))
        j = int(np.flatnonzero(z["clip_id"] == ids[row])[0])
        keep = z["keep"][z["offsets"][j]:z["offsets"][j + 1]]
        assert keep.sum() == round(float(key.split("@")[1]) * len(x))  # level = fraction of frames kept
        kept = (y != 0).any(dim=1).numpy()
        np.testing.assert_array_equal(kept, keep & (x != 0).any(dim=1).numpy())
        assert torch.equal(y[keep], x[keep])
        c = Condition("mask", modality, float(key.split("@")[1]))
        np.testing.assert_array_equal(keep, keep_mask(len(x), c.level, c.rng(seed, str(ids[row]))))


def test_optimized_regime_zeroes_20_20_60_of_every_training_batch(tiny_store, tmp_path, monkeypatch):
    seen = []
    real = training_mod.apply_regime

    def spy(regime, batch, rng):
        b = real(regime, batch, rng)
        seen.append((regime, b))
        return b

    monkeypatch.setattr(training_mod, "apply_regime", spy)
    proto = Protocol.from_dict({"name": "regime-check", "regimes": ["optimized", "standard"],
                                "models": ["auxformer"]})
    _run(tiny_store, tmp_path, proto, seeds=1)
    sizes = []
    for regime, b in seen:
        n = len(b.rows)
        a0 = {i for i in range(n) if not b.audio[i].any()}
        v0 = {i for i in range(n) if not b.visual[i].any()}
        if regime == "standard":
            assert not a0 and not v0
            continue
        assert len(a0) == len(v0) == round(0.2 * n) and not a0 & v0
        sizes.append((n, len(a0), len(v0), n - len(a0) - len(v0)))
    assert (32, 6, 6, 20) in sizes


@pytest.mark.slow
def test_paper_runs_end_to_end(tiny_store, out):
    s = _run(tiny_store, out, "paper")
    for name in PAPER_PROTOCOLS:
        assert_rows(type(s)(table=s.table, out=s.out, not_applicable=[
            line for line in s.not_applicable
            if (line.split(" / ")[0], line.split(":")[0].split(" / ")[1]) in
            {(k[0], k[3]) for k, ok in expected_rows(name).items() if not ok}]), name)


def test_include_inherits_and_overrides_and_group_unites(tmp_path):
    coarse = tmp_path / "coarse.yaml"
    coarse.write_text("name: coarse\ninclude: masking\nconditions:\n  - {kind: full}\n"
                      "  - {kind: mask, modality: audio, levels: [0.25, 0.75]}\n")
    p = Protocol.from_yaml(coarse)
    masking = get_protocol("masking")
    assert (p.models, p.regimes, p.summary) == (masking.models, masking.regimes, True)  # inherited
    assert [c.key for c in p.conditions] == ["full", "mask_audio@0.25", "mask_audio@0.75"]  # overridden
    child = tmp_path / "child.yaml"  # a relative path is read beside the including file
    child.write_text("name: child\ninclude: coarse.yaml\nmodels: [auxformer]\n")
    assert Protocol.from_yaml(child).conditions == p.conditions and Protocol.from_yaml(child).models == ("auxformer",)
    assert [q.name for q in expand_includes(get_protocol("robustness"))] == ["misalignment", "occlusion", "noise"]
    with pytest.raises(RegistryError, match="Did you mean 'masking'"):
        Protocol.from_dict({"name": "x", "include": "maskng"})


def test_a_protocol_including_masking_with_other_levels_runs(tiny_store, tmp_path):
    coarse = tmp_path / "coarse.yaml"
    coarse.write_text("name: masking-coarse\ninclude: masking\nconditions:\n  - {kind: full}\n"
                      "  - {kind: mask, modality: visual, levels: [0.25, 0.75]}\n")
    t = _run(tiny_store, tmp_path / "run", str(coarse), ["auxformer"], seeds=1).table
    scored = t[(t.metric == "micro_f1") & (t.condition == "mask_visual")]
    assert sorted(scored.level) == [0.25, 0.75] and set(t.protocol) == {"masking-coarse"}
    assert "auc_micro_f1" in set(t.metric)  # masking's `summary: true`, inherited


@pytest.mark.parametrize("spec, shown, clash", [
    ({"kind": "mask", "modality": "audio", "levels": [0.1, 0.1004]}, "0.1 and 0.1004", "same random masks"),
    ({"kind": "noise", "modality": "visual", "levels": [5, 5.0000001]}, "5.0 and 5.0000001", "same random masks"),
    ({"kind": "shift", "modality": "audio", "levels": [1000000, 1000001]}, "1000000.0 and 1000001.0",
     "one evaluation (shift_audio@1e+06)"),
])
def test_levels_that_would_share_masks_or_an_evaluation_file_are_refused(spec, shown, clash):
    with pytest.raises(ValidationError, match="The 'levels' parameter of condition") as err:
        Protocol.from_dict({"name": "x", "conditions": [{"kind": "full"}, spec]})
    assert shown in str(err.value) and clash in str(err.value) and "protocol 'x'" in str(err.value)
    # the thousandths apart (the seeds are today's, so stored masks and results stay valid)
    ok = Protocol.from_dict({"name": "x", "conditions": [{**spec, "levels": [spec["levels"][0], 0.5]}]})
    assert ok.conditions[0].seed_level == int(round(spec["levels"][0] * 1000)) & 0xFFFFFFFF


def test_levels_of_a_group_that_would_share_masks_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nconditions: [{kind: mask, modality: audio, levels: [0.2]}]\n")
    (tmp_path / "b.yaml").write_text("name: b\nconditions: [{kind: mask, modality: audio, levels: [0.2001]}]\n")
    (tmp_path / "ab.yaml").write_text(f"name: ab\nregimes: []\ngroup: [{tmp_path / 'a.yaml'}, {tmp_path / 'b.yaml'}]\n")
    with pytest.raises(ValidationError, match="in the protocols 'a', 'b' holds 0.2 and 0.2001"):
        expand_includes(get_protocol(str(tmp_path / "ab.yaml")))


def test_protocol_given_twice_runs_both_as_one_run(tiny_store, tmp_path):
    """`--protocol` repeats as `--model` does: the union, --model applying to each, a repeat counted once."""
    from click.testing import CliRunner

    from avbench.cli import main

    r = CliRunner().invoke(main, ["run", "-p", "standard", "--protocol", "optimized", "-p", "standard", "--model",
                                  "mult", "--corpus", str(tiny_store.path), "--profile", "smoke", "--seeds", "1",
                                  "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "run" / "results.csv")
    scored = t[t.metric == "micro_f1"]
    assert sorted(zip(scored.protocol, scored.model, scored.regime)) == [("optimized", "mult", "optimized"),
                                                                         ("standard", "mult", "standard")]
    assert "units trained now: 2" in r.output
    assert sorted(p.name for p in (tmp_path / "run" / "protocols").iterdir())[0].startswith("optimized@")
