"""Shared fixtures: tiny corpora, so the suite runs in minutes on 2 cores (the isolated data home is in
the repository's conftest.py, shared with the doctests)."""

import pytest


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """A 9-speaker synthetic corpus (6 classes, visual 8-d): seconds to train on."""
    from avbench.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("tiny") / "store", seed=0, n_speakers=9,
                              clips_per_speaker=8, visual_dim=8)
