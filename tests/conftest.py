"""Shared fixtures: tiny corpora, so the suite runs in minutes on 2 cores (the isolated data home is in
the repository's conftest.py, shared with the doctests)."""

import pytest


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """A 9-speaker synthetic corpus (6 classes, visual 8-d): seconds to train on."""
    from avbench.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("tiny") / "store", seed=0, n_speakers=9,
                              clips_per_speaker=8, visual_dim=8)


@pytest.fixture
def read_only():
    """Makes directories unwritable for this process, also as root, and restores them afterwards.

    A user gets ``chmod 555``; root ignores permission bits (CI runs as root), so it gets the
    immutable attribute (``chattr +i``), which binds root too.  A test is skipped only where
    neither is possible (root on a filesystem without the attribute).
    """
    import os
    import shutil
    import subprocess

    done = []

    def make(path):
        if os.geteuid() != 0:
            path.chmod(0o555)
            done.append(lambda: path.chmod(0o755))
            return
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)],
                                                              capture_output=True).returncode:
            pytest.skip("root ignores file permissions and chattr +i is not available here")
        done.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))

    yield make
    for undo in reversed(done):
        undo()
