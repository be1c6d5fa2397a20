"""Tiny random Hugging Face checkpoints saved to a folder, as a user's downloaded one would be.

No download and no committed weights: each is built from a small config with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import torch

# the real models' convolutional layout (7 layers, 400-sample receptive field, 320-sample step = 50 Hz),
# with 8 channels instead of 512
CONV = {"conv_dim": (8,) * 7, "conv_kernel": (10, 3, 3, 3, 3, 2, 2), "conv_stride": (5, 2, 2, 2, 2, 2, 2)}
TINY = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
        "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 2, **CONV}


def speech_checkpoint(folder: Path, kind: str = "wav2vec2", seed: int = 0, do_normalize: bool = True,
                      **config) -> Path:
    """A random wav2vec2 / HuBERT / WavLM model and its feature extractor config in ``folder``."""
    import transformers as tf

    cfg_cls, model_cls = {"wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model), "hubert": (tf.HubertConfig, tf.HubertModel),
                          "wavlm": (tf.WavLMConfig, tf.WavLMModel)}[kind]
    torch.manual_seed(seed)
    model = model_cls(cfg_cls(**{**TINY, **config})).eval()
    model.save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=do_normalize,
                                return_attention_mask=False).save_pretrained(folder)
    return folder


def clip_checkpoint(folder: Path, seed: int = 0, image_size: int = 32, full: bool = False) -> Path:
    """A random CLIP vision encoder (with ``full``: a whole CLIP model, text tower included, as
    openai/clip-* checkpoints are) and its image processor config in ``folder``."""
    import transformers as tf

    torch.manual_seed(seed)
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": image_size, "patch_size": 8}
    if full:
        text = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                "vocab_size": 99, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
        tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).eval().save_pretrained(folder)
    else:
        tf.CLIPVisionModel(tf.CLIPVisionConfig(**vision)).eval().save_pretrained(folder)
    tf.CLIPImageProcessor(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder
