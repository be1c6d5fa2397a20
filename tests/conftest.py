"""Shared fixtures: an isolated data home and tiny corpora, so the suite runs in minutes on 2 cores."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Keeps tests from reading or writing the user's ~/.cache/avbench."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AVBENCH_HOME", str(tmp_path_factory.mktemp("avbench-home")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """A 9-speaker synthetic corpus (6 classes, visual 8-d): seconds to train on."""
    from avbench.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("tiny") / "store", seed=0, n_speakers=9,
                              clips_per_speaker=8, visual_dim=8)
