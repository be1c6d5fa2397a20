"""Self-supervised audio features and CLIP face embeddings against the same transformers model run
directly, on tiny random checkpoints saved to a temporary folder (no download, no committed weights)."""

import json

import numpy as np
import pytest
import torch

tf = pytest.importorskip("transformers")

from avbench.data.clip_faces import CLIPFaces  # noqa: E402
from avbench.data.ssl_audio import HUBERT, WAV2VEC2, WAVLM  # noqa: E402
from avbench.validation import ValidationError  # noqa: E402
from ssl_checkpoints import clip_checkpoint, speech_checkpoint  # noqa: E402

EXTRACTORS = {"wav2vec2": WAV2VEC2, "hubert": HUBERT, "wavlm": WAVLM}
MODELS = {"wav2vec2": "Wav2Vec2Model", "hubert": "HubertModel", "wavlm": "WavLMModel"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    out = {k: speech_checkpoint(root / k, k, seed=i) for i, k in enumerate(EXTRACTORS)}
    out["release"] = speech_checkpoint(root / "release", "wav2vec2", seed=7, num_hidden_layers=13,
                                       do_stable_layer_norm=True, feat_extract_norm="layer")
    out["clip"] = clip_checkpoint(root / "clip")
    return out


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def reference(folder, kind, x):
    """The checkpoint run the way its model card shows: feature extractor, then the model."""
    features = tf.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    model = getattr(tf, MODELS[kind]).from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**features(x, sampling_rate=16000, return_tensors="pt"), output_hidden_states=True)


