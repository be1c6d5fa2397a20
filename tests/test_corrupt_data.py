"""Never train on corrupt data: a changed data file is rehashed before a run, an unchanged one
costs nothing, and a loss that turns NaN stops its unit with nothing misleading left behind."""

import os
import shutil

import numpy as np
import pytest
import torch

import avbench.data.integrity as integrity
from avbench.data import FeatureStore
from avbench.models import create_model
from avbench.profiles import get_profile
from avbench.training import NonFiniteLoss, fit
from avbench.validation import DataError


@pytest.fixture
def store(tiny_store, tmp_path):
    shutil.copytree(tiny_store.path, tmp_path / "store")
    return FeatureStore.open(tmp_path / "store")


def test_unchanged_store_is_not_rehashed_and_a_changed_one_is(store, monkeypatch):
    calls = []
    real = integrity.verify_store
    monkeypatch.setattr(integrity, "verify_store", lambda s: calls.append(s.path) or real(s))
    integrity.ensure_verified(store)  # a copy: its files are new to the stamp, so one full check
    integrity.ensure_verified(store)  # nothing changed since: no second read
    assert len(calls) == 1
    os.utime(store.path / "audio.bin", ns=(1, 1))  # same bytes, another mtime: checked again, and passes
    integrity.ensure_verified(store)
    assert len(calls) == 2


def test_a_flipped_byte_keeps_the_store_out_of_training(store):
    integrity.ensure_verified(store)
    stat = os.stat(store.path / "visual.bin")
    with open(store.path / "visual.bin", "r+b") as f:
        f.seek(10)
        b = f.read(1)
        f.seek(10)
        f.write(bytes([b[0] ^ 1]))
    os.utime(store.path / "visual.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    with pytest.raises(DataError, match=r"visual\.bin: sha256 .* does not match"):
        integrity.ensure_verified(FeatureStore.open(store.path))


def test_non_finite_loss_stops_the_unit_naming_epoch_and_batch(tiny_store, tmp_path):
    profile = get_profile("smoke").replace(batch_size=8)  # 6 batches per epoch
    torch.manual_seed(0)
    model = create_model("mult", num_classes=len(tiny_store.label_names), audio_dim=tiny_store.audio_dim,
                         visual_dim=tiny_store.visual_dim, d_model=8, heads=2, layers=1)
    forward, calls = model.forward, []

    def diverging(*args, **kwargs):  # the third training batch of the second epoch diverges
        calls.append(model.training)
        out = forward(*args, **kwargs)
        train_calls = sum(calls)
        batches = -(-48 // profile.batch_size)
        if model.training and train_calls == batches + 3:
            out = {k: v * float("nan") for k, v in out.items()}
        return out

    model.forward = diverging
    state = tmp_path / "train_state.pt"
    rows = np.arange(len(tiny_store))
    with pytest.raises(NonFiniteLoss, match=r"mult/test: the loss became nan at epoch 2, batch 3"):
        fit(model, tiny_store, rows[:48], rows[48:], regime="standard", profile=profile, seed=0,
            device=torch.device("cpu"), state_path=state, progress=False, desc="mult/test")
    assert not state.exists()  # the epoch-1 resume point would only lead back to the NaN
