"""Local Hugging Face checkpoint folders: checked, identified by content, loaded offline.

The self-supervised speech models (wav2vec2, HuBERT, WavLM) and the CLIP image
encoder that today's emotion-recognition work extracts features with are
loaded through ``transformers`` (the ``ssl`` extra) from a folder the user
gives: ``config.json``, the weights (``model.safetensors`` or
``pytorch_model.bin``) and the preprocessing config saved beside them.  avbench
never downloads: every load passes ``local_files_only=True``, and a folder
that lacks a file, holds another architecture or weights that do not fit its
config is refused in one line naming the folder and what is wrong, instead of
transformers' silent random initialisation of the layers it could not fill.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from avbench.validation import ValidationError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")


def transformers():
    """The ``transformers`` module, or an ImportError naming the extra that installs it."""
    try:
        import transformers as tf
    except ImportError as exc:
        raise ImportError("Self-supervised audio and CLIP face features need transformers: "
                          "pip install 'avbench[ssl]' (or pip install transformers safetensors).") from exc
    return tf


def check_folder(folder: str | os.PathLike | None, option: str, model_types: tuple[str, ...],
                 preprocessor: str) -> dict:
    """Checks that ``folder`` is a checkpoint of one of ``model_types``; returns its ``config.json``.

    Args:
        folder: The checkpoint folder.
        option: The command-line option that gave it, for messages (``--audio-model``).
        model_types: Accepted ``model_type`` values of ``config.json``.
        preprocessor: The preprocessing config the extractor reads (``preprocessor_config.json``).

    Raises:
        ValidationError: naming the folder and the missing file or the wrong architecture.
    """
    if folder is None:
        raise ValidationError(f"The '{option}' option is needed: a local Hugging Face checkpoint folder "
                              f"({', '.join(model_types)}: config.json, model.safetensors or pytorch_model.bin, "
                              f"{preprocessor}); avbench never downloads weights.")
    path = Path(folder)
    if not path.is_dir():
        raise ValidationError(f"{path}: no such checkpoint folder (the '{option}' option); expected a folder with "
                              f"config.json, model.safetensors or pytorch_model.bin and {preprocessor}.")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ValidationError(f"{config_file}: file is missing; the '{option}' folder must be a Hugging Face "
                              "checkpoint (config.json beside its weights).")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{config_file}: cannot be read as JSON ({exc}).") from None
    found = config.get("model_type") if isinstance(config, dict) else None
    if found not in model_types:
        raise ValidationError(f"{config_file}: model_type is {found!r}, but the '{option}' folder must hold a "
                              f"{' or '.join(model_types)} checkpoint for this extractor.")
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise ValidationError(f"{path}: no weights beside config.json (expected model.safetensors or "
                              f"pytorch_model.bin; the '{option}' option).")
    if not (path / preprocessor).is_file():
        raise ValidationError(f"{path / preprocessor}: file is missing; the '{option}' folder must hold the "
                              "checkpoint's preprocessing config (save the feature extractor or processor "
                              "beside the model).")
    return config


def load_model(cls, folder: Path, option: str, **kwargs):
    """``cls.from_pretrained(folder)`` offline, refusing weights that leave a layer unfilled or
    whose shapes differ from the config (transformers would initialise those at random).

    Keys the checkpoint has beyond the model (a CTC or pre-training head) are ignored.
    transformers' own load report and progress bar are silenced: the outcome is this function's
    one-line message or nothing.
    """
    from transformers.utils import logging as tf_logging

    verbosity, bars = tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()
    tf_logging.set_verbosity_error()
    tf_logging.disable_progress_bar()
    try:
        model, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True,
                                          ignore_mismatched_sizes=True, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise ValidationError(f"{folder}: the weights do not load into the config's model (the '{option}' "
                              f"option): {text[:300]}") from None
    finally:
        tf_logging.set_verbosity(verbosity)
        if bars:
            tf_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys") or [])
    mismatched = sorted(info.get("mismatched_keys") or [])
    if missing or mismatched:
        what = (f"{len(missing)} parameters missing (e.g. {missing[0]})" if missing else
                f"{len(mismatched)} parameters of another shape (e.g. {mismatched[0][0]})")
        raise ValidationError(f"{folder}: the weights do not match config.json (the '{option}' option): {what}.")
    return model.eval()


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of the config, preprocessing config and weight files, which identify the features."""
    from avbench.data.store import sha256_file

    return {f.name: sha256_file(f) for f in sorted(folder.iterdir())
            if f.is_file() and (f.suffix in (".json", ".safetensors", ".bin"))}