@pytest.mark.parametrize("kind", list(EXTRACTORS))
def test_speech_features_equal_the_transformers_model(folders, kind):
    x = signal(1.3)
    ref = reference(folders[kind], kind, x)
    last = EXTRACTORS[kind](model=folders[kind])
    out = last(x, 16000)
    assert out.shape == (ref.last_hidden_state.shape[1], 16) and last.rate == 50 and last.dim == 16
    np.testing.assert_allclose(out, ref.last_hidden_state[0].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(EXTRACTORS[kind](model=folders[kind], layer="1")(x), ref.hidden_states[1][0].numpy(),
                               atol=1e-5, rtol=0)
    mean = torch.stack(ref.hidden_states).mean(0)[0].numpy()
    np.testing.assert_allclose(EXTRACTORS[kind](model=folders[kind], layer="mean")(x), mean, atol=1e-5, rtol=0)
    settings = last.settings()
    assert settings["frame_rate"] == 50 and settings["layer"] == "last" and settings["do_normalize"] is True
    assert set(settings["sha256"]) == {"config.json", "model.safetensors", "preprocessor_config.json"}


def test_long_clips_run_in_chunks_whose_frames_are_concatenated(folders):
    x = signal(1.0, seed=3)
    ex = WAV2VEC2(model=folders["wav2vec2"], max_seconds=0.4)
    assert ex.chunk == 6400 and ex.pieces(len(x)) == [(0, 6400), (6400, 12800), (12800, 16000)]
    assert ex.pieces(12800 + 100) == [(0, 6400), (6400, 12900)]  # a tail shorter than 400 samples joins
    normed = tf.Wav2Vec2FeatureExtractor.from_pretrained(folders["wav2vec2"])(x, sampling_rate=16000)["input_values"][0]
    model = tf.Wav2Vec2Model.from_pretrained(folders["wav2vec2"]).eval()
    with torch.no_grad():
        parts = [model(torch.as_tensor(normed[a:b])[None]).last_hidden_state[0].numpy() for a, b in ex.pieces(len(x))]
    np.testing.assert_allclose(ex(x), np.concatenate(parts), atol=1e-5, rtol=0)


def test_auxformer_release_preset_is_the_pruned_models_last_hidden_state(folders, tmp_path):
    """The released code: del model.encoder.layers[12:], then last_hidden_state, which for a
    stable-layer-norm wav2vec2 is the final layer norm after layer 12, not hidden_states[12]."""
    folder, x = folders["release"], signal(0.8, seed=5)
    ex = WAV2VEC2(model=folder, preset="auxformer-release")
    pruned = tf.Wav2Vec2Model.from_pretrained(folder).eval()
    del pruned.encoder.layers[12:]
    features = tf.Wav2Vec2FeatureExtractor.from_pretrained(folder)(x, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        want = pruned(**features).last_hidden_state[0].numpy()
    out = ex(x)
    np.testing.assert_allclose(out, want, atol=1e-5, rtol=0)
    full = reference(folder, "wav2vec2", x)
    assert np.abs(out - full.hidden_states[12][0].numpy()).max() > 1e-2
    assert ex.settings()["hidden_layers"] == 12 and ex.settings()["preset"] == "auxformer-release"

    # a fine-tuned final_wav2vec.pt (the pruned model's state dict) loads on top, key for key
    torch.manual_seed(11)
    tuned = tf.Wav2Vec2Model(pruned.config).eval()
    del tuned.encoder.layers[12:]
    torch.save(tuned.state_dict(), tmp_path / "final_wav2vec.pt")
    with torch.no_grad():
        want = tuned(**features).last_hidden_state[0].numpy()
    loaded = WAV2VEC2(model=folder, preset="auxformer-release", weights=tmp_path / "final_wav2vec.pt")
    np.testing.assert_allclose(loaded(x), want, atol=1e-5, rtol=0)
    assert len(loaded.settings()["state_dict"]["sha256"]) == 64

    state = tuned.state_dict()
    state["encoder.layers.12.extra.weight"] = torch.zeros(1)
    del state["encoder.layer_norm.bias"]
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(ValidationError, match=r"wrong.pt: does not fit .* 1 keys missing \(e.g. encoder.layer_norm."
                                              r"bias\), 1 extra \(e.g. encoder.layers.12.extra.weight\)"):
        WAV2VEC2(model=folder, preset="auxformer-release", weights=tmp_path / "wrong.pt")


def test_clip_embeddings_equal_the_transformers_model(folders):
    crops = np.random.default_rng(1).integers(0, 256, (5, 224, 224, 3), dtype=np.uint8)
    processor = tf.CLIPImageProcessor.from_pretrained(folders["clip"])
    model = tf.CLIPVisionModel.from_pretrained(folders["clip"]).eval()
    with torch.no_grad():
        ref = model(**processor(images=list(crops), return_tensors="pt"), output_hidden_states=True)
    emb = CLIPFaces(model=folders["clip"], batch_size=2)  # three batches
    np.testing.assert_allclose(emb(crops), ref.pooler_output.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(CLIPFaces(model=folders["clip"], layer=1)(crops), ref.hidden_states[1][:, 0].numpy(),
                               atol=1e-5, rtol=0)
    assert emb.dim == 16 and emb(crops[:0]).shape == (0, 16)
    assert emb.settings()["output"] == "pooler_output"


def test_clip_embeddings_from_a_whole_clip_checkpoint(tmp_path):
    """openai/clip-* folders hold the whole CLIP model (model_type 'clip'): the vision tower is read."""
    folder = clip_checkpoint(tmp_path / "full", full=True)
    crops = np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    model = tf.CLIPModel.from_pretrained(folder).eval()
    with torch.no_grad():
        want = model.vision_model(**tf.CLIPImageProcessor.from_pretrained(folder)(images=list(crops),
                                                                                  return_tensors="pt")).pooler_output
    np.testing.assert_allclose(CLIPFaces(model=folder)(crops), want.numpy(), atol=1e-5, rtol=0)


def test_bad_checkpoints_are_refused_in_one_line(folders, tmp_path):
    with pytest.raises(ValidationError, match=r"config.json: model_type is 'hubert', but the '--audio-model' folder "
                                              "must hold a wav2vec2 checkpoint"):
        WAV2VEC2(model=folders["hubert"])
    with pytest.raises(ValidationError, match="'--audio-model' option is needed"):
        WAVLM()
    bare = speech_checkpoint(tmp_path / "bare", "wav2vec2")
    (bare / "model.safetensors").unlink()
    with pytest.raises(ValidationError, match="bare: no weights beside config.json"):
        WAV2VEC2(model=bare)
    noprep = speech_checkpoint(tmp_path / "noprep", "hubert")
    (noprep / "preprocessor_config.json").unlink()
    with pytest.raises(ValidationError, match="preprocessor_config.json: file is missing"):
        HUBERT(model=noprep)
    for change, what in (({"hidden_size": 24, "intermediate_size": 48}, "do not (match|load)"),
                         ({"num_hidden_layers": 3}, r"16 parameters missing \(e.g. encoder.layers.2.")):
        other = speech_checkpoint(tmp_path / f"other{len(what)}", "wav2vec2")
        config = json.loads((other / "config.json").read_text())
        (other / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ValidationError, match=what) as info:
            WAV2VEC2(model=other)
        assert "\n" not in str(info.value)
    with pytest.raises(ValidationError, match="'--audio-layer' option must be at most 2"):
        WAV2VEC2(model=folders["wav2vec2"], layer=3)
    with pytest.raises(ValidationError, match="'--audio-layer' option must be last, mean or a hidden-state index"):
        WAV2VEC2(model=folders["wav2vec2"], layer="top")
    with pytest.raises(ValidationError, match="needs a wav2vec2 checkpoint with do_stable_layer_norm"):
        WAV2VEC2(model=folders["wav2vec2"], preset="auxformer-release")
    with pytest.raises(ValidationError, match="'--visual-layer' option must be an integer from 0 to 2"):
        CLIPFaces(model=folders["clip"], layer=3)
    with pytest.raises(ValidationError, match="model_type is 'wav2vec2'"):
        CLIPFaces(model=folders["wav2vec2"])
    with pytest.raises(ValidationError, match="supports on CUDA only"):
        WAV2VEC2(model=folders["wav2vec2"], precision="bf16")
    assert WAV2VEC2(model=folders["wav2vec2"])(signal(0.02)).shape == (0, 16)  # 320 samples < receptive field
